"""`eldercare bench worker-memory`: a detector worker's memory per home, accounted."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from benchmarks.detectors import MIX
from benchmarks.load import PATTERN
from benchmarks.worker_memory import run_worker_memory_bench


def test_the_mix_is_the_platform_benchmarks_load() -> None:
    assert [(d, s.value) for d, s, _ in MIX] == [(d, s) for d, s, _ in PATTERN]


@pytest.mark.slow  # applies a registry to SQLite and starts an interpreter
def test_a_short_run_accounts_for_every_part_of_a_site() -> None:
    r = run_worker_memory_bench(20, 0.2)
    assert r.readings == int(0.2 * 3600 / (86400 / 1505) * 20)
    assert r.transitions == 0  # a healthy population: every device reports, someone moves
    assert r.registry_mb_per_1k > 0 and r.state_after_run_mb_per_1k > 0
    assert r.import_baseline_mb > 0
    # Each detector of a bench home and the site's own bookkeeping have their share.
    for part in ("resident_state", "inactivity", "sos", "site_offline", "site: recent"):
        assert r.by_part_kb_per_home[part] > 0
    assert abs(sum(r.by_part_kb_per_home.values()) / 1000 - r.objects_mb_per_1k / 1000) < 0.01


@pytest.mark.slow
def test_cli_json() -> None:
    from benchmarks.cli import app

    out = CliRunner().invoke(
        app, ["worker-memory", "--homes", "5", "--hours", "0.05", "--tick-s", "30", "--json"]
    )
    assert out.exit_code == 0, out.output
    result = json.loads(out.output)
    assert result["homes"] == 5
    assert result["tick_s"] == 30
    assert result["machine"]["nproc"] >= 1
