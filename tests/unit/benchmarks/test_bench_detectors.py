"""`eldercare bench detectors`: the in-process detector throughput benchmark."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from benchmarks.detectors import MIX, run_detector_bench
from benchmarks.load import PATTERN


def test_the_mix_is_the_platform_benchmarks_load() -> None:
    assert [(d, s.value) for d, s, _ in MIX] == [(d, s) for d, s, _ in PATTERN]


def test_a_small_run_measures_and_raises_nothing_for_a_healthy_population() -> None:
    r = run_detector_bench(20, 2000, rate=200.0, batch=50)
    assert r.readings == 2000
    assert r.readings_per_s > 0 and r.readings_per_cpu_s > 0
    assert r.us_per_reading > 0
    assert r.tracemalloc_mb_per_1k_homes > 0
    # Every device reports within its interval and someone moves every few seconds.
    assert r.transitions == 0


def test_cli_json() -> None:
    from benchmarks.cli import app

    out = CliRunner().invoke(app, ["detectors", "--homes", "5", "--readings", "200", "--json"])
    assert out.exit_code == 0, out.output
    result = json.loads(out.output)
    assert (result["homes"], result["readings"]) == (5, 200)
    assert result["machine"]["nproc"] >= 1
