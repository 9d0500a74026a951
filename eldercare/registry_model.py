"""The registry's declarative model: what `eldercare registry apply FILE.yaml` accepts.

These pydantic models are both the YAML schema and the in-memory view every
part uses (ingest resolves devices with it, detectors read room semantics and
overrides from it, alerts read contacts from it). Unknown keys are refused so a
typo in a file fails loudly instead of silently doing nothing.

Example (abridged)::

    sites:
      - id: hh-3-2-401
        kind: home
        name: 张秀英家
        organisation: 滨州市/滨城区/市中街道/黄河社区
        address: 黄河社区 3-2-401
        latitude: 37.38
        longitude: 117.97
        timezone: Asia/Shanghai
        rooms:
          - {id: bedroom, kind: bedroom, name: 卧室}
          - {id: bathroom, kind: bathroom, name: 卫生间}
          - {id: entrance, kind: entrance, name: 门厅}
        residents:
          - {id: zhang-xiuying, name: 张秀英, birth_year: 1941, room: bedroom,
             flags: [dementia, hypertension]}
        devices:
          - {id: bed-1, kind: bed, room: bedroom, resident: zhang-xiuying,
             report_interval_s: 600, vendor: {z2m: {base_topic: zigbee2mqtt,
             friendly_name: "401/bed"}}}
          - {id: door-1, kind: door, room: entrance, outer_door: true}
          - {id: door-2, kind: door, room: bathroom, room_door: true}
          - {id: cabinet-1, kind: door, room: bathroom}   # on furniture: activity
        contacts:
          - {id: daughter, name: 李梅, role: family, phone: "138xxxx",
             language: zh-CN, residents: [zhang-xiuying],
             apprise: ["mailto://..."]}
"""

from __future__ import annotations

import math
import re
import sys
from enum import StrEnum
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from eldercare.domain import SERVICE_REQUEST_KINDS, DeviceKind, RoomKind, SiteKind

_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
# Interned: a detector worker's state keys and evidence hold the ids of the readings
# (interned on the wire, `cluster.wire`), which are then the registry's own strings.
Identifier = Annotated[
    str,
    Field(pattern=_ID, description="Stable id: letters, digits, _.:-"),
    AfterValidator(sys.intern),
]
_ID_RE = re.compile(_ID)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    def model_post_init(self, context: Any, /) -> None:
        # A registry of thousands of sites is a dozen models a site, each holding a set
        # of its own as pydantic's "fields set" (216-728 bytes). Frozen: pydantic never
        # adds to it in place (`model_copy` copies it first), so equal sets are shared.
        fields = self.__pydantic_fields_set__
        object.__setattr__(
            self, "__pydantic_fields_set__", _FIELDS_SETS.setdefault(frozenset(fields), fields)
        )


# Bounded: at most one entry per subset of a model's field names that inputs use.
_FIELDS_SETS: dict[frozenset[str], set[str]] = {}


