"""`eldercare bench scale` in a tiny configuration (two small steps of a few seconds):
it runs, steps up, and prints well-formed figures. No timed assertions."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from benchmarks.cli import app
from benchmarks.scale import home_counts, slope
from eldercare_app.local_services import LocalServices

pytestmark = pytest.mark.integration


@pytest.fixture
def service_env(local_services: LocalServices, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in local_services.env().items():
        monkeypatch.setenv(key, value)


def test_scale_bench_steps_up_and_prints_json(service_env: None) -> None:
    result = CliRunner().invoke(
        app,
        [
            *("scale", "--start", "50", "--step", "50", "--max-homes", "100"),
            *("--warmup", "1", "--window", "3", "--keep-going", "--configured-services", "--json"),
        ],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [s["homes"] for s in doc["steps"]] == [50, 100]
    for step in doc["steps"]:
        assert step["rss_mb"] > 0
        assert step["rss_mb_per_1000_homes"] == pytest.approx(
            step["rss_mb"] / (step["homes"] / 1000), rel=0.01
        )
        assert step["rate_msgs_per_s"] == pytest.approx(
            step["homes"] * doc["msgs_per_home_per_s"], rel=0.01, abs=0.01
        )
        assert isinstance(step["sustained"], bool)
    assert doc["machine"]["nproc"] >= 1


def test_home_counts_and_lag_slope() -> None:
    assert home_counts(5000, 5000, 20000) == [5000, 10000, 15000, 20000]
    assert home_counts(7, 0, 100) == [7]
    assert slope([(0.0, 1.0), (1.0, 1.5), (2.0, 2.0)]) == pytest.approx(0.5)
    assert slope([(0.0, 1.0), (1.0, 1.0)]) == 0.0
