"""A duplicate is the same content, not merely the same device, stream and second."""

from __future__ import annotations

from detectors.runtime import DetectorRuntime
from eldercare.domain import AlertKind, Stream, TransitionAction
from eldercare.registry_index import RegistryIndex
from eldercare.registry_model import RegistryDocument
from tests.helpers.detectors import home_site, local_ts, reading
from tests.unit.detectors.test_detectors_runtime import Collector

SH = "Asia/Shanghai"


async def test_another_value_in_the_same_second_is_a_new_reading() -> None:
    site = home_site(SH)
    index = RegistryIndex(RegistryDocument(sites=[site]))
    sink = Collector()
    rt = DetectorRuntime(lambda: index, sink, clock_mode="event")
    t = local_ts(SH, 2024, 5, 10, 2, 0)
    await rt.handle_readings(
        [
            reading(site, "bed-1", Stream.OCCUPANCY, t - 3600, occupied=True),
            reading(site, "bed-1", Stream.OCCUPANCY, t, occupied=False),
            reading(site, "pir-kitchen", Stream.MOTION, t + 60, motion=True),
        ]
    )
    # Back in bed at t + 45 min, reported twice within the same second of payload time:
    # empty (a last bounce) then occupied. Before: the second was dropped as a duplicate
    # of the first, so the bed stayed empty and the alert was never cleared.
    back = t + 45 * 60
    await rt.handle_readings(
        [
            reading(site, "bed-1", Stream.OCCUPANCY, back, occupied=False),
            reading(site, "bed-1", Stream.OCCUPANCY, back, occupied=True),
        ]
    )
    await rt.advance_to(back + 3600)
    actions = [t.action for t in sink.transitions if t.kind == AlertKind.BED_EXIT_NO_RETURN]
    assert actions == [TransitionAction.RAISE, TransitionAction.CLEAR]


async def test_the_same_content_again_is_still_a_duplicate() -> None:
    site = home_site(SH)
    index = RegistryIndex(RegistryDocument(sites=[site]))
    sink = Collector()
    rt = DetectorRuntime(lambda: index, sink, clock_mode="event")
    t = local_ts(SH, 2024, 5, 10, 10, 0)
    sos = reading(site, "sos-1", Stream.SOS, t, pressed=True)
    await rt.handle_readings([sos, sos])
    await rt.handle_readings([sos])
    raised = [x for x in sink.transitions if x.kind == AlertKind.SOS]
    assert [x.action for x in raised] == [TransitionAction.RAISE]


async def test_event_clock_stop_fires_timers_up_to_the_last_event_time() -> None:
    """A replay's end: home A's SOS condition clears 120 s after the press; the last
    reading, from home B, came 200 s after it. Readings advance the homes that fell
    silent only to the last event time − 120 s (80 s): the clear waited for ever."""
    a = home_site(SH)
    b = home_site(SH, site_id="home-2", device_suffix="-b")
    index = RegistryIndex(RegistryDocument(sites=[a, b]))
    sink = Collector()
    rt = DetectorRuntime(lambda: index, sink, clock_mode="event")
    t = local_ts(SH, 2024, 5, 10, 10, 0)
    await rt.handle_readings(
        [
            reading(a, "sos-1", Stream.SOS, t, pressed=True),
            reading(b, "pir-kitchen-b", Stream.MOTION, t + 200, motion=True),
        ]
    )
    sos = [x for x in sink.transitions if x.kind == AlertKind.SOS]
    assert [x.action for x in sos] == [TransitionAction.RAISE]
    await rt.stop()
    sos = [x for x in sink.transitions if x.kind == AlertKind.SOS]
    assert [(x.action, x.ts - t) for x in sos] == [
        (TransitionAction.RAISE, 0),
        (TransitionAction.CLEAR, 120),
    ]
