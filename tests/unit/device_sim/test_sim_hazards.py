"""Hazard scenarios of the simulator, decoded by the platform's codecs and judged by its
hazard rules: every injected hazard is raised on time, and nothing else is."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from detectors.catalogue import build_site_detectors, site_context
from device_sim.device import Impairments
from device_sim.scenarios import parse_specs
from device_sim.simulation import SimConfig, Simulation
from eldercare.domain import HAZARD_KINDS, AlertKind, Reading, Transition, TransitionAction
from tests.unit.device_sim.test_sim_scenarios import decode_all

START = datetime(2026, 7, 14, 0, 0, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()
SPECS = "kitchen_fire_smoke,gas_leak,burst_pipe,summer_heat,winter_cold_night"


@pytest.fixture(scope="module")
def judged() -> tuple[Simulation, list[Transition]]:
    cfg = SimConfig(
        homes=4,
        days=2.0,
        seed=5,
        start=START,
        fmt="mixed",
        scenarios=tuple(parse_specs(SPECS)),
        impairments=Impairments.none(),
    )
    sim = Simulation(cfg)
    seen, problems = decode_all(sim)
    assert problems == []
    registry = {s.id: s for s in sim.registry().sites}
    by_site: dict[str, list[Reading]] = defaultdict(list)
    for r in sorted(seen, key=lambda r: r.ts):
        site = registry[r.site]
        device = site.device(r.device)
        assert device is not None
        resident = device.resident or (site.residents[0].id if len(site.residents) == 1 else None)
        by_site[r.site].append(
            Reading(r.site, r.device, r.stream, r.ts, r.fields, r.ts, device.room, resident)
        )
    out: list[Transition] = []
    for site_id, readings in by_site.items():
        detectors = build_site_detectors(site_context(registry[site_id]))
        hazards = [d for d in detectors.values() if set(d.kinds) & HAZARD_KINDS]
        for reading in readings:
            for det in hazards:
                out += det.update(reading)
        for det in hazards:
            out += det.advance(sim.end)
    return sim, out


def test_every_hazard_is_raised_within_ten_seconds_of_its_alarm(
    judged: tuple[Simulation, list[Transition]],
) -> None:
    sim, transitions = judged
    raises = [t for t in transitions if t.action is TransitionAction.RAISE]
    truth = [r for r in sim.truth if r.kind in HAZARD_KINDS]
    assert sorted(r.kind for r in truth) == sorted(
        [AlertKind.SMOKE, AlertKind.GAS, AlertKind.WATER_LEAK, AlertKind.HEAT, AlertKind.COLD]
    )
    for rec in truth:
        got = [t for t in raises if t.kind is rec.kind and t.site_id == rec.site]
        assert len(got) == 1, rec
        # Alarms are due at once; heat and cold when the limit has held long enough.
        assert abs(got[0].ts - rec.due) <= 10.0, (rec, got[0].ts)
        assert got[0].resident_id == rec.resident


def test_no_hazard_false_alarms_and_each_clears(
    judged: tuple[Simulation, list[Transition]],
) -> None:
    sim, transitions = judged
    truth = {(r.site, r.kind) for r in sim.truth if r.kind in HAZARD_KINDS}
    raised = {(t.site_id, t.kind) for t in transitions if t.action is TransitionAction.RAISE}
    assert raised == truth
    cleared = {(t.site_id, t.kind) for t in transitions if t.action is TransitionAction.CLEAR}
    assert cleared == truth
