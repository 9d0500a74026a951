"""Site and device status points for supervisors' dashboards (`site_status`, `device_status`).

The tracker taps the readings ingest hands on (cheap dictionary updates on the hot
path) and, once a minute, writes one point per site and per device: is it online,
how many devices answer, how many alerts are open, where it is. The map, coverage
and device-health panels read these (see docs/influx-schema.md).

A device is online when it has reported within twice its report interval and its
last availability message was not `offline` — the same rule as the
`device_offline` detector, so the map and the alerts agree. A site is online when
any of its devices is.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from eldercare.clock import Clock
from eldercare.domain import Reading, Stream
from eldercare.influx import encode_line, ts_to_ns
from eldercare.logs import get_logger
from eldercare.pipeline import ReadingSink
from eldercare.registry_index import RegistryIndex

log = get_logger(__name__)

OpenAlertCounts = Callable[[], Awaitable[Mapping[str, int]]]
WriteLines = Callable[[list[str]], Awaitable[None]]


@dataclass(slots=True)
class DeviceSeen:
    last_seen: float  # wall time of the last reading ingest handed on
    available: bool = True
    battery: float | None = None


class SiteStatusTracker:
    """A `ReadingSink` tap and a `Component` that writes status points periodically."""

    name = "site-status"

    def __init__(
        self,
        index_provider: Callable[[], RegistryIndex],
        open_alerts: OpenAlertCounts,
        write: WriteLines,
        clock: Clock,
        *,
        every_s: float = 60.0,
    ) -> None:
        self.index_provider = index_provider
        self.open_alerts = open_alerts
        self.write = write
        self.clock = clock
        self.every_s = every_s
        self.devices: dict[str, DeviceSeen] = {}
        self._task: asyncio.Task[None] | None = None

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
        return (
            seen is not None and seen.available and now - seen.last_seen <= 2 * report_interval_s
        )

    def lines(self, now: float, open_alerts: Mapping[str, int]) -> list[str]:
        ts = ts_to_ns(now)
        out: list[str] = []
        for site in self.index_provider().sites.values():
            online_devices = 0
            for device in site.devices:
                online = self.device_online(device.id, device.report_interval_s, now)
                online_devices += online
                seen = self.devices.get(device.id)
                fields: dict[str, bool | int | float | str] = {"online": int(online)}
                if seen is not None:
                    fields["last_seen_age_s"] = round(now - seen.last_seen, 3)
                    if seen.battery is not None:
                        fields["battery"] = seen.battery
                tags = {"site": site.id, "device": device.id, "kind": device.kind.value}
                out.append(encode_line("device_status", tags, fields, ts))
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
            out.append(encode_line("site_status", site_tags, site_fields, ts))
        return out

    async def report(self) -> int:
        lines = self.lines(self.clock.now(), await self.open_alerts())
        if lines:
            await self.write(lines)
        return len(lines)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="site-status")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            # The first report waits a full period, so devices have had time to speak.
            await asyncio.sleep(self.every_s)
            try:
                await self.report()
            except Exception:  # InfluxDB away: the next period tries again
                log.warning("status report not written", exc_info=True)


class FanOutSink:
    """Hands each batch to several sinks in order (the status tap, then the detectors)."""

    def __init__(self, *sinks: ReadingSink) -> None:
        self.sinks = sinks

    async def handle_readings(self, readings: Sequence[Reading]) -> None:
        for sink in self.sinks:
            await sink.handle_readings(readings)
