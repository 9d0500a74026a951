"""What a site's rules need to know about it: room semantics, devices, settings, local time.

Built once per registry version of a site; read-only. Local-time arithmetic
goes through the site's zoneinfo so night windows hold across midnight and
across daylight-saving changes.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import datetime, time, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from detectors.settings import (
    SETTINGS_MODELS,
    Overrides,
    ResolvedSettings,
    minutes_of_day,
    resolve_settings,
)
from eldercare.domain import (
    DEFAULT_SEVERITY,
    AlertKind,
    DeviceKind,
    Evidence,
    Reading,
    RoomKind,
    Severity,
    SiteKind,
    Transition,
    TransitionAction,
)
from eldercare.registry_model import Device, Site

S = TypeVar("S", bound=BaseModel)

BATHROOM_KINDS = frozenset({RoomKind.BATHROOM, RoomKind.TOILET})
BED_BOUND = "bed_bound"  # resident flag: does not get out of bed unaided
DEMENTIA = "dementia"  # resident flag: may wander out at night


class SiteContext:
    def __init__(
        self,
        site: Site,
        global_overrides: Overrides | None = None,
        models: Mapping[str, type[BaseModel]] | None = None,
    ) -> None:
        self.site = site
        self.site_id = site.id
        self.tz = ZoneInfo(site.timezone)
        models = SETTINGS_MODELS if models is None else models
        self.site_settings: ResolvedSettings = resolve_settings(
            global_overrides, site.detectors, None, site_id=site.id, models=models
        )
        self.resident_settings: dict[str, ResolvedSettings] = {
            r.id: resolve_settings(
                global_overrides,
                site.detectors,
                r.detectors,
                site_id=site.id,
                resident_id=r.id,
                models=models,
            )
            for r in site.residents
        }
        self._rooms = {r.id: r for r in site.rooms}
        self._devices = {d.id: d for d in site.devices}
        self._bed_room = {b.id: b.room for b in site.beds}
        self._residents = {r.id: r for r in site.residents}
        self.resident_ids: tuple[str, ...] = tuple(r.id for r in site.residents)

    # --- settings -------------------------------------------------------------------------

    def settings(self, rule: str, model: type[S], resident_id: str | None = None) -> S:
        layer = self.resident_settings.get(resident_id or "", self.site_settings)
        value = layer[rule]
        if not isinstance(value, model):
            raise TypeError(f"settings of {rule!r} are {type(value).__name__}, not {model}")
        return value

    def rule_enabled(self, rule: str) -> bool:
        """A rule runs for a site if it is enabled at site level or for any resident."""
        layers = [self.site_settings, *self.resident_settings.values()]
        return any(getattr(layer[rule], "enabled", True) for layer in layers)

    # --- devices and rooms ----------------------------------------------------------------

    def device(self, device_id: str) -> Device | None:
        return self._devices.get(device_id)

    @property
    def devices(self) -> list[Device]:
        return list(self.site.devices)

    def device_room(self, device_id: str) -> str | None:
        d = self._devices.get(device_id)
        if d is None:
            return None
        if d.room is not None:
            return d.room
        return self._bed_room.get(d.bed) if d.bed else None

    def room_of(self, reading: Reading) -> str | None:
        return reading.room_id or self.device_room(reading.device_id)

    def room_kind(self, room_id: str | None) -> RoomKind | None:
        room = self._rooms.get(room_id or "")
        return room.kind if room else None

    def is_bathroom(self, room_id: str | None) -> bool:
        return self.room_kind(room_id) in BATHROOM_KINDS

    def is_bedroom(self, room_id: str | None) -> bool:
        return self.room_kind(room_id) == RoomKind.BEDROOM

    def is_outer_door(self, device_id: str) -> bool:
        d = self._devices.get(device_id)
        return bool(d and d.outer_door)

    def is_room_door(self, device_id: str) -> bool:
        """A contact on the door of its room (`room_door`): its opening is a passage in or
        out. A contact on furniture or an appliance is someone active in the room."""
        d = self._devices.get(device_id)
        return bool(d and d.room_door)

    @functools.cached_property
    def _watched_rooms(self) -> frozenset[str]:
        kinds = (DeviceKind.MOTION, DeviceKind.PRESENCE, DeviceKind.FALL_RADAR)
        return frozenset(
            room
            for d in self.site.devices
            if d.kind in kinds and (room := self.device_room(d.id)) is not None
        )

    def door_room_watched(self, device_id: str) -> bool:
        """A motion or presence sensor watches the room of this door: anyone passing the
        door is seen by it."""
        room = self.device_room(device_id)
        return room is not None and room in self._watched_rooms

    def has_outer_door(self) -> bool:
        return any(d.outer_door for d in self.site.devices)

    def bed_resident(self, device_id: str) -> str | None:
        """The resident whose bed a bed device watches."""
        d = self._devices.get(device_id)
        if d is None or d.kind != DeviceKind.BED:
            return None
        if d.resident is not None:
            return d.resident
        if d.bed is not None:
            for r in self.site.residents:
                if r.bed == d.bed:
                    return r.id
        if len(self.site.residents) == 1:
            return self.site.residents[0].id
        return None

    @functools.cached_property
    def residents_with_bed_sensor(self) -> frozenset[str]:
        return frozenset(
            rid for d in self.site.devices if (rid := self.bed_resident(d.id)) is not None
        )

    @functools.cached_property
    def bed_rooms(self) -> dict[str, frozenset[str | None]]:
        """Resident → rooms of their bed sensors."""
        out: dict[str, set[str | None]] = {}
        for d in self.site.devices:
            resident = self.bed_resident(d.id)
            if resident is not None:
                out.setdefault(resident, set()).add(self.device_room(d.id))
        return {r: frozenset(rooms) for r, rooms in out.items()}

    @functools.cached_property
    def sees_people_up(self) -> bool:
        """Sensors that see a person up and about besides the beds (PIRs, radars)."""
        kinds = (DeviceKind.MOTION, DeviceKind.PRESENCE, DeviceKind.FALL_RADAR)
        return any(d.kind in kinds for d in self.site.devices)

    @functools.cached_property
    def is_shared_home(self) -> bool:
        """A home of several residents. Its room sensors cannot tell them apart, and a
        resident's own bed mat says nothing of where the other one is: rules judging
        presence and stillness judge the household as one (one alert for one condition,
        not one per resident, who would all be raised on the same evidence)."""
        return self.site.kind == SiteKind.HOME and len(self.site.residents) > 1

    def activity_residents(self, reading: Reading) -> tuple[str, ...]:
        """Whose activity a reading shows. In a home every resident shares the rooms; in an
        institution a room's sensors speak for the one resident living in that room, a
        bed sensor or worn device for its own resident. A shared room's sensors cannot
        tell its residents apart: they speak for nobody."""
        if reading.resident_id is not None:
            return (reading.resident_id,)
        if self.site.kind == SiteKind.HOME:
            return self.resident_ids
        owner = self.bed_resident(reading.device_id)
        if owner is not None:
            return (owner,)
        residents = self.room_residents(self.room_of(reading))
        return residents if len(residents) == 1 else ()

    # --- institutions -----------------------------------------------------------------------

    @property
    def is_institution(self) -> bool:
        return self.site.kind == SiteKind.INSTITUTION

    def has_flag(self, resident_id: str | None, flag: str) -> bool:
        r = self._residents.get(resident_id or "")
        return r is not None and flag in r.flags

    def is_bed_bound(self, resident_id: str | None) -> bool:
        return self.has_flag(resident_id, BED_BOUND)

    def resident_room(self, resident_id: str | None) -> str | None:
        r = self._residents.get(resident_id or "")
        if r is None:
            return None
        return r.room or (self._bed_room.get(r.bed) if r.bed else None)

    def room_residents(self, room_id: str | None) -> tuple[str, ...]:
        if room_id is None:
            return ()
        return tuple(rid for rid in self.resident_ids if self.resident_room(rid) == room_id)

    def in_shared_room(self, resident_id: str | None) -> bool:
        return len(self.room_residents(self.resident_room(resident_id))) > 1

    def judges_activity(self, resident_id: str | None) -> bool:
        """Are `inactivity` and `not_up` judged for this resident? Always at home; in an
        institution not for bed-bound residents (they do not get up, staff move around
        them) nor for residents of a shared room (its sensors cannot tell them apart)."""
        if not self.is_institution:
            return True
        return not self.is_bed_bound(resident_id) and not self.in_shared_room(resident_id)

    def reading_resident(self, reading: Reading) -> str | None:
        if reading.resident_id is not None:
            return reading.resident_id
        d = self._devices.get(reading.device_id)
        if d is not None and d.resident is not None:
            return d.resident
        if len(self.resident_ids) == 1:
            return self.resident_ids[0]
        return None

    # --- local time -----------------------------------------------------------------------

    def local(self, ts: float) -> datetime:
        return datetime.fromtimestamp(ts, self.tz)

    def local_day(self, ts: float) -> str:
        return self.local(ts).date().isoformat()

    def minute_of_day(self, ts: float) -> float:
        t = self.local(ts)
        return t.hour * 60 + t.minute + t.second / 60

    def in_window(self, ts: float, start: str, end: str) -> bool:
        """Is local wall time within [start, end)? Windows may cross midnight."""
        m = self.minute_of_day(ts)
        a, b = minutes_of_day(start), minutes_of_day(end)
        if a == b:
            return True
        if a < b:
            return a <= m < b
        return m >= a or m < b

    def at_local(self, day: str, minute: float) -> float:
        """Epoch seconds of a local wall time on a local date; a time skipped by a DST change
        maps to the same offset as just before it (so it lands after the gap)."""
        d = datetime.fromisoformat(day).date()
        whole = int(minute)
        t = time(whole // 60 % 24, whole % 60)
        local = datetime.combine(d, t, tzinfo=self.tz) + timedelta(days=whole // 1440)
        return local.timestamp() + (minute - whole) * 60

    def next_local(self, ts: float, hhmm: str) -> float:
        """The first moment strictly after `ts` whose local wall time is `hhmm`."""
        day = self.local(ts).date()
        minute = minutes_of_day(hhmm)
        for offset in range(0, 3):
            candidate = self.at_local((day + timedelta(days=offset)).isoformat(), minute)
            if candidate > ts:
                return candidate
        raise AssertionError("unreachable: a local time recurs within three days")

    # --- transitions ----------------------------------------------------------------------

    def transition(
        self,
        action: TransitionAction,
        kind: AlertKind,
        ts: float,
        *,
        resident_id: str | None = None,
        room_id: str | None = None,
        device_id: str | None = None,
        evidence: tuple[Evidence, ...] = (),
        details: Mapping[str, object] | None = None,
        severity: Severity | None = None,
    ) -> Transition:
        return Transition(
            action=action,
            kind=kind,
            site_id=self.site_id,
            ts=ts,
            severity=severity or DEFAULT_SEVERITY[kind],
            resident_id=resident_id,
            room_id=room_id,
            device_id=device_id,
            evidence=evidence,
            details=dict(details or {}),
        )
