"""device_fault notices on a fake clock, through the real alert pipeline and store
(SQLite) to a real HTTP receiver standing for the centre: an overdue device test and a
fault unfixed past 2 hours are raised once per device and episode, stamped with their
due time; ticking again, or restarting, raises and notifies nothing new; a passed test
(here the device's own test press) ends the episode and the notice clears and resolves
itself."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from alerts.store import AlertFilter, AlertStore, init_store
from eldercare.clock import FakeClock
from eldercare.db import create_engine, session_factory
from eldercare.domain import AlertKind, Reading, Stream
from field_service.device_events import DeviceEventSink
from field_service.device_faults import (
    FAULT_UNFIXED,
    TEST_OVERDUE,
    DeviceFaultWatch,
    episodes,
)
from field_service.device_tests import (
    device_test_status,
    list_tests,
    record_test,
    schedule_tests,
)
from field_service.models import init_field_store
from field_service.orders import OrderStore
from tests.helpers.alerts import (
    SITE,
    T0,
    HttpReceiver,
    make_pipeline,
    policies,
    registry,
    sqlite_url,
)

DAY = 86400.0
WEEK = 7 * DAY


def press(device: str, ts: float, passed: bool = True) -> Reading:
    return Reading(SITE, device, Stream.DEVICE_TEST, ts, {"passed": passed}, ts + 1)


async def test_overdue_test_and_unfixed_fault_raise_once_and_clear_on_a_passed_test(
    tmp_path: Path, http_receiver: HttpReceiver
) -> None:
    clock = FakeClock(T0)
    index = registry([])
    engine = create_engine(sqlite_url(tmp_path))
    await init_store(engine)
    await init_field_store(engine)
    sessions = session_factory(engine)
    store = AlertStore(engine)
    pipeline, _ = make_pipeline(store, index, clock, policies([http_receiver.url("centre")]))
    watch = DeviceFaultWatch(sessions, lambda: index, pipeline, clock.now)
    device_events = DeviceEventSink(sessions, OrderStore(sessions), lambda: index)

    async def device_faults() -> list[object]:
        return list(await store.find(AlertFilter(kinds=[AlertKind.DEVICE_FAULT.value])))

    async def centre_posts() -> int:
        await pipeline.tick()
        return len(http_receiver.to("centre"))

    try:
        assert await watch.tick(T0) == []  # first seen: a new installation owes nothing yet
        # The SOS button passes its test press an hour later; the radar is never tested.
        await device_events.handle_readings([press("sos-1", T0 + 3600)])
        clock.set(T0 + WEEK - 1)
        assert await watch.tick(clock.now()) == []
        clock.set(T0 + WEEK + 60)
        [raised] = await watch.tick(clock.now())
        assert (raised.kind, raised.device_id, raised.ts) == (
            AlertKind.DEVICE_FAULT,
            "radar-1",
            T0 + WEEK,  # stamped with its due time, not the tick's
        )
        assert raised.severity.value == "warning"
        [alert] = await device_faults()
        assert (alert.status.value, alert.raised_at) == ("open", T0 + WEEK)  # type: ignore[attr-defined]
        assert await centre_posts() == 1
        post = http_receiver.to("centre")[0].doc
        assert "设备故障" in post["title"] + post["message"]

        # More ticks, and a restart (a new watch and pipeline on the same store): no new
        # episode, no new transition, no second notification.
        clock.advance(300)
        assert await watch.tick(clock.now()) == []
        pipeline2, _ = make_pipeline(store, index, clock, policies([http_receiver.url("centre")]))
        watch2 = DeviceFaultWatch(sessions, lambda: index, pipeline2, clock.now)
        assert await watch2.tick(clock.now()) == []
        await pipeline2.tick()
        assert await centre_posts() == 1
        assert [e.reason for e in await episodes(sessions)] == [TEST_OVERDUE]

        # The SOS button's self-check fails; not fixed within 2 hours it is a fault of its
        # own episode, on the home's open notice (alerts are per home and kind).
        await device_events.handle_readings([press("sos-1", clock.now())])  # weekly, on time
        failed_at = clock.now() + 100
        await device_events.handle_readings([press("sos-1", failed_at, passed=False)])
        clock.set(failed_at + 7199)
        assert await watch2.tick(clock.now()) == []
        clock.set(failed_at + 7200)
        [fault] = await watch2.tick(clock.now())
        assert (fault.device_id, fault.details["reason"], fault.ts) == (
            "sos-1",
            FAULT_UNFIXED,
            failed_at + 7200,
        )
        [alert] = await device_faults()
        assert {e["device_id"] for e in alert.evidence} == {"radar-1", "sos-1"}  # type: ignore[attr-defined]

        # Both devices pass a test press: their episodes end at the presses' own time and
        # the notice clears (warning: resolved by itself).
        fixed_at = clock.now() + 600
        await device_events.handle_readings([press("sos-1", fixed_at)])
        await device_events.handle_readings([press("sos-1", fixed_at)])  # redelivered
        clock.set(fixed_at + 5)
        assert await watch2.tick(clock.now()) == []  # the radar still owes its test
        await device_events.handle_readings([press("radar-1", fixed_at + 30)])
        clock.advance(30)
        [cleared] = await watch2.tick(clock.now())
        assert (cleared.action.value, cleared.ts) == ("clear", fixed_at + 30)
        await pipeline2.tick()
        [alert] = await device_faults()
        assert alert.condition.value == "cleared" and alert.status.value == "resolved"  # type: ignore[attr-defined]
        ends = {(e.device_id, e.reason): e.ended_at for e in await episodes(sessions)}
        assert ends == {
            ("radar-1", TEST_OVERDUE): fixed_at + 30,
            ("sos-1", FAULT_UNFIXED): fixed_at,
        }
        assert await watch2.tick(clock.now()) == []  # cleared once
        # The watch reads only each device's last pass and its failures: same schedule.
        sites = index.document.sites
        for at in (T0 + DAY, failed_at + 7200, clock.now()):
            full = device_test_status(sites, await list_tests(sessions, [SITE]), at)
            lean = device_test_status(sites, await schedule_tests(sessions, [SITE]), at)
            assert [replace(s, last_test_source=None) for s in full] == [
                replace(s, last_test_source=None) for s in lean
            ]
    finally:
        await engine.dispose()


async def test_a_failed_test_recorded_late_is_a_fault_from_its_own_time(tmp_path: Path) -> None:
    """Event time: a fault logged by a responder for 3 hours ago is already past its 2 h."""
    clock = FakeClock(T0)
    index = registry([])
    engine = create_engine(sqlite_url(tmp_path))
    await init_store(engine)
    await init_field_store(engine)
    sessions = session_factory(engine)
    store = AlertStore(engine)
    pipeline, _ = make_pipeline(store, index, clock, policies([]))
    watch = DeviceFaultWatch(sessions, lambda: index, pipeline, clock.now)
    try:
        for device in ("sos-1", "radar-1"):
            await record_test(
                sessions, site_id=SITE, device_id=device, at=T0 - 4 * 3600, passed=True,
                source="responder", by="wang", note=None,
            )  # fmt: skip
        await record_test(
            sessions, site_id=SITE, device_id="radar-1", at=T0 - 3 * 3600 + 60, passed=False,
            source="responder", by="wang", note="无响应",
        )  # fmt: skip
        [raised] = await watch.tick(T0)
        assert (raised.device_id, raised.ts) == ("radar-1", T0 - 3600 + 60)
    finally:
        await engine.dispose()


def test_the_console_says_device_fault_in_both_languages() -> None:
    """The console's words (kind, evidence, the self-test label) from the terms tables."""
    from gateway.i18n import catalogue

    strings = catalogue()
    assert strings["zh-CN"]["kind.device_fault"] == "设备故障（待检测或维修）"
    assert strings["en"]["kind.device_fault"] == "Device fault (test or repair due)"
    for key in ("evidence.device_test_overdue", "evidence.device_fault_unfixed",
                "devtest.by_device", "device_kind.terminal"):  # fmt: skip
        assert strings["zh-CN"][key] and strings["en"][key]
        assert strings["zh-CN"][key] != strings["en"][key]


async def test_a_replay_without_readings_yet_has_no_time_and_ticks_nothing(tmp_path: Path) -> None:
    """On the event clock the watch's time is the detectors' watermark: before the first
    reading there is none, and the watch waits (the wall clock would be another year)."""
    index = registry([])
    engine = create_engine(sqlite_url(tmp_path))
    await init_field_store(engine)
    sessions = session_factory(engine)
    handed: list[object] = []

    class Sink:
        async def handle_transitions(self, transitions: object) -> None:
            handed.append(transitions)

    watermark: list[float] = []
    watch = DeviceFaultWatch(
        sessions, lambda: index, Sink(), lambda: watermark[-1] if watermark else None
    )
    try:
        await watch.tick_now()
        assert await episodes(sessions) == [] and handed == []
        watermark.append(T0)  # the replay's first reading
        await watch.tick_now()
        watermark.append(T0 + WEEK)  # a week of replayed readings later
        await watch.tick_now()
        assert {e.device_id for e in await episodes(sessions)} == {"sos-1", "radar-1"}
        assert {e.since for e in await episodes(sessions)} == {T0 + WEEK}
    finally:
        await engine.dispose()
