"""A late emergency is never dropped (#14, defect 5): an SOS press or a reported fall
that reaches detection long after its event time is raised, marked late by how much;
its redelivery is still told apart, across a restart too. Fake clock, real SQLite."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from detectors.runtime import DetectorRuntime
from detectors.snapshot_store import SnapshotStore
from eldercare.clock import FakeClock
from eldercare.db import create_all, create_engine
from eldercare.domain import AlertKind, Stream, Transition, TransitionAction
from eldercare.registry_index import RegistryIndex
from eldercare.registry_model import RegistryDocument, Site
from tests.helpers.detectors import home_site, local_ts, reading

SH = "Asia/Shanghai"
RAISE, UPDATE = TransitionAction.RAISE, TransitionAction.UPDATE


class Collector:
    def __init__(self) -> None:
        self.transitions: list[Transition] = []

    async def handle_transitions(self, transitions: Sequence[Transition]) -> None:
        self.transitions.extend(transitions)

    def of(self, kind: AlertKind) -> list[Transition]:
        return [t for t in self.transitions if t.kind == kind]


def wall_runtime(
    sink: Collector, site: Site, clock: FakeClock, store: SnapshotStore | None = None
) -> DetectorRuntime:
    index = RegistryIndex(RegistryDocument(sites=[site]))
    return DetectorRuntime(
        lambda: index, sink, clock_mode="wall", clock=clock, snapshot_store=store, dedupe_s=900
    )


async def test_an_sos_an_hour_late_is_raised_marked_late_and_its_redelivery_is_not() -> None:
    site = home_site(SH)
    now = local_ts(SH, 2024, 5, 10, 14, 0)
    clock = FakeClock(now)
    sink = Collector()
    rt = wall_runtime(sink, site, clock)
    await rt.handle_readings([reading(site, "pir-living", Stream.MOTION, now - 5, motion=True)])
    late = reading(site, "sos-1", Stream.SOS, now - 3600, pressed=True)
    await rt.handle_readings([late])
    (raised,) = sink.of(AlertKind.SOS)
    assert raised.action == RAISE
    assert raised.ts == now - 5, "applied at the site's clock: nothing emitted moves back"
    assert raised.details["late_s"] == 3600
    clock.advance(1200)  # the key has left the ordinary duplicate memory (900 s)
    await rt.handle_readings([reading(site, "pir-living", Stream.MOTION, now + 1190, motion=True)])
    await rt.handle_readings([late])  # the broker redelivers it
    assert [t.action for t in sink.of(AlertKind.SOS)] == [RAISE, TransitionAction.CLEAR]


async def test_a_timely_sos_is_not_marked_late() -> None:
    site = home_site(SH)
    now = local_ts(SH, 2024, 5, 10, 14, 0)
    sink = Collector()
    rt = wall_runtime(sink, site, FakeClock(now))
    await rt.handle_readings([reading(site, "sos-1", Stream.SOS, now - 2, pressed=True)])
    (raised,) = sink.of(AlertKind.SOS)
    assert "late_s" not in raised.details


async def test_a_reported_fall_an_hour_late_is_raised_marked_late() -> None:
    site = home_site(SH)
    now = local_ts(SH, 2024, 5, 10, 14, 0)
    sink = Collector()
    rt = wall_runtime(sink, site, FakeClock(now))
    await rt.handle_readings([reading(site, "pir-living", Stream.MOTION, now - 5, motion=True)])
    await rt.handle_readings([reading(site, "radar-1", Stream.FALL, now - 3600, status="fall")])
    raised = [t for t in sink.of(AlertKind.FALL) if t.action == RAISE]
    assert len(raised) == 1
    assert raised[0].details["late_s"] == 3600
    # An ordinary reading as old is still left out (it cannot be told from a redelivery).
    before = len(sink.transitions)
    await rt.handle_readings([reading(site, "pir-bath", Stream.MOTION, now - 3600, motion=True)])
    assert len(sink.transitions) == before


async def test_the_redelivery_of_a_late_sos_is_told_apart_after_a_restart(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/snap.db")
    await create_all(engine)
    site = home_site(SH)
    now = local_ts(SH, 2024, 5, 10, 14, 0)
    clock = FakeClock(now)
    sink = Collector()
    rt = wall_runtime(sink, site, clock, SnapshotStore(engine))
    await rt.start()
    await rt.handle_readings([reading(site, "pir-living", Stream.MOTION, now - 5, motion=True)])
    late = reading(site, "sos-1", Stream.SOS, now - 3600, pressed=True)
    await rt.handle_readings([late])
    await rt.stop()
    again = Collector()
    rt2 = wall_runtime(again, site, clock, SnapshotStore(engine))
    await rt2.start()
    await rt2.handle_readings([late])
    await rt2.stop()
    await engine.dispose()
    assert len(sink.of(AlertKind.SOS)) == 1
    assert again.of(AlertKind.SOS) == []


async def test_a_site_restored_from_its_snapshot_fires_its_timers_without_a_reading(
    tmp_path: Path,
) -> None:
    """After a restart, a possible fall left open becomes a fall at the first tick, in a
    home that sends nothing more (it used to wait for the site's next reading)."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/snap.db")
    await create_all(engine)
    site = home_site(SH)
    now = local_ts(SH, 2024, 5, 10, 14, 0)
    clock = FakeClock(now)
    rt = wall_runtime(Collector(), site, clock, SnapshotStore(engine))
    await rt.start()
    await rt.handle_readings([reading(site, "radar-1", Stream.FALL, now, status="maybe_fall")])
    await rt.stop()
    clock.advance(120)
    after = Collector()
    rt2 = wall_runtime(after, site, clock, SnapshotStore(engine))
    await rt2.start()
    await rt2.tick()
    await rt2.stop()
    await engine.dispose()
    (fall,) = after.of(AlertKind.FALL)
    assert fall.action == RAISE and fall.ts == now + 60


async def test_a_hazard_alarm_is_a_state_so_a_stale_one_does_not_sound_again() -> None:
    """Smoke is not a momentary emergency: an alarm reading older than the dedupe window,
    arriving after the device said the alarm stopped, must not raise a fire nobody can
    clear; one within the window is applied like any late reading."""
    site = home_site(
        SH, devices=[{"id": "smoke-kitchen", "kind": "smoke_alarm", "room": "kitchen"}]
    )
    now = local_ts(SH, 2024, 5, 10, 14, 0)
    sink = Collector()
    rt = wall_runtime(sink, site, FakeClock(now))
    await rt.handle_readings([reading(site, "smoke-kitchen", Stream.SMOKE, now - 5, smoke=False)])
    stale = reading(site, "smoke-kitchen", Stream.SMOKE, now - 3600, smoke=True)
    await rt.handle_readings([stale])
    assert sink.of(AlertKind.SMOKE) == []
    await rt.handle_readings([reading(site, "smoke-kitchen", Stream.SMOKE, now - 60, smoke=True)])
    (raised,) = sink.of(AlertKind.SMOKE)
    assert raised.action == RAISE and "late_s" not in raised.details
