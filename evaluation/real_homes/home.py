"""A real home as the evaluation sees it: a registry site, its life as readings, and
the devices injected incidents are made of."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from eldercare.domain import DeviceKind, FieldValue, Reading, Stream
from eldercare.registry_model import Device, Site

APPLIANCE_WATTS = 1000.0  # an appliance sensor "on" replayed as a plug drawing this


@dataclass(frozen=True, slots=True)
class Kit:
    """Which of the home's devices the injected incidents are made of."""

    activity: str  # a kitchen device used just before an incident begins
    front_door: str
    bathroom: str  # its firing is walking into the bathroom (and out again)
    bedroom: str  # its firing is getting up at night before going out
    beds: tuple[str, ...] = ()  # one resident's bed mats (the night bed exit incident)
    elsewhere: str | None = None  # a device outside the bedroom fired after leaving the bed


@dataclass(frozen=True, slots=True)
class Firing:
    """One interval in which a binary sensor was on (a door open, a mat pressed, …)."""

    start: float
    end: float
    device_id: str


@dataclass
class Home:
    key: str  # short name on the command line and in reports
    dataset: str  # citation and what the recording is
    site: Site
    background: list[Reading]
    kit: Kit
    not_applicable: Mapping[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()  # mapping choices worth reporting

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.site.timezone)

    def device(self, device_id: str) -> Device:
        for d in self.site.devices:
            if d.id == device_id:
                return d
        raise KeyError(device_id)


def reading(site: Site, device: Device, ts: float, on: bool) -> Reading | None:
    """The reading a device of this kind sends when it turns on or off (a flush sends
    nothing when it ends)."""
    kind = device.kind
    stream: Stream
    fields: dict[str, FieldValue]
    if kind == DeviceKind.DOOR:
        stream, fields = Stream.CONTACT, {"open": on}
    elif kind == DeviceKind.MOTION:
        stream, fields = Stream.MOTION, {"motion": on}
    elif kind in (DeviceKind.BED, DeviceKind.SEAT):
        stream, fields = Stream.OCCUPANCY, {"occupied": on}
    elif kind == DeviceKind.PLUG:
        stream, fields = Stream.POWER, {"watts": APPLIANCE_WATTS if on else 0.0}
    elif kind == DeviceKind.FLUSH:
        if not on:
            return None
        stream, fields = Stream.FLUSH, {"flushed": True}
    else:
        raise ValueError(f"no replay reading for a {kind.value} device ({device.id})")
    return Reading(site.id, device.id, stream, ts, fields, ts, device.room, device.resident)


def readings_of(site: Site, firings: Iterable[Firing]) -> list[Reading]:
    """Each firing as its device's "on" at the start and "off" at the end (at least 1 s
    later: two readings of one device never share an event time)."""
    devices = {d.id: d for d in site.devices}
    out: list[Reading] = []
    for f in firings:
        device = devices[f.device_id]
        for ts, on in ((f.start, True), (max(f.end, f.start + 1), False)):
            r = reading(site, device, ts, on)
            if r is not None:
                out.append(r)
    out.sort(key=lambda r: (r.ts, r.device_id))
    return out


def pulse(home: Home, device_id: str, ts: float, seconds: float = 5.0) -> list[Reading]:
    """A device firing for `seconds` (a door opened and shut, a PIR seeing someone pass)."""
    device = home.device(device_id)
    out = [reading(home.site, device, ts, True), reading(home.site, device, ts + seconds, False)]
    return [r for r in out if r is not None]


def is_on(r: Reading) -> bool:
    """The reading leaves its device "on" (a door open, a mat pressed, a PIR seeing)."""
    f = r.fields
    return bool(f.get("open") or f.get("motion") or f.get("occupied") or f.get("watts"))
