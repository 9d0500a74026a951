"""Event mode: a reading stamped with ingest's receive time (no event time of its own)
does not move a site's clock or the watermark."""

from __future__ import annotations

import dataclasses

from detectors.runtime import DetectorRuntime
from eldercare.domain import AlertKind, Reading, Stream, TransitionAction
from eldercare.registry_index import RegistryIndex
from eldercare.registry_model import RegistryDocument, Site
from tests.helpers.detectors import home_site, local_ts, reading
from tests.unit.detectors.test_detectors_runtime import Collector

SH = "Asia/Shanghai"
RAISE, CLEAR = TransitionAction.RAISE, TransitionAction.CLEAR


def _runtime(sink: Collector, site: Site) -> DetectorRuntime:
    index = RegistryIndex(RegistryDocument(sites=[site]))
    return DetectorRuntime(lambda: index, sink, clock_mode="event")


def _received(site: Site, ts: float, online: bool) -> Reading:
    r = reading(site, "pir-living", Stream.AVAILABILITY, ts, online=online)
    return dataclasses.replace(r, time_from_payload=False)


async def test_receive_stamped_reading_does_not_push_the_event_clock() -> None:
    site = home_site(SH)
    sink = Collector()
    rt = _runtime(sink, site)
    t = local_ts(SH, 2024, 5, 10, 2, 0)
    wall = t + 10 * 86400  # the replay runs days behind the wall clock
    await rt.handle_readings([reading(site, "bed-1", Stream.OCCUPANCY, t - 3600, occupied=True)])
    await rt.handle_readings([reading(site, "bed-1", Stream.OCCUPANCY, t, occupied=False)])
    await rt.handle_readings([_received(site, wall, False), _received(site, wall + 1, True)])
    assert rt.watermark == t
    assert rt.sites[site.id].clock == t
    assert sink.of(AlertKind.BED_EXIT_NO_RETURN) == []
    later = [
        reading(site, "pir-kitchen", Stream.MOTION, t + 300, motion=True),
        reading(site, "bed-1", Stream.OCCUPANCY, t + 45 * 60, occupied=True),
    ]
    await rt.handle_readings(later)
    assert sink.of(AlertKind.BED_EXIT_NO_RETURN) == [(RAISE, t + 1800), (CLEAR, t + 2700)]


async def test_receive_stamped_reading_before_any_event_time_is_left_out() -> None:
    site = home_site(SH)
    sink = Collector()
    rt = _runtime(sink, site)
    t = local_ts(SH, 2024, 5, 10, 2, 0)
    await rt.handle_readings([_received(site, t + 86400, False)])
    assert rt.watermark is None
    site_detectors = rt.sites.get(site.id)
    assert site_detectors is None or site_detectors.clock is None
    await rt.handle_readings([reading(site, "pir-living", Stream.MOTION, t, motion=True)])
    assert rt.sites[site.id].clock == t
