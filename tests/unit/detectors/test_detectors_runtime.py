"""The detector runtime: routing, clocks, order, duplicates, persistence (real SQLite)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detectors.runtime import DetectorRuntime
from detectors.site_detectors import _errors, content_hash
from detectors.snapshot_store import SnapshotStore
from eldercare.clock import FakeClock
from eldercare.db import create_all, create_engine
from eldercare.domain import (
    AlertKind,
    FieldValue,
    Reading,
    Severity,
    Stream,
    Transition,
    TransitionAction,
)
from eldercare.registry_index import PlannedAbsence, RegistryIndex
from eldercare.registry_model import RegistryDocument, Site
from tests.helpers.detectors import HOME_DEVICES, home_site, local_ts, reading
from tests.helpers.examples import examples
from tests.unit.detectors.test_wearable_fall_signals import Signal, batches

SH = "Asia/Shanghai"
RAISE, CLEAR = TransitionAction.RAISE, TransitionAction.CLEAR
UPDATE = TransitionAction.UPDATE


class Collector:
    def __init__(self) -> None:
        self.transitions: list[Transition] = []

    async def handle_transitions(self, transitions: Sequence[Transition]) -> None:
        self.transitions.extend(transitions)

    def of(self, kind: AlertKind) -> list[tuple[TransitionAction, float]]:
        return [(t.action, t.ts) for t in self.transitions if t.kind == kind]


def _index(*sites: Site) -> RegistryIndex:
    return RegistryIndex(RegistryDocument(sites=list(sites)))


def _runtime(sink: Collector, *sites: Site, **kw: Any) -> DetectorRuntime:
    index = _index(*sites)
    return DetectorRuntime(lambda: index, sink, clock_mode=kw.pop("clock_mode", "event"), **kw)


def _night_exit(site: Site) -> tuple[list[Reading], float]:
    t = local_ts(SH, 2024, 5, 10, 2, 0)
    return [
        reading(site, "bed-1", Stream.OCCUPANCY, t - 3600, occupied=True),
        reading(site, "bed-1", Stream.OCCUPANCY, t, occupied=False),
        reading(site, "pir-kitchen", Stream.MOTION, t + 300, motion=True),
        reading(site, "bed-1", Stream.OCCUPANCY, t + 45 * 60, occupied=True),
    ], t


async def test_event_mode_timer_fires_stamped_with_due_time() -> None:
    site = home_site(SH)
    sink = Collector()
    rt = _runtime(sink, site)
    rs, t = _night_exit(site)
    await rt.handle_readings(rs)
    assert sink.of(AlertKind.BED_EXIT_NO_RETURN) == [(RAISE, t + 1800), (CLEAR, t + 2700)]


async def test_out_of_order_within_a_batch_and_duplicates() -> None:
    site = home_site(SH)
    sink = Collector()
    rt = _runtime(sink, site)
    rs, t = _night_exit(site)
    shuffled = [rs[2], rs[0], rs[3], rs[1], rs[1], rs[0]]
    await rt.handle_readings(shuffled)
    await rt.handle_readings([rs[3]])  # redelivered in a later batch
    assert sink.of(AlertKind.BED_EXIT_NO_RETURN) == [(RAISE, t + 1800), (CLEAR, t + 2700)]


async def test_late_reading_applied_at_site_time_too_old_left_out() -> None:
    site = home_site(SH)
    t = local_ts(SH, 2024, 5, 10, 2, 0)
    sink = Collector()
    rt = _runtime(sink, site, dedupe_s=900)
    await rt.handle_readings([reading(site, "radar-1", Stream.FALL, t, status="maybe_fall")])
    await rt.handle_readings([reading(site, "pir-living", Stream.MOTION, t + 50, motion=True)])
    # Movement in the radar's room at t+40 arrives after t+50 was applied: still counts.
    await rt.handle_readings([reading(site, "pir-bath", Stream.MOTION, t + 40, motion=True)])
    await rt.advance_to(t + 600)
    assert sink.of(AlertKind.FALL) == []
    # A late SOS is raised, stamped with the site's time: even one 1000 s old (beyond the
    # duplicate memory), which an ordinary reading would not be (tests/test_late_emergencies).
    sink2 = Collector()
    rt2 = _runtime(sink2, site, dedupe_s=900)
    await rt2.handle_readings([reading(site, "pir-living", Stream.MOTION, t + 2000, motion=True)])
    await rt2.handle_readings([reading(site, "sos-1", Stream.SOS, t + 1000, pressed=True)])
    await rt2.handle_readings([reading(site, "sos-1", Stream.SOS, t + 1500, pressed=True)])
    assert sink2.of(AlertKind.SOS) == [(RAISE, t + 2000), (UPDATE, t + 2000)]
    assert sink2.transitions[0].evidence[0].ts == t + 2000
    assert [x.details.get("late_s") for x in sink2.transitions] == [1000, 500]
    # An ordinary reading that old is still left out.
    await rt2.handle_readings([reading(site, "pir-bath", Stream.MOTION, t + 1000, motion=True)])
    assert len(sink2.transitions) == 2


async def test_silent_site_judged_against_global_watermark() -> None:
    devices = [{"id": "pir-a", "kind": "motion", "room": "living", "report_interval_s": 300}]
    quiet = home_site(SH, site_id="quiet", devices=devices)
    busy_devices = [{"id": "pir-b", "kind": "motion", "room": "living", "report_interval_s": 300}]
    busy = home_site(SH, site_id="busy", devices=busy_devices)
    sink = Collector()
    rt = _runtime(sink, quiet, busy, lateness_s=60)
    t = local_ts(SH, 2024, 5, 10, 12, 0)
    await rt.handle_readings([reading(quiet, "pir-a", Stream.HEARTBEAT, t)])
    for k in range(1, 30):  # only the busy site speaks, every minute
        await rt.handle_readings([reading(busy, "pir-b", Stream.HEARTBEAT, t + 60 * k)])
    offline = [
        (x.site_id, x.action, x.ts) for x in sink.transitions if x.kind == AlertKind.SITE_OFFLINE
    ]
    assert offline == [("quiet", RAISE, t + 600)]


async def test_wall_mode_timer_task_fires_on_the_fake_clock() -> None:
    site = home_site(SH)
    sink = Collector()
    clock = FakeClock(local_ts(SH, 2024, 5, 10, 1, 0))
    rt = _runtime(sink, site, clock_mode="wall", clock=clock)
    t = clock.now()
    await rt.handle_readings([reading(site, "sos-1", Stream.SOS, t, pressed=True)])
    assert sink.of(AlertKind.SOS) == [(RAISE, t)]
    clock.advance(119)
    await rt.tick()
    assert sink.of(AlertKind.SOS) == [(RAISE, t)]
    clock.advance(600)
    await rt.tick()
    assert sink.of(AlertKind.SOS) == [(RAISE, t), (CLEAR, t + 120)]  # stamped with its due time


async def test_wall_mode_tick_with_nothing_due_leaves_readings_their_own_time() -> None:
    """The 1 s tick of wall mode does not push a site with nothing due to the wall clock: a
    reading published just before the tick keeps its own event time (not late, not copied)."""
    from detectors.detector_host import _late

    site = home_site(SH)
    sink = Collector()
    clock = FakeClock(local_ts(SH, 2024, 5, 10, 15, 0))
    rt = _runtime(sink, site, clock_mode="wall", clock=clock)
    t = clock.now()
    await rt.handle_readings([reading(site, "pir-living", Stream.MOTION, t, motion=True)])
    clock.advance(1.0)
    await rt.tick()
    assert rt.sites[site.id].clock == t
    late_before = _late.value()
    await rt.handle_readings([reading(site, "sos-1", Stream.SOS, t + 0.95, pressed=True)])
    assert _late.value() == late_before
    assert sink.of(AlertKind.SOS) == [(RAISE, t + 0.95)]
    # A tick that fires a timer moves the clock on: an older reading is then applied at it,
    # so nothing is stamped before what the site already emitted.
    clock.set(t + 200)
    await rt.tick()
    assert sink.of(AlertKind.SOS) == [(RAISE, t + 0.95), (CLEAR, t + 120.95)]
    assert rt.sites[site.id].clock == t + 200
    await rt.handle_readings([reading(site, "sos-1", Stream.SOS, t + 150, pressed=True)])
    assert sink.of(AlertKind.SOS)[-1] == (RAISE, t + 200)
    assert _late.value() == late_before + 1


async def test_dedupe_window_forgets_from_the_front() -> None:
    site = home_site(SH)
    rt = _runtime(Collector(), site, dedupe_s=900, lateness_s=60)
    t = local_ts(SH, 2024, 5, 10, 15, 0)
    for k in range(40):  # one a minute, and one late reading 5 minutes behind
        await rt.handle_readings([reading(site, "pir-living", Stream.HEARTBEAT, t + 60 * k)])
        if k == 20:
            await rt.handle_readings([reading(site, "pir-bed", Stream.HEARTBEAT, t + 60 * k - 300)])
    recent = rt.sites[site.id].recent
    horizon = t + 60 * 39 - 900
    assert all(key[2] >= horizon for key in recent if key[1] == "heartbeat")
    assert [k for k in recent if k[0] == "pir-living"] == [
        ("pir-living", "heartbeat", t + 60 * k) for k in range(24, 40)
    ]
    assert ("pir-bed", "heartbeat", t + 60 * 20 - 300) not in recent
    # A redelivery within the window is still recognised.
    before = dict(recent)
    await rt.handle_readings([reading(site, "pir-living", Stream.HEARTBEAT, t + 60 * 30)])
    assert rt.sites[site.id].recent == before


async def test_registry_change_rebuilds_and_keeps_open_conditions() -> None:
    site = home_site(SH)
    sink = Collector()
    holder = {"index": _index(site)}
    rt = DetectorRuntime(lambda: holder["index"], sink, clock_mode="event")
    rs, t = _night_exit(site)
    await rt.handle_readings(rs[:3])
    await rt.advance_to(t + 1800)
    assert sink.of(AlertKind.BED_EXIT_NO_RETURN) == [(RAISE, t + 1800)]
    edited = home_site(SH, site_overrides={"bathroom_too_long": {"day_minutes": 30}})
    holder["index"] = _index(edited)
    await rt.handle_readings(rs[3:])
    assert rt.sites[site.id].site == edited
    assert sink.of(AlertKind.BED_EXIT_NO_RETURN) == [(RAISE, t + 1800), (CLEAR, t + 2700)]


async def test_invalid_overrides_keep_the_previous_detectors() -> None:
    site = home_site(SH)
    sink = Collector()
    holder = {"index": _index(site)}
    rt = DetectorRuntime(lambda: holder["index"], sink, clock_mode="event")
    rs, t = _night_exit(site)
    await rt.handle_readings(rs[:3])
    bad = home_site(SH, site_overrides={"bed_exit_no_return": {"minutes": -5}})
    holder["index"] = _index(bad)
    await rt.handle_readings(rs[3:])
    assert sink.of(AlertKind.BED_EXIT_NO_RETURN) == [(RAISE, t + 1800), (CLEAR, t + 2700)]


async def test_restart_resumes_open_condition_without_reraising(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/snap.db")
    await create_all(engine)
    site = home_site(SH)
    rs, t = _night_exit(site)

    sink1 = Collector()
    rt1 = _runtime(sink1, site, snapshot_store=SnapshotStore(engine))
    await rt1.start()
    await rt1.handle_readings(rs[:3])
    await rt1.advance_to(t + 1900)
    await rt1.stop()
    assert sink1.of(AlertKind.BED_EXIT_NO_RETURN) == [(RAISE, t + 1800)]

    sink2 = Collector()
    rt2 = _runtime(sink2, site, snapshot_store=SnapshotStore(engine))
    await rt2.start()
    await rt2.handle_readings(rs[2:])  # the broker redelivers one reading already seen
    await rt2.stop()
    assert sink2.of(AlertKind.BED_EXIT_NO_RETURN) == [(CLEAR, t + 2700)]
    await engine.dispose()


async def test_restore_site_builds_it_now_and_its_timers_fire_without_a_reading() -> None:
    site = home_site(SH)
    rs, t = _night_exit(site)
    rt1 = _runtime(Collector(), site)
    await rt1.handle_readings(rs[:3])  # out of bed, seen in the kitchen
    states = rt1.sites[site.id].snapshot()

    sink = Collector()
    rt2 = _runtime(sink, site)
    assert rt2.restore_site(site.id, states)
    assert site.id in rt2.sites
    await rt2.advance_to(t + 1900)  # no reading for the site after the restore
    assert sink.of(AlertKind.BED_EXIT_NO_RETURN) == [(RAISE, t + 1800)]
    assert not rt2.restore_site("no-such-site", states)  # unknown: nothing kept
    await rt2.advance_to(t + 2000)
    assert sink.of(AlertKind.BED_EXIT_NO_RETURN) == [(RAISE, t + 1800)]
    assert set(rt2.sites) == {site.id}


async def test_snapshots_are_saved_in_chunks_with_readings_handled_between(
    tmp_path: Path,
) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/snap.db")
    await create_all(engine)
    store = SnapshotStore(engine)
    sites = [home_site(SH, site_id=f"h{i}", device_suffix=f"-{i}") for i in range(5)]
    rt = _runtime(Collector(), *sites, snapshot_store=store, snapshot_chunk=2)
    await rt.start()
    t = local_ts(SH, 2024, 5, 10, 15, 0)
    await rt.handle_readings(
        [reading(s, f"pir-living-{i}", Stream.MOTION, t, motion=True) for i, s in enumerate(sites)]
    )
    saving = asyncio.create_task(rt.save_snapshots())
    await asyncio.sleep(0)  # the save takes its first chunk (h0, h1) and writes it
    await rt.handle_readings([reading(sites[0], "pir-living-0", Stream.MOTION, t + 5, motion=True)])
    await rt.handle_readings([reading(sites[4], "pir-living-4", Stream.MOTION, t + 5, motion=True)])
    assert not saving.done()  # the readings did not wait for the whole save
    await saving
    stored = await store.load_all()
    assert set(stored) == {s.id for s in sites}
    # h0 was saved before its reading, h4 after (its chunk came later): it is clean.
    assert [rt.sites[s.id].dirty for s in sites] == [True, False, False, False, False]
    assert [stored[s.id]["_runtime"]["clock"] for s in sites] == [t, t, t, t, t + 5]
    await rt.stop()  # saves everything, the site changed during the save included
    assert (await store.load_all())["h0"]["_runtime"]["clock"] == t + 5
    await engine.dispose()


async def test_a_failed_snapshot_save_leaves_the_sites_to_save_again(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/snap.db")  # no table yet
    store = SnapshotStore(engine)
    sites = [home_site(SH, site_id=f"h{i}", device_suffix=f"-{i}") for i in range(3)]
    rt = _runtime(Collector(), *sites, snapshot_store=store, snapshot_chunk=2)
    t = local_ts(SH, 2024, 5, 10, 15, 0)
    await rt.handle_readings(
        [reading(s, f"pir-living-{i}", Stream.MOTION, t, motion=True) for i, s in enumerate(sites)]
    )
    with pytest.raises(Exception, match="detector_snapshots"):
        await rt.save_snapshots()
    assert [rt.sites[s.id].dirty for s in sites] == [True, True, True]
    await create_all(engine)  # the database is back
    await rt.save_snapshots()
    assert set(await store.load_all()) == {s.id for s in sites}
    assert not any(rt.sites[s.id].dirty for s in sites)
    await engine.dispose()


# --- batch boundaries do not matter in event mode ---------------------------------------------


def _busy_day() -> tuple[list[Site], list[Reading]]:
    a = home_site(SH, site_id="home-a")
    b_devices: list[dict[str, Any]] = [
        {"id": "b-bed", "kind": "bed", "room": "bedroom", "report_interval_s": 600},
        {"id": "b-pir", "kind": "motion", "room": "living", "report_interval_s": 900},
        {"id": "b-door", "kind": "door", "room": "entrance", "outer_door": True},
        {"id": "b-bath", "kind": "motion", "room": "bathroom"},
    ]
    b = home_site("Europe/Berlin", site_id="home-b", devices=b_devices)
    t = local_ts(SH, 2024, 5, 10, 21, 0)
    plan: list[tuple[Site, str, Stream, float, dict[str, FieldValue]]] = [
        (a, "pir-living", Stream.MOTION, 0, {"motion": True}),
        (b, "b-pir", Stream.MOTION, 10, {"motion": True}),
        (a, "bed-1", Stream.OCCUPANCY, 60, {"occupied": True}),
        (a, "sos-1", Stream.SOS, 100, {"pressed": True}),
        (b, "b-bath", Stream.MOTION, 200, {"motion": True}),
        (a, "bed-1", Stream.OCCUPANCY, 180 * 60, {"occupied": False}),
        (a, "radar-1", Stream.FALL, 181 * 60, {"status": "maybe_fall"}),
        (b, "b-door", Stream.CONTACT, 300 * 60, {"open": True}),
        (a, "pir-kitchen", Stream.MOTION, 330 * 60, {"motion": True}),
        (a, "bed-1", Stream.OCCUPANCY, 340 * 60, {"occupied": True}),
        (b, "b-pir", Stream.MOTION, 600 * 60, {"motion": True}),
        (a, "pir-living", Stream.MOTION, 800 * 60, {"motion": True}),
    ]
    readings = [reading(s, d, stream, t + dt, **f) for s, d, stream, dt, f in plan]
    return [a, b], readings


async def _replay_in_batches(cuts: list[int]) -> dict[str, list[Transition]]:
    sites, readings = _busy_day()
    sink = Collector()
    rt = _runtime(sink, *sites)
    start = 0
    for cut in [*sorted(set(cuts)), len(readings)]:
        if cut > start:
            await rt.handle_readings(readings[start:cut])
            start = cut
    await rt.advance_to(readings[-1].ts + 86400)
    per_site: dict[str, list[Transition]] = {}
    for tr in sink.transitions:
        per_site.setdefault(tr.site_id, []).append(tr)
    return per_site


@settings(
    max_examples=examples(40),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.lists(st.integers(min_value=1, max_value=11), max_size=11))
async def test_event_mode_same_transitions_whatever_the_batches(cuts: list[int]) -> None:
    whole = await _replay_in_batches([])
    assert whole["home-a"] and whole["home-b"]  # the day raises things at both sites
    assert await _replay_in_batches(cuts) == whole


def test_bad_clock_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="clock_mode"):
        DetectorRuntime(lambda: RegistryIndex.empty(), Collector(), clock_mode="lunar")  # type: ignore[arg-type]


_EVENTS: list[tuple[str, Stream, dict[str, FieldValue]]] = [
    ("pir-living", Stream.MOTION, {"motion": True}),
    ("pir-kitchen", Stream.MOTION, {"motion": True}),
    ("pir-bath", Stream.MOTION, {"motion": True}),
    ("door-bath", Stream.CONTACT, {"open": True}),
    ("door-front", Stream.CONTACT, {"open": True}),
    ("door-front", Stream.CONTACT, {"open": False}),
    ("bed-1", Stream.OCCUPANCY, {"occupied": True}),
    ("bed-1", Stream.OCCUPANCY, {"occupied": False}),
    ("radar-1", Stream.FALL, {"status": "maybe_fall"}),
    ("radar-1", Stream.FALL, {"status": "none"}),
    ("sos-1", Stream.SOS, {"pressed": True}),
    ("vitals-1", Stream.VITALS, {"heart_rate": 130.0, "breathing_rate": 14.0}),
    ("pir-living", Stream.BATTERY, {"percent": 10.0}),
    ("pir-living", Stream.BATTERY, {"percent": 30.0}),
    ("door-front", Stream.AVAILABILITY, {"online": False}),
]


def _random_sites() -> list[Site]:
    return [
        home_site(SH, site_id="h1"),
        home_site("Europe/Berlin", site_id="h2", device_suffix="-b"),
    ]


@st.composite
def _random_day(draw: st.DrawFn) -> tuple[list[Reading], list[int]]:
    sites = _random_sites()
    steps = draw(
        st.lists(
            st.tuples(
                st.integers(0, 1),
                st.integers(0, len(_EVENTS) - 1),
                st.floats(0, 4 * 3600, allow_nan=False),
            ),
            min_size=1,
            max_size=40,
        )
    )
    t = local_ts(SH, 2024, 3, 30, 20, 0)  # across Berlin's DST change
    readings = []
    for site_index, event, gap in steps:
        t += gap
        device, stream, fields = _EVENTS[event]
        suffix = "-b" if site_index else ""
        readings.append(reading(sites[site_index], device + suffix, stream, t, **fields))
    cuts = draw(st.lists(st.integers(1, len(readings)), max_size=10))
    return readings, cuts


async def _replay_random(readings: list[Reading], cuts: list[int]) -> dict[str, list[Transition]]:
    index = _index(*_random_sites())
    sink = Collector()
    rt = DetectorRuntime(lambda: index, sink, clock_mode="event")
    start = 0
    for cut in [*sorted(set(cuts)), len(readings)]:
        if cut > start:
            await rt.handle_readings(readings[start:cut])
            start = cut
    await rt.advance_to(readings[-1].ts + 2 * 86400)
    per_site: dict[str, list[Transition]] = {}
    for tr in sink.transitions:
        per_site.setdefault(tr.site_id, []).append(tr)
    return per_site


@settings(max_examples=examples(60), deadline=None)
@given(_random_day())
async def test_random_days_same_transitions_whatever_the_batches(
    day: tuple[list[Reading], list[int]],
) -> None:
    readings, cuts = day
    assert await _replay_random(readings, cuts) == await _replay_random(readings, [])


# --- accelerometer batches keep their own event time ------------------------------------------


def _wearable_home() -> Site:
    devices = [
        *HOME_DEVICES,
        {"id": "pendant-1", "kind": "wearable", "room": "living", "resident": "res-1"},
    ]
    return home_site(SH, devices=devices)


def _accel_story(site: Site) -> tuple[list[Reading], float]:
    """Walk, fall, lie still: 1 s ACCEL batches, each arriving with a living-room PIR event
    stamped 0.7 s after the batch's start (so every batch is older than the site's clock)."""
    sig = Signal(start=local_ts(SH, 2024, 5, 10, 15, 0)).still(2).walk(8).fall(lie_s=40)
    out: list[Reading] = []
    for b in batches(sig):
        out.append(dataclasses.replace(b, site_id=site.id, room_id="living"))
        out.append(reading(site, "pir-kitchen", Stream.MOTION, b.ts + 0.7, motion=True))
    return out, sig.marks["impact"]


async def test_late_accel_batches_keep_their_own_time_and_still_raise_at_the_impact() -> None:
    site = _wearable_home()
    rs, impact = _accel_story(site)
    for batch_size in (1, 2, 7):  # batches of arrivals as ingest would hand them over
        sink = Collector()
        rt = _runtime(sink, site)
        # Each arrival pair in the order ingest receives it: the PIR event first, then the
        # accelerometer batch that started before it.
        arrivals = [r for i in range(0, len(rs), 2) for r in (rs[i + 1], rs[i])]
        for k in range(0, len(arrivals), batch_size):
            await rt.handle_readings(arrivals[k : k + batch_size])
        raised = [t for t in sink.transitions if t.kind == AlertKind.WEARABLE_FALL]
        assert [t.action for t in raised] == [RAISE], batch_size
        assert raised[0].ts == pytest.approx(impact, abs=1e-6)


# --- a failing detector never blocks ingest ---------------------------------------------------


class _Broken:
    """A detector that fails on motion readings, on advancing past a time, or in next_due."""

    kinds = (AlertKind.INACTIVITY,)

    def __init__(self, fail_on: str) -> None:
        self.fail_on = fail_on

    def update(self, reading: Reading) -> list[Transition]:
        if self.fail_on == "update" and reading.stream is Stream.MOTION:
            raise ValueError("broken rule")
        return []

    def advance(self, now: float) -> list[Transition]:
        if self.fail_on == "advance":
            raise ZeroDivisionError("broken timer")
        return []

    def next_due(self) -> float | None:
        if self.fail_on == "next_due":
            raise KeyError("broken due")
        return 0.0 if self.fail_on == "advance" else None

    def snapshot(self) -> dict[str, object]:
        if self.fail_on == "snapshot":
            raise TypeError("broken snapshot")
        return {}

    def restore(self, state: object) -> None:
        pass


@pytest.mark.parametrize("fail_on", ["update", "advance", "next_due"])
async def test_a_failing_detector_is_contained_and_counted(
    fail_on: str, caplog: pytest.LogCaptureFixture
) -> None:
    site = home_site(SH)
    sink = Collector()
    rt = _runtime(sink, site)
    rs, t = _night_exit(site)
    await rt.handle_readings(rs[:1])  # builds the site's detectors
    rt.sites[site.id].detectors["broken"] = _Broken(fail_on)
    before = _errors.value(cause=fail_on, detector="broken")
    caplog.clear()
    for r in rs[1:]:  # every call returns normally: ingest can acknowledge its messages
        await rt.handle_readings([r])
    await rt.advance_to(t + 3600)
    # The other detectors saw everything.
    assert sink.of(AlertKind.BED_EXIT_NO_RETURN) == [(RAISE, t + 1800), (CLEAR, t + 2700)]
    assert _errors.value(cause=fail_on, detector="broken") > before
    failures = [r for r in caplog.records if r.getMessage().startswith("detector failed")]
    assert len(failures) == 1  # logged once per cause, however often it fails
    assert failures[0].__dict__["site"] == site.id
    assert failures[0].__dict__["detector"] == "broken"


# --- a site removed from the registry ---------------------------------------------------------


async def test_removed_site_clears_open_conditions_and_forgets_its_snapshots(
    tmp_path: Path,
) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/snap.db")
    await create_all(engine)
    store = SnapshotStore(engine)
    gone = home_site(SH, site_id="gone")
    kept = home_site(SH, site_id="kept", device_suffix="-k")
    holder = {"index": RegistryIndex(RegistryDocument(sites=[gone, kept]), version=1)}
    sink = Collector()
    rt = DetectorRuntime(lambda: holder["index"], sink, clock_mode="event", snapshot_store=store)
    await rt.start()
    rs, t = _night_exit(gone)
    await rt.handle_readings(rs[:3])
    await rt.advance_to(t + 1900)
    await rt.handle_readings([reading(kept, "pir-living-k", Stream.MOTION, t + 1900, motion=True)])
    assert sink.of(AlertKind.BED_EXIT_NO_RETURN) == [(RAISE, t + 1800)]
    await rt.save_snapshots()
    assert set(await store.load_all()) == {"gone", "kept"}

    # The process starts with an empty placeholder index: that is not a removal.
    holder["index"] = RegistryIndex.empty()
    await rt.advance_to(t + 1950)
    assert set(rt.sites) == {"gone", "kept"}

    holder["index"] = RegistryIndex(RegistryDocument(sites=[kept]), version=2)
    await rt.handle_readings([reading(kept, "pir-living-k", Stream.MOTION, t + 2000, motion=True)])
    removal = [
        x for x in sink.transitions if x.details.get("reason") == "site removed from the registry"
    ]
    assert {(x.site_id, x.action, x.ts) for x in removal} == {("gone", CLEAR, t + 1950)}
    assert {(x.kind, x.resident_id) for x in removal} == _open_at_end(
        sink.transitions[: -len(removal)], "gone"
    )
    assert (AlertKind.BED_EXIT_NO_RETURN, "res-1") in {(x.kind, x.resident_id) for x in removal}
    assert set(rt.sites) == {"kept"}
    await rt.stop()
    assert set(await store.load_all()) == {"kept"}
    # Readings still arriving for it (a device not yet unplugged) are not detected on.
    before = len(sink.transitions)
    await rt.handle_readings([reading(gone, "sos-1", Stream.SOS, t + 2100, pressed=True)])
    assert len(sink.transitions) == before
    await engine.dispose()


def _open_at_end(transitions: list[Transition], site_id: str) -> set[tuple[AlertKind, str | None]]:
    open_: set[tuple[AlertKind, str | None]] = set()
    for x in transitions:
        if x.site_id == site_id:
            key = (x.kind, x.resident_id)
            (open_.discard if x.action == CLEAR else open_.add)(key)
    return open_


async def test_site_removed_while_down_is_cleared_from_its_snapshot(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/snap.db")
    await create_all(engine)
    store = SnapshotStore(engine)
    gone = home_site(SH, site_id="gone")
    rs, t = _night_exit(gone)
    sink1 = Collector()
    rt1 = DetectorRuntime(
        lambda: RegistryIndex(RegistryDocument(sites=[gone]), version=1),
        sink1,
        clock_mode="event",
        snapshot_store=store,
    )
    await rt1.start()
    await rt1.handle_readings(rs[:3])
    await rt1.advance_to(t + 1900)
    await rt1.stop()
    assert sink1.of(AlertKind.BED_EXIT_NO_RETURN) == [(RAISE, t + 1800)]

    other = home_site(SH, site_id="other", device_suffix="-o")
    sink2 = Collector()
    rt2 = DetectorRuntime(
        lambda: RegistryIndex(RegistryDocument(sites=[other]), version=5),
        sink2,
        clock_mode="event",
        snapshot_store=store,
    )
    await rt2.start()
    await rt2.handle_readings([reading(other, "pir-living-o", Stream.MOTION, t + 4000)])
    removal = [x for x in sink2.transitions if x.site_id == "gone"]
    assert {(x.action, x.ts) for x in removal} == {(CLEAR, t + 1900)}
    assert {(x.kind, x.resident_id) for x in removal} == _open_at_end(sink1.transitions, "gone")
    assert AlertKind.BED_EXIT_NO_RETURN in {x.kind for x in removal}
    await rt2.stop()
    assert set(await store.load_all()) == {"other"}
    await engine.dispose()


async def test_a_detector_failing_to_snapshot_does_not_stop_the_others(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/snap.db")
    await create_all(engine)
    store = SnapshotStore(engine)
    site = home_site(SH)
    holder = {"index": _index(site)}
    rt = DetectorRuntime(lambda: holder["index"], Collector(), snapshot_store=store)
    rs, _ = _night_exit(site)
    await rt.handle_readings(rs[:1])
    rt.sites[site.id].detectors["broken"] = _Broken("snapshot")
    before = _errors.value(cause="snapshot", detector="broken")
    await rt.save_snapshots()
    # A registry edit carries state over through snapshots: still no exception.
    holder["index"] = _index(home_site(SH, site_overrides={"sos": {"repeat_window_s": 60}}))
    await rt.handle_readings(rs[1:2])
    assert _errors.value(cause="snapshot", detector="broken") == before + 2
    stored = (await store.load_all())[site.id]
    assert "broken" not in stored and "bed_exit_no_return" in stored
    await engine.dispose()


def test_open_conditions_of_known_and_unknown_residents_survive_a_snapshot() -> None:
    from detectors.site_detectors import SiteDetectors

    site = home_site(SH)
    states = SiteDetectors(site, {})
    for resident in ("res-1", None):
        states.note(Transition(RAISE, AlertKind.INACTIVITY, site.id, 1.0, Severity.HIGH, resident))
    again = SiteDetectors(site, {})
    again.restore(states.snapshot())
    assert again.open == {("inactivity", "res-1"): "high", ("inactivity", None): "high"}


async def _out_since_nine(
    site: Site,
) -> tuple[DetectorRuntime, Collector, dict[str, RegistryIndex], float]:
    """A runtime whose resident left at 09:00 and has been away six hours (no alert yet);
    the registry index it reads sits in the returned dict, to be swapped."""
    sink = Collector()
    holder = {"index": RegistryIndex(RegistryDocument(sites=[site]), version=1)}
    rt = DetectorRuntime(lambda: holder["index"], sink, clock_mode="event")
    t = local_ts(SH, 2024, 5, 10, 9, 0)
    await rt.handle_readings(
        [
            reading(site, "pir-kitchen", Stream.MOTION, t - 60, motion=True),
            reading(site, "door-front", Stream.CONTACT, t, open=True),
            reading(site, "door-front", Stream.CONTACT, t + 5, open=False),
        ]
    )
    await rt.advance_to(t + 6 * 3600)
    assert sink.of(AlertKind.NOT_RETURNED) == []
    return rt, sink, holder, t


async def test_planned_absence_declared_in_the_registry_during_an_absence() -> None:
    """Family declares "at my daughter's until Sunday 18:00" after she has left: the
    edit reaches the running rule with the site's next reading, state carried over."""
    site = home_site(SH)
    rt, sink, holder, t = await _out_since_nine(site)
    plan = {"not_returned": {"planned_absence_until": "2024-05-12T18:00"}}
    holder["index"] = RegistryIndex(
        RegistryDocument(sites=[home_site(SH, resident_overrides=plan)]), version=2
    )
    await rt.handle_readings(
        [reading(site, "sos-1", Stream.BATTERY, t + 6 * 3600 + 1, percent=90.0)]
    )
    await rt.advance_to(local_ts(SH, 2024, 5, 12, 23, 0))
    # Not at 22:00 that evening (by night) nor after 12 h: at the declared end + 60 min.
    assert sink.of(AlertKind.NOT_RETURNED) == [(RAISE, local_ts(SH, 2024, 5, 12, 19, 0))]