def _finite_numbers(overrides: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """No infinity or NaN in an override: YAML and JSON cannot carry them back (a dumped
    registry would read back different), and no threshold means them."""

    def check(value: Any, where: str) -> None:
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{where}: {value} is not a finite number")
        if isinstance(value, dict):
            for key, inner in value.items():
                check(inner, f"{where}.{key}")
        elif isinstance(value, list):
            for i, inner in enumerate(value):
                check(inner, f"{where}[{i}]")

    for kind, values in overrides.items():
        check(values, kind)
    return overrides


Overrides = Annotated[dict[str, dict[str, Any]], AfterValidator(_finite_numbers)]
"""Detector threshold overrides by rule kind, e.g. {"bathroom_too_long": {"night_minutes": 20}}.
Validated by the detectors package against each rule's settings model."""


class Z2MBinding(_Strict):
    base_topic: str = Field("zigbee2mqtt", description="zigbee2mqtt base topic")
    friendly_name: str = Field(description="zigbee2mqtt friendly name; may contain '/'")


class ShellyBinding(_Strict):
    device_id: str = Field(description="Shelly Gen1 id as in shellies/<id>/...")


class TasmotaBinding(_Strict):
    topic: str = Field(description="Tasmota %topic% as in tele/<topic>/SENSOR")


class VendorBinding(_Strict):
    z2m: Z2MBinding | None = Field(None, description="bound to a zigbee2mqtt device")
    shelly: ShellyBinding | None = Field(None, description="bound to a Shelly Gen1 device")
    tasmota: TasmotaBinding | None = Field(None, description="bound to a Tasmota device")


class Room(_Strict):
    id: Identifier
    kind: RoomKind = Field(description="what the room is for; rules use it")
    name: str = Field("", description="display name, any language")
    floor: str | None = Field(None, description="institution floor label")


class Bed(_Strict):
    id: Identifier
    room: Identifier = Field(description="room id the bed stands in")
    name: str = Field("", description="display label, e.g. 301-2")


class Resident(_Strict):
    id: Identifier
    name: str = Field(min_length=1, description="full name")
    birth_year: int | None = Field(None, ge=1890, le=2030)
    sex: str | None = Field(None, pattern=r"^(f|m|x)$")
    room: Identifier | None = Field(None, description="own room (bedroom) id")
    bed: Identifier | None = Field(None, description="bed id (institutions)")
    flags: list[str] = Field(default_factory=list, description="e.g. dementia, hypertension")
    phone: str | None = None
    notes: str = ""
    detectors: Overrides = Field(default_factory=dict, description="per-resident overrides")


# A device action that can only ever mean an emergency call: no registry entry may give
# it another meaning (a typo must never turn a real SOS into a service request).
EMERGENCY_ACTIONS = frozenset({"emergency", "sos"})
# On an SOS button or a pendant, a single press is the call as well.
SINGLE_PRESS = frozenset({"single"})
CALL_BUTTONS = frozenset({DeviceKind.SOS_BUTTON, DeviceKind.WEARABLE})


class ActionMeaning(StrEnum):
    SOS = "sos"  # an emergency call: the SOS alarm
    DEVICE_TEST = "device_test"  # the device's test press: recorded as its test, no alarm
    SERVICE_REQUEST = "service_request"  # a request for help of a kind (a work order)


class DeviceAction(_Strict):
    """What one action (press pattern, terminal button) of a device means."""

    means: ActionMeaning = Field(description="sos | device_test | service_request")
    request: str = Field(
        "other",
        pattern="^(" + "|".join(SERVICE_REQUEST_KINDS) + ")$",
        description="service_request: the kind asked for (meal, medicine, ... other)",
    )


class Device(_Strict):
    id: Identifier
    kind: DeviceKind
    room: Identifier | None = Field(None, description="room the device is in")
    bed: Identifier | None = None
    resident: Identifier | None = Field(None, description="wearer / bed occupant")
    outer_door: bool = Field(False, description="door contact on a door leading outside")
    room_door: bool = Field(
        False,
        description="door contact on the door of its room, passed to go in or out (a "
        "bathroom door); false: on furniture or an appliance (cupboard, cabinet, shower "
        "cabin, fridge, wardrobe): someone is in the room, nobody came or went",
    )
    report_interval_s: float = Field(
        3600.0, gt=0, le=7 * 86400, description="expected interval between messages"
    )
    vendor: VendorBinding | None = Field(None, description="vendor identity bound to this id")
    actions: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")], DeviceAction] = Field(
        default_factory=dict,
        description="action name (z2m `action`, a native `action`) → what it means; "
        "added to the kind's defaults (docs/devices.md)",
    )

    @model_validator(mode="after")
    def _door_mounting(self) -> Device:
        if self.room_door and self.kind is not DeviceKind.DOOR:
            raise ValueError(
                f"room_door: only a door contact sits on a door, not a {self.kind.value}"
            )
        if self.room_door and self.outer_door:
            raise ValueError(
                "room_door and outer_door: a contact on the door leading outside is the "
                "outer door only (set outer_door: true)"
            )
        return self

    @model_validator(mode="after")
    def _emergency_stays_sos(self) -> Device:
        calls = EMERGENCY_ACTIONS | (SINGLE_PRESS if self.kind in CALL_BUTTONS else frozenset())
        for name, action in self.actions.items():
            if name in calls and action.means is not ActionMeaning.SOS:
                raise ValueError(
                    f"actions.{name}: the emergency call of a {self.kind.value} can only mean sos"
                )
        return self


