"""Status points for the dashboards: which devices and sites answer, written to InfluxDB."""

from __future__ import annotations

import yaml

from eldercare.clock import FakeClock
from eldercare.domain import Reading, Stream
from eldercare.influx import InfluxClient
from eldercare.registry_index import RegistryIndex
from eldercare.registry_model import RegistryDocument
from eldercare.site_status import SiteStatusTracker

DOC = RegistryDocument.model_validate(
    yaml.safe_load(
        """
sites:
  - id: s1
    kind: home
    name: 一号家
    organisation: 滨州市/滨城区/市中街道/黄河社区
    latitude: 37.38
    longitude: 117.97
    rooms: [{id: bedroom, kind: bedroom}]
    devices:
      - {id: bed, kind: bed, room: bedroom, report_interval_s: 600}
      - {id: pir, kind: motion, room: bedroom, report_interval_s: 60}
  - id: s2
    kind: institution
    name: 二号院
    organisation: 滨州市/滨城区/幸福养老院
    devices:
      - {id: s2-pir, kind: motion, report_interval_s: 60}
"""
    )
)


def reading(device: str, stream: Stream, **fields: object) -> Reading:
    site = "s2" if device.startswith("s2") else "s1"
    return Reading(site, device, stream, 0.0, fields)  # type: ignore[arg-type]


async def test_online_follows_report_interval_and_availability(influx_url: str) -> None:
    clock = FakeClock(1_800_000_000.0)
    written: list[str] = []

    async def open_alerts() -> dict[str, int]:
        return {"s1": 2}

    async def write(lines: list[str]) -> None:
        written.extend(lines)

    tracker = SiteStatusTracker(lambda: RegistryIndex(DOC), open_alerts, write, clock)
    await tracker.handle_readings(
        [
            reading("bed", Stream.OCCUPANCY, occupied=True),
            reading("pir", Stream.BATTERY, percent=12),
        ]
    )
    clock.advance(119)  # within 2× the PIR's 60 s interval
    assert tracker.device_online("pir", 60, clock.now())
    clock.advance(2)  # past it
    assert not tracker.device_online("pir", 60, clock.now())
    assert tracker.device_online("bed", 600, clock.now())
    await tracker.handle_readings([reading("bed", Stream.AVAILABILITY, online=False)])
    assert not tracker.device_online("bed", 600, clock.now()), "availability offline wins"

    assert await tracker.report() == 5  # three devices, two sites
    async with InfluxClient(influx_url) as influx:
        await influx.query('CREATE DATABASE "status_test"', db="status_test")
        await influx.write(written, "status_test")
        sites = await influx.query('SELECT * FROM "site_status"', db="status_test")
        devices = await influx.query('SELECT * FROM "device_status"', db="status_test")
    by_site = {row["site"]: row for row in sites}
    assert by_site["s1"]["online"] == 0 and by_site["s1"]["devices_online"] == 0
    assert by_site["s1"]["open_alerts"] == 2 and by_site["s1"]["latitude"] == 37.38
    assert by_site["s1"]["org"] == "滨州市/滨城区/市中街道/黄河社区"
    assert by_site["s2"]["online"] == 0 and by_site["s2"]["devices_total"] == 1
    by_device = {row["device"]: row for row in devices}
    assert by_device["pir"]["battery"] == 12
    assert (
        "last_seen_age_s" not in by_device["s2-pir"]
        or by_device["s2-pir"]["last_seen_age_s"] is None
    )


async def test_a_reporting_device_makes_its_site_online() -> None:
    clock = FakeClock(1_800_000_000.0)
    tracker = SiteStatusTracker(lambda: RegistryIndex(DOC), _none, _discard, clock)
    await tracker.handle_readings([reading("s2-pir", Stream.MOTION, motion=True)])
    lines = tracker.lines(clock.now(), {})
    (s2,) = [line for line in lines if line.startswith("site_status") and "site=s2" in line]
    assert "online=1i" in s2 and "devices_online=1i" in s2


async def _none() -> dict[str, int]:
    return {}


async def _discard(lines: list[str]) -> None:
    return None
