"""Properties of the rules reading occupancy (beds, seats, radars) on random streams:
snapshot/restore mid-stream and batch boundaries change nothing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detectors.bed_exit_no_return import BedExitRule
from detectors.inactivity import InactivityRule
from detectors.not_returned import NotReturnedRule
from detectors.rule import Rule
from detectors.runtime import DetectorRuntime
from eldercare.domain import Reading, Stream, Transition
from eldercare.registry_index import RegistryIndex
from eldercare.registry_model import RegistryDocument
from tests.helpers.detectors import context, local_ts, occupancy_couple, occupancy_home, reading
from tests.helpers.examples import examples

T0 = local_ts("Europe/Amsterdam", 2024, 5, 10, 18, 0)
EVENTS: list[tuple[str, Stream, str]] = [
    ("mat-left", Stream.OCCUPANCY, "occupied"),
    ("mat-right", Stream.OCCUPANCY, "occupied"),
    ("armchair", Stream.OCCUPANCY, "occupied"),
    ("radar-living", Stream.PRESENCE, "present"),
    ("pir-bed", Stream.MOTION, "motion"),
    ("pir-kitchen", Stream.MOTION, "motion"),
    ("door-front", Stream.CONTACT, "open"),
]
steps = st.lists(
    st.tuples(st.integers(0, len(EVENTS) - 1), st.booleans(), st.integers(0, 5400)),
    min_size=1,
    max_size=40,
)


def _readings(site: Any, draw: list[tuple[int, bool, int]]) -> list[Reading]:
    out, t = [], T0
    for i, value, gap in draw:
        t += gap
        device, stream, key = EVENTS[i]
        out.append(reading(site, device, stream, t, **{key: value}))
    return out


def _run(rule: Rule[Any], readings: list[Reading], until: float) -> list[Transition]:
    out: list[Transition] = []
    for r in readings:
        out.extend(rule.update(r))
    out.extend(rule.advance(until))
    return out


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(draw=steps, cut=st.integers(0, 40), couple=st.booleans())
def test_snapshot_restore_mid_stream_changes_nothing(
    draw: list[tuple[int, bool, int]], cut: int, couple: bool
) -> None:
    site = occupancy_couple() if couple else occupancy_home()
    rs = _readings(site, draw)
    until = rs[-1].ts + 12 * 3600
    cut = min(cut, len(rs))
    for cls in (InactivityRule, BedExitRule, NotReturnedRule):
        whole = _run(cls(context(site)), rs, until)
        first = cls(context(site))
        head = _run(first, rs[:cut], rs[cut - 1].ts if cut else T0)
        second = cls(context(site))
        second.restore(json.loads(json.dumps(first.snapshot())))
        assert head + _run(second, rs[cut:], until) == whole, cls.name


@settings(max_examples=examples(25), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(draw=steps, size=st.integers(1, 7))
def test_batch_boundaries_change_nothing(draw: list[tuple[int, bool, int]], size: int) -> None:
    site = occupancy_home()
    rs = _readings(site, draw)

    async def run(batch: int) -> list[tuple[str, str, float]]:
        index = RegistryIndex(RegistryDocument(sites=[site]))
        got: list[Transition] = []

        class Sink:
            async def handle_transitions(self, ts: Sequence[Transition]) -> None:
                got.extend(ts)

        rt = DetectorRuntime(lambda: index, Sink(), clock_mode="event")
        for i in range(0, len(rs), batch):
            await rt.handle_readings(rs[i : i + batch])
        await rt.advance_to(rs[-1].ts + 12 * 3600)
        return sorted((t.kind.value, t.action.value, t.ts) for t in got)

    assert asyncio.run(run(size)) == asyncio.run(run(len(rs)))