class Contact(_Strict):
    id: Identifier
    name: str = Field(min_length=1)
    role: str = Field(
        "family",
        pattern=r"^(family|neighbour|responder|operator|supervisor|doctor)$",
        description="who the contact is to the resident",
    )
    phone: str | None = None
    language: str = Field("zh-CN", pattern=r"^(zh-CN|en)$")
    residents: list[Identifier] = Field(default_factory=list)
    apprise: list[str] = Field(default_factory=list, description="Apprise notification URLs")
    order: int = Field(0, ge=0, description="escalation order among the site's contacts")
    daily_summary: str | None = Field(
        None, pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="local HH:MM, or off"
    )


class Site(_Strict):
    id: Identifier
    kind: SiteKind
    name: str = Field(min_length=1)
    organisation: str = Field(
        description="organisation path, '/'-separated, e.g. 滨州市/滨城区/市中街道/黄河社区"
    )
    address: str = ""
    latitude: float | None = Field(None, ge=-90, le=90)
    longitude: float | None = Field(None, ge=-180, le=180)
    timezone: str = Field("Asia/Shanghai", description="IANA time zone of the site")
    rooms: list[Room] = Field(default_factory=list)
    beds: list[Bed] = Field(default_factory=list)
    residents: list[Resident] = Field(default_factory=list)
    devices: list[Device] = Field(default_factory=list)
    contacts: list[Contact] = Field(default_factory=list)
    detectors: Overrides = Field(default_factory=dict, description="per-site overrides")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {v!r}") from exc
        return v

    @field_validator("organisation")
    @classmethod
    def _org_path(cls, v: str) -> str:
        parts = [p.strip() for p in v.strip("/").split("/")]
        if not parts or any(not p for p in parts):
            raise ValueError("organisation must be a non-empty '/'-separated path")
        return "/".join(parts)

    @model_validator(mode="after")
    def _references_resolve(self) -> Site:
        rooms = _unique(self.rooms, "rooms")
        beds = _unique(self.beds, "beds")
        residents = _unique(self.residents, "residents")
        _unique(self.devices, "devices")
        _unique(self.contacts, "contacts")
        for bed in self.beds:
            _ref(bed.room, rooms, f"beds[{bed.id}].room")
        for r in self.residents:
            _ref(r.room, rooms, f"residents[{r.id}].room")
            _ref(r.bed, beds, f"residents[{r.id}].bed")
        for d in self.devices:
            _ref(d.room, rooms, f"devices[{d.id}].room")
            _ref(d.bed, beds, f"devices[{d.id}].bed")
            _ref(d.resident, residents, f"devices[{d.id}].resident")
        for c in self.contacts:
            for rid in c.residents:
                _ref(rid, residents, f"contacts[{c.id}].residents")
        return self

    def room(self, room_id: str | None) -> Room | None:
        return next((r for r in self.rooms if r.id == room_id), None)

    def device(self, device_id: str) -> Device | None:
        return next((d for d in self.devices if d.id == device_id), None)

    def resident(self, resident_id: str | None) -> Resident | None:
        return next((r for r in self.residents if r.id == resident_id), None)

    @property
    def org_path(self) -> tuple[str, ...]:
        return tuple(self.organisation.split("/"))


