"""The scenario evaluation end to end: simulator, real broker with site accounts,
the platform as a child process, alerts scored against the ground truth."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from device_sim.cli import default_start
from device_sim.scenarios import parse_specs
from device_sim.simulation import SimConfig
from evaluation.platform_scenarios import evaluate_scenarios, format_report

pytestmark = pytest.mark.integration


def test_a_small_evaluation_detects_what_was_injected(tmp_path: Path) -> None:
    cfg = SimConfig(
        homes=3,
        days=1.0,
        seed=4,
        start=default_start(1.0, speed=0),
        fmt="mixed",
        scenarios=tuple(parse_specs("sos,tamper,low_battery")),
    )
    lines: list[str] = []
    result = evaluate_scenarios(cfg, tmp_path / "eval", progress=lines.append)
    report = result.report
    assert "3 sites log in with their own accounts" in lines
    for kind in ("sos", "tamper", "low_battery"):
        score = report.per_kind[kind]
        assert (score.expected, score.detected, score.false_alarms) == (1, 1, 0), kind
    assert report.unmatched_truth == []
    # Every message went through, and what the platform stored is what was scored.
    assert result.platform_metrics["eldercare_ingest_acked_total"] == result.stats.messages
    stored = json.loads((tmp_path / "eval" / "alerts.json").read_text())
    assert len(stored) == result.alerts
    kept = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert kept["per_kind"]["sos"]["detected"] == 1
    assert "recall" in format_report(result)
