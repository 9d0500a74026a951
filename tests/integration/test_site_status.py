"""Status points for the dashboards: which devices and sites answer, written to InfluxDB."""

from __future__ import annotations

import yaml

from eldercare.clock import FakeClock
from eldercare.domain import Reading, Stream
from eldercare.influx import InfluxClient
from eldercare.registry_index import RegistryIndex
from eldercare.registry_model import RegistryDocument
from ingest.site_status import SiteStatusTracker

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


# -- written on change, refreshed in slices ------------------------------------------------

N_SITES = 40


def _many_sites() -> RegistryDocument:
    return RegistryDocument.model_validate(
        {
            "sites": [
                {
                    "id": f"h{i}",
                    "kind": "home",
                    "name": f"home {i}",
                    "organisation": "滨州市/滨城区",
                    "devices": [
                        {"id": f"h{i}-pir", "kind": "motion", "report_interval_s": 60},
                        {"id": f"h{i}-bed", "kind": "bed", "report_interval_s": 600},
                    ],
                }
                for i in range(N_SITES)
            ]
        }
    )


def _written_ids(lines: list[str], measurement: str, tag: str) -> list[str]:
    out = []
    for line in lines:
        if line.startswith(measurement + ","):
            tags = dict(part.split("=", 1) for part in line.split(" ", 1)[0].split(",")[1:])
            out.append(tags[tag])
    return out


class _Recorder:
    def __init__(self) -> None:
        self.ticks: list[list[str]] = []
        self.fail_next = False

    async def write(self, lines: list[str]) -> None:
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("InfluxDB away")
        self.ticks.append(list(lines))


async def _all_reporting(tracker: SiteStatusTracker, battery: float = 80.0, first: int = 0) -> None:
    readings = []
    for i in range(first, N_SITES):
        readings.append(Reading(f"h{i}", f"h{i}-pir", Stream.MOTION, 0.0, {"motion": True}))
        readings.append(Reading(f"h{i}", f"h{i}-bed", Stream.BATTERY, 0.0, {"percent": battery}))
    await tracker.handle_readings(readings)


async def test_unchanged_devices_are_written_once_per_refresh_spread_over_the_ticks() -> None:
    clock = FakeClock(1_800_000_000.0)
    out = _Recorder()
    index = RegistryIndex(_many_sites())
    tracker = SiteStatusTracker(lambda: index, _none, out.write, clock, every_s=60, refresh_s=600)
    await _all_reporting(tracker)
    assert await tracker.report() == N_SITES * 3  # the first tick: everything is news
    for _ in range(10):  # one refresh period, devices keep reporting, nothing changes
        clock.advance(60)
        await _all_reporting(tracker)
        await tracker.report()
    refresh = out.ticks[1:]
    devices = [d for tick in refresh for d in _written_ids(tick, "device_status", "device")]
    sites = [s for tick in refresh for s in _written_ids(tick, "site_status", "site")]
    # Every device and site exactly once in the period, none twice ...
    assert sorted(devices) == sorted(f"h{i}-{k}" for i in range(N_SITES) for k in ("pir", "bed"))
    assert sorted(sites) == sorted(f"h{i}" for i in range(N_SITES))
    # ... spread over the ticks, not one burst (40 sites over 10 ticks, by a hash of the id).
    assert max(len(tick) for tick in refresh) <= N_SITES * 3 // 2
    assert sum(1 for tick in refresh if tick) >= 5


async def test_a_change_is_written_at_the_next_tick_and_a_failed_write_is_retried() -> None:
    clock = FakeClock(1_800_000_000.0)
    out = _Recorder()
    index = RegistryIndex(_many_sites())
    # A refresh period of a year: only changes are written after the first tick.
    tracker = SiteStatusTracker(
        lambda: index, _none, out.write, clock, every_s=60, refresh_s=365 * 86400
    )
    await _all_reporting(tracker)
    await tracker.report()
    clock.advance(60)
    await _all_reporting(tracker)
    assert await tracker.report() == 0
    # One battery drops; h3's PIR goes silent (offline after 2 × 60 s).
    await tracker.handle_readings([Reading("h7", "h7-bed", Stream.BATTERY, 0.0, {"percent": 9})])
    clock.advance(121)
    await tracker.handle_readings(
        [
            Reading(f"h{i}", f"h{i}-pir", Stream.MOTION, 0.0, {"motion": True})
            for i in range(N_SITES)
            if i != 3
        ]
    )
    out.fail_next = True
    try:
        await tracker.report()
    except ConnectionError:
        pass
    else:
        raise AssertionError("the write failure should reach the caller")
    clock.advance(60)
    await tracker.report()
    lines = out.ticks[-1]
    assert sorted(_written_ids(lines, "device_status", "device")) == ["h3-pir", "h7-bed"]
    assert sorted(_written_ids(lines, "site_status", "site")) == ["h3"]  # devices_online 2 → 1
    (h7,) = [line for line in lines if "device=h7-bed" in line]
    assert "battery=9.0" in h7
    (h3,) = [line for line in lines if "device=h3-pir" in line]
    assert "online=0i" in h3
    clock.advance(60)
    assert await tracker.report() == 0


async def test_dashboard_status_panels_see_every_device_over_the_refresh_period(
    influx_url: str,
) -> None:
    from dashboards.check import TimeRange, interpolate
    from dashboards.operations import DEVICES_ONLINE, DEVICES_TOTAL, SITES_ONLINE, SITES_TOTAL
    from tests.helpers.ingest import recreate_db, unique

    db = unique("status_")
    await recreate_db(influx_url, db)
    clock = FakeClock(1_800_000_000.0)
    out = _Recorder()
    index = RegistryIndex(_many_sites())
    tracker = SiteStatusTracker(lambda: index, _none, out.write, clock)
    await _all_reporting(tracker)
    await tracker.report()
    # 45 minutes on: h0..h9 fall silent after 20 minutes, the rest keep reporting.
    for minute in range(1, 46):
        clock.advance(60)
        await _all_reporting(tracker, first=0 if minute <= 20 else 10)
        await tracker.report()
    async with InfluxClient(influx_url) as influx:
        await influx.write([line for tick in out.ticks for line in tick], db)
        end_ms = int(clock.now() * 1000)
        window = TimeRange(end_ms - 600_000, end_ms)  # the last 10 minutes: one refresh

        async def figure(query: str) -> int:
            rows = await influx.query(interpolate(query, {}, window), db)
            return int(
                next(v for k, v in rows[0].items() if k not in ("time", "_tags", "_measurement"))
            )

        assert await figure(DEVICES_TOTAL) == 2 * N_SITES
        # Silent for 25 min: h0..h9's PIRs (2 × 60 s) and beds (2 × 600 s) are offline.
        assert await figure(DEVICES_ONLINE) == 2 * (N_SITES - 10)
        assert await figure(SITES_TOTAL) == N_SITES
        assert await figure(SITES_ONLINE) == N_SITES - 10
    # Written every minute in full, the same 45 minutes would be 46 × 120 lines.
    assert sum(len(tick) for tick in out.ticks) < 46 * 3 * N_SITES // 3