class RegistryDocument(_Strict):
    """A whole registry file. Device ids are unique across all sites."""

    sites: list[Site] = Field(default_factory=list)

    @model_validator(mode="after")
    def _global_ids(self) -> RegistryDocument:
        _unique(self.sites, "sites")
        seen: dict[str, str] = {}
        bindings: dict[tuple[str, ...], str] = {}
        for s in self.sites:
            for d in s.devices:
                if d.id in seen:
                    raise ValueError(
                        f"device id {d.id!r} used by sites {seen[d.id]!r} and {s.id!r}"
                    )
                seen[d.id] = s.id
                for key in vendor_keys(d):
                    if key in bindings:
                        raise ValueError(
                            f"vendor binding {'/'.join(key)} bound to both "
                            f"{bindings[key]!r} and {d.id!r}"
                        )
                    bindings[key] = d.id
        _check_z2m_bases(self.sites)
        return self


# Topic roots the platform's own and other vendors' traffic lives under: a zigbee2mqtt
# base topic at or under one would let that site's broker grants cover other homes.
RESERVED_TOPIC_ROOTS = ("eldercare", "shellies", "tele", "stat", "cmnd", "$SYS")
# Topics zigbee2mqtt derives from a friendly name (`<base>/<name>/set`, ...): a name
# with such a segment would alias another device's command or availability topic.
Z2M_SUFFIXES = ("set", "get", "availability")


def _segments_overlap(a: str, b: str) -> bool:
    """Whether one topic is the other or lies under it, segment by segment."""
    sa, sb = a.split("/"), b.split("/")
    n = min(len(sa), len(sb))
    return sa[:n] == sb[:n]


def _check_z2m_bases(sites: list[Site]) -> None:
    """Each zigbee2mqtt base topic stays clear of the reserved roots and of other
    sites' base topics, so the broker can grant a site exactly its own topics."""
    users: dict[str, set[str]] = {}
    first: dict[str, tuple[str, str]] = {}
    for s in sites:
        for d in s.devices:
            if d.vendor is None or d.vendor.z2m is None:
                continue
            base, name = d.vendor.z2m.base_topic, d.vendor.z2m.friendly_name
            for root in RESERVED_TOPIC_ROOTS:
                if _segments_overlap(base, root):
                    raise ValueError(
                        f"z2m base topic {base!r} of device {d.id!r} at site {s.id!r} overlaps "
                        f"the reserved topic root {root + '/'!r}"
                    )
            parts = name.split("/")
            if parts[0] == "bridge" or any(p in Z2M_SUFFIXES or p == "" for p in parts):
                raise ValueError(
                    f"z2m friendly name {name!r} of device {d.id!r} at site {s.id!r} uses a "
                    f"segment zigbee2mqtt reserves (bridge first, {', '.join(Z2M_SUFFIXES)}, "
                    "or empty)"
                )
            users.setdefault(base, set()).add(s.id)
            first.setdefault(base, (s.id, d.id))
    bases = sorted(users)
    for i, a in enumerate(bases):
        for b in bases[i + 1 :]:
            if _segments_overlap(a, b):
                site_b, device_b = first[b]
                raise ValueError(
                    f"z2m base topic {b!r} of device {device_b!r} at site {site_b!r} overlaps "
                    f"base topic {a!r} of site {sorted(users[a])[0]!r}"
                )


def vendor_keys(device: Device) -> list[tuple[str, ...]]:
    """The vendor identities a device answers to, as lookup keys for ingest."""
    keys: list[tuple[str, ...]] = []
    v = device.vendor
    if v is None:
        return keys
    if v.z2m is not None:
        keys.append(("z2m", v.z2m.base_topic, v.z2m.friendly_name))
    if v.shelly is not None:
        keys.append(("shelly", v.shelly.device_id))
    if v.tasmota is not None:
        keys.append(("tasmota", v.tasmota.topic))
    return keys


def _unique(items: list[Any], what: str) -> set[str]:
    ids: set[str] = set()
    for item in items:
        if item.id in ids:
            raise ValueError(f"duplicate id {item.id!r} in {what}")
        ids.add(item.id)
    return ids


def _ref(value: str | None, known: set[str], where: str) -> None:
    if value is not None and value not in known:
        raise ValueError(f"{where} refers to unknown id {value!r}")


def is_identifier(value: str) -> bool:
    return _ID_RE.fullmatch(value) is not None
