"""`eldercare eval scenarios --in-process`: the simulator through ingest's decoding and
the detectors in one process, deterministic."""

from __future__ import annotations

import pytest

from device_sim.cli import default_start
from device_sim.scenarios import parse_specs
from device_sim.simulation import SimConfig
from evaluation.scenarios_in_process import evaluate_in_process, format_in_process


def _cfg() -> SimConfig:
    return SimConfig(
        homes=3,
        days=2.0,
        seed=4,
        start=default_start(2.0, speed=0),
        fmt="mixed",
        scenarios=tuple(parse_specs("sos,tamper,low_battery,bathroom_too_long")),
    )


@pytest.mark.slow  # two simulations of 3 homes x 2 days
def test_injected_incidents_are_detected_the_same_way_every_time() -> None:
    first = evaluate_in_process(_cfg())
    for kind in ("sos", "tamper", "low_battery", "bathroom_too_long"):
        score = first.report.per_kind[kind]
        assert (score.expected, score.detected, score.false_alarms) == (1, 1, 0), kind
    assert first.quarantined == 0 and first.unregistered == 0
    assert first.readings > first.messages // 2  # the messages were decoded, not dropped
    again = evaluate_in_process(_cfg())
    assert again.report.as_dict() == first.report.as_dict()
    assert "recall" in format_in_process(first)
