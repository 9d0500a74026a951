"""Site and device status points for supervisors' dashboards (`site_status`, `device_status`).

The tracker taps the readings ingest hands on (cheap dictionary updates on the hot
path) and, once a minute, writes a point for each site and each device whose
status changed since its last point: is it online, how many devices answer, how
many alerts are open, where it is. The map, coverage and device-health panels read
these (see docs/influx-schema.md) with `last(...)` over the dashboard's time range.

So that such a query still finds every site and device, each one is also written
again, changed or not, once every `refresh_s` (10 min): sites are dealt over the
ticks of that period by a hash of their id, so the refresh is spread evenly
instead of one burst of every device (~160k lines at 20,000 homes). A dashboard
range of at least `refresh_s` therefore sees every device.

A device is online when it has reported within twice its report interval and its
last availability message was not `offline` — the same rule as the
`device_offline` detector, so the map and the alerts agree. A site is online when
any of its devices is.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from eldercare.clock import Clock
from eldercare.domain import Reading, Stream
from eldercare.influx import encode_line, ts_to_ns
from eldercare.logs import get_logger
from eldercare.periodic import Periodic
from eldercare.registry_index import RegistryIndex
from eldercare.registry_model import Site
from eldercare.stage_contracts import ReadingSink

log = get_logger(__name__)

OpenAlertCounts = Callable[[], Awaitable[Mapping[str, int]]]
WriteLines = Callable[[list[str]], Awaitable[None]]

SITES_PER_YIELD = 500  # building a tick's lines gives the event loop a turn this often


@dataclass(slots=True)
class DeviceSeen:
    last_seen: float  # wall time of the last reading ingest handed on
    available: bool = True
    battery: float | None = None


@dataclass(slots=True)
class StatusBatch:
    """One tick's lines, and what to remember as written once they are."""

    lines: list[str] = field(default_factory=list)
    devices: dict[str, int] = field(default_factory=dict)  # device id → status hash
    sites: dict[str, int] = field(default_factory=dict)  # site id → status hash