async def test_declared_absence_in_the_index_reaches_the_running_rule() -> None:
    """The same, declared through the API's table (`RegistryIndex.planned_absences`) rather
    than the registry YAML: the runtime builds from `detector_site`, which lays it over."""
    site = home_site(SH)
    rt, sink, holder, t = await _out_since_nine(site)
    declared = PlannedAbsence(
        resident_id=site.residents[0].id,
        site_id=site.id,
        until="2024-05-12T18:00",
        until_ts=local_ts(SH, 2024, 5, 12, 18, 0),
        note="",
        declared_by="daughter",
        declared_at=t + 6 * 3600,
    )
    holder["index"] = RegistryIndex(
        RegistryDocument(sites=[site]),
        version=2,
        planned_absences={(declared.site_id, declared.resident_id): declared},
    )
    await rt.handle_readings(
        [reading(site, "sos-1", Stream.BATTERY, t + 6 * 3600 + 1, percent=90.0)]
    )
    await rt.advance_to(local_ts(SH, 2024, 5, 12, 23, 0))
    assert sink.of(AlertKind.NOT_RETURNED) == [(RAISE, local_ts(SH, 2024, 5, 12, 19, 0))]


async def test_on_growth_is_called_as_detector_sets_grow_by_a_quarter() -> None:
    sites = [home_site(SH, site_id=f"h{i:03d}", device_suffix=f"-{i}") for i in range(200)]
    calls: list[int] = []
    sink = Collector()
    rt: DetectorRuntime
    rt = _runtime(sink, *sites, on_growth=lambda: calls.append(len(rt.sites)))
    t = local_ts(SH, 2024, 5, 10, 9, 0)
    for i, site in enumerate(sites):
        await rt.handle_readings(
            [reading(site, f"pir-kitchen-{i}", Stream.MOTION, t + i, motion=True)]
        )
    # At least 64 sets before the first call, then a quarter more each time.
    assert calls == [64, 80, 100, 125, 157, 197]


def test_content_hash_tells_contents_apart_and_takes_any_value() -> None:
    assert content_hash({"motion": True}) == content_hash({"motion": True})
    assert content_hash({"motion": True}) != content_hash({"motion": False})
    assert content_hash({"a": 1.0, "b": "x"}) == content_hash({"b": "x", "a": 1.0})
    unhashable: dict[str, Any] = {"x": [0.1, 0.2]}  # a list where a tuple belongs
    other: dict[str, Any] = {"x": [0.1, 0.3]}
    assert content_hash(unhashable) == content_hash(dict(unhashable))
    assert content_hash(unhashable) != content_hash(other)
