"""`eldercare bench latency` in a tiny configuration: it runs the platform in its own
process against the session's broker and InfluxDB, measures every sample end to end,
and prints well-formed figures. No timed assertions: the goals are checked by the
benchmark's figures, not by tests."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from benchmarks.cli import app
from eldercare_app.local_services import LocalServices

pytestmark = pytest.mark.integration


@pytest.fixture
def service_env(local_services: LocalServices, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in local_services.env().items():
        monkeypatch.setenv(key, value)


def test_latency_bench_prints_json_with_every_sample_measured(service_env: None) -> None:
    result = CliRunner().invoke(
        app,
        [
            *("latency", "--homes", "4", "--rate", "50", "--samples", "3", "--warmup", "1"),
            *("--configured-services", "--json"),
        ],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    for kind in ("sos", "fall"):
        for what in ("stored", "stream", "notified"):
            figures = doc["latency_ms"][f"{kind}_{what}"]
            assert figures["n"] == 3 and figures["missing"] == 0, (kind, what, doc["missing"])
            assert 0 < figures["p50"] <= figures["p95"] <= figures["p99"] <= figures["max"]
    background = doc["background"]
    assert background["published"] > 0
    assert background["acked_by_broker"] == background["published"]
    assert background["readings_in_influx"] == background["published"]
    assert background["drops"] == 0
    assert doc["machine_before"]["nproc"] >= 1


def test_latency_bench_refuses_more_samples_than_homes() -> None:
    result = CliRunner().invoke(app, ["latency", "--homes", "2", "--samples", "3"])
    assert result.exit_code != 0
    assert result.exit_code == 2
    assert "--samples must not exceed --homes" in result.output


def test_percentiles_rank_missing_samples_above_every_arrival() -> None:
    from benchmarks.support import percentiles_ms

    assert percentiles_ms([0.1, 0.2, 0.3, 0.4]) == {
        "n": 4,
        "missing": 0,
        "p50": 200.0,
        "p95": 400.0,
        "p99": 400.0,
        "max": 400.0,
    }
    # 19 arrivals and one that never came: p95 is the slowest arrival, p99 unknown.
    figures = percentiles_ms([i / 100 for i in range(1, 20)], missing=1)
    assert figures["p50"] == 100.0 and figures["p95"] == 190.0
    assert figures["p99"] is None and figures["max"] is None