class SiteStatusTracker:
    """A `ReadingSink` tap and a `Component` that writes status points periodically.

    `followed_since` (a cluster's detector worker): the time from which this tracker
    follows a site (its partition was taken then), None for a site it does not follow.
    A followed site is written once each of its devices has spoken or has had twice its
    report interval to do so since: a worker that has just taken a partition must not
    paint its homes offline on the map before their readings could have reached it.
    Without it (one process), every site is followed from the start."""

    name = "site-status"

    def __init__(
        self,
        index_provider: Callable[[], RegistryIndex],
        open_alerts: OpenAlertCounts,
        write: WriteLines,
        clock: Clock,
        *,
        every_s: float = 60.0,
        refresh_s: float = 600.0,
        followed_since: Callable[[str], float | None] | None = None,
    ) -> None:
        self.index_provider = index_provider
        self.followed_since = followed_since
        self.open_alerts = open_alerts
        self.write = write
        self.clock = clock
        self.every_s = every_s
        self.refresh_s = refresh_s
        # Ticks over which every site is written once whether it changed or not.
        self.refresh_ticks = max(1, round(refresh_s / every_s))
        self.devices: dict[str, DeviceSeen] = {}
        self.tick = 0
        # A hash of each device's and site's last written status (not the whole status:
        # at 20,000 homes this is 180,000 entries).
        self._written_devices: dict[str, int] = {}
        self._written_sites: dict[str, int] = {}
        self._slices: dict[str, int] = {}
        self._index: RegistryIndex | None = None
        self._loop = Periodic("site-status", self.report, every_s)

    async def handle_readings(self, readings: Sequence[Reading]) -> None:
        now = self.clock.now()
        for r in readings:
            seen = self.devices.get(r.device_id)
            if seen is None:
                seen = self.devices[r.device_id] = DeviceSeen(now)
            seen.last_seen = now
            if r.stream is Stream.AVAILABILITY:
                seen.available = bool(r.fields.get("online", True))
            else:
                seen.available = True
                if r.stream is Stream.BATTERY:
                    percent = r.fields.get("percent")
                    if isinstance(percent, int | float):
                        seen.battery = float(percent)

    def device_online(self, device_id: str, report_interval_s: float, now: float) -> bool:
        seen = self.devices.get(device_id)
        return seen is not None and seen.available and now - seen.last_seen <= 2 * report_interval_s

    def lines(self, now: float, open_alerts: Mapping[str, int]) -> list[str]:
        """Every site's and device's status point (changed or not)."""
        batch = StatusBatch()
        for site in self.index_provider().sites.values():
            if self._reportable(site, now):
                self._site_lines(site, now, open_alerts, ts_to_ns(now), batch, everything=True)
        return batch.lines

    def _reportable(self, site: Site, now: float) -> bool:
        """Whether this tracker writes the site now (see the class docstring)."""
        if self.followed_since is None:
            return True
        since = self.followed_since(site.id)
        if since is None:
            return False
        return all(
            d.id in self.devices or now - since >= 2 * d.report_interval_s for d in site.devices
        )

    def slice_of(self, site_id: str) -> int:
        """The tick (modulo `refresh_ticks`) at which a site is refreshed: stable per id."""
        found = self._slices.get(site_id)
        if found is None:
            found = self._slices[site_id] = zlib.crc32(site_id.encode()) % self.refresh_ticks
        return found

    async def changes(self, now: float, open_alerts: Mapping[str, int]) -> StatusBatch:
        """This tick's points: what changed since it was last written, and the sites
        whose refresh falls on this tick."""
        index = self.index_provider()
        if index is not self._index:
            self._forget_removed(index)
        ts = ts_to_ns(now)
        refresh_slice = self.tick % self.refresh_ticks
        batch = StatusBatch()
        for i, site in enumerate(index.sites.values()):
            if self._reportable(site, now):
                refresh = self.slice_of(site.id) == refresh_slice
                self._site_lines(site, now, open_alerts, ts, batch, everything=refresh)
            if i % SITES_PER_YIELD == SITES_PER_YIELD - 1:
                await asyncio.sleep(0)
        return batch

    def _site_lines(
        self,
        site: Site,
        now: float,
        open_alerts: Mapping[str, int],
        ts: int,
        batch: StatusBatch,
        *,
        everything: bool,
    ) -> None:
        written_devices = self._written_devices
        online_devices = 0
        for device in site.devices:
            online = self.device_online(device.id, device.report_interval_s, now)
            online_devices += online
            seen = self.devices.get(device.id)
            battery = seen.battery if seen is not None else None
            status = hash((online, battery, seen is None))
            if not everything and written_devices.get(device.id) == status:
                continue
            batch.devices[device.id] = status
            fields: dict[str, bool | int | float | str] = {"online": int(online)}
            if seen is not None:
                fields["last_seen_age_s"] = round(now - seen.last_seen, 3)
                if battery is not None:
                    fields["battery"] = battery
            tags = {"site": site.id, "device": device.id, "kind": device.kind.value}
            batch.lines.append(encode_line("device_status", tags, fields, ts))
        site_fields: dict[str, bool | int | float | str] = {
            "online": int(online_devices > 0),
            "devices_total": len(site.devices),
            "devices_online": online_devices,
            "open_alerts": int(open_alerts.get(site.id, 0)),
            "name": site.name,
        }
        if site.latitude is not None and site.longitude is not None:
            site_fields["latitude"] = site.latitude
            site_fields["longitude"] = site.longitude
        site_tags = {"site": site.id, "org": site.organisation, "kind": site.kind.value}
        status = hash((tuple(site_fields.items()), site.organisation, site.kind.value))
        if not everything and self._written_sites.get(site.id) == status:
            return
        batch.sites[site.id] = status
        batch.lines.append(encode_line("site_status", site_tags, site_fields, ts))

    def _forget_removed(self, index: RegistryIndex) -> None:
        """A new registry: forget sites and devices it no longer has."""
        self._index = index
        devices = {d.id for site in index.sites.values() for d in site.devices}
        # A cluster worker's index loses the sites of a partition it gave up, too.
        self.devices = {k: v for k, v in self.devices.items() if k in devices}
        self._written_devices = {k: v for k, v in self._written_devices.items() if k in devices}
        self._written_sites = {k: v for k, v in self._written_sites.items() if k in index.sites}
        self._slices = {k: v for k, v in self._slices.items() if k in index.sites}

    async def report(self) -> int:
        """Write this tick's points; remembered as written only once the write returned,
        so a failed write is tried again at the next tick."""
        batch = await self.changes(self.clock.now(), await self.open_alerts())
        if batch.lines:
            await self.write(batch.lines)
        self._written_devices.update(batch.devices)
        self._written_sites.update(batch.sites)
        self.tick += 1
        return len(batch.lines)

    async def start(self) -> None:
        # The first report waits a full period, so devices have had time to speak; a
        # report not written (InfluxDB away) is logged and tried again next period.
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()


class FanOutSink:
    """Hands each batch to several sinks in order (the status tap, then the detectors)."""

    def __init__(self, *sinks: ReadingSink) -> None:
        self.sinks = sinks

    async def handle_readings(self, readings: Sequence[Reading]) -> None:
        for sink in self.sinks:
            await sink.handle_readings(readings)
