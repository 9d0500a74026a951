"""Domain types shared by every part of the platform.

A `Reading` is one fact a device reported at one event time. Codecs turn vendor
payloads into readings; detectors turn readings into `Transition`s; the alert
pipeline turns transitions into alerts people act on.

Times are float seconds since the Unix epoch (UTC) everywhere in the hot path:
cheap to compare and to serialise. Convert to a site's local time only where a
rule needs a wall-clock notion (night windows, wake times).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from eldercare.evidence import Observation

FieldValue = bool | int | float | str | tuple[float, ...]


class Stream(StrEnum):
    """What a reading is about. Native topics use these names as their last level."""

    MOTION = "motion"  # fields: motion: bool
    CONTACT = "contact"  # fields: open: bool  (True = door/window OPEN)
    OCCUPANCY = "occupancy"  # fields: occupied: bool  (bed strap, chair, room presence)
    PRESENCE = "presence"  # fields: present: bool  (mmWave presence in a room)
    FALL = "fall"  # fields: status: "none" | "maybe_fall" | "fall"
    SOS = "sos"  # fields: pressed: True  (momentary)
    BATTERY = "battery"  # fields: percent: float 0..100 and/or low: bool (the device's own flag)
    TAMPER = "tamper"  # fields: tamper: bool
    ACCEL = "accel"  # fields: rate_hz: float, x, y, z: tuple[float, ...] in g (a batch)
    VITALS = "vitals"  # fields: heart_rate: float bpm, breathing_rate: float per minute
    LINK = "link"  # fields: linkquality: int  (radio link quality, 0..255)
    HEARTBEAT = "heartbeat"  # fields: seq: int (optional)  (a device saying "I'm alive")
    AVAILABILITY = "availability"  # fields: online: bool  (broker LWT / z2m availability)
    FLUSH = "flush"  # fields: flushed: True  (toilet flush sensor)
    POWER = "power"  # fields: watts: float  (appliance use, e.g. kettle)
    # Home hazards. `test` (optional) is True while the detector's own test button is held.
    SMOKE = "smoke"  # fields: smoke: bool, test: bool (optional)
    GAS = "gas"  # fields: gas: bool, test: bool (optional)  (natural gas / LPG)
    CARBON_MONOXIDE = "carbon_monoxide"  # fields: carbon_monoxide: bool, test: bool (optional)
    WATER_LEAK = "water_leak"  # fields: water_leak: bool
    TEMPERATURE = "temperature"  # fields: celsius: float  (indoor air)
    HUMIDITY = "humidity"  # fields: percent: float 0..100  (relative humidity)
    # The device tested itself: a test press of an emergency button, a fall radar's
    # self-check. Never an alarm; the field service records it as the device's test.
    DEVICE_TEST = "device_test"  # fields: passed: bool
    # A button action or press pattern before the registry says what it means
    # (`ingest.codecs.adapt_to_device` turns it into sos, device_test or service_request).
    ACTION = "action"  # fields: action: str  (e.g. "double", "hold", "need_help")
    # A resident asked for help of a kind from a device (a button's second pattern, a
    # terminal's "I need help"); the field service opens a service request.
    SERVICE_REQUEST = "service_request"  # fields: kind: str (SERVICE_REQUEST_KINDS)


class SiteKind(StrEnum):
    HOME = "home"
    INSTITUTION = "institution"


class RoomKind(StrEnum):
    BEDROOM = "bedroom"
    BATHROOM = "bathroom"
    TOILET = "toilet"
    LIVING = "living"
    KITCHEN = "kitchen"
    ENTRANCE = "entrance"
    HALLWAY = "hallway"
    DINING = "dining"
    BALCONY = "balcony"
    CORRIDOR = "corridor"
    OTHER = "other"


class DeviceKind(StrEnum):
    MOTION = "motion"  # PIR
    DOOR = "door"  # contact sensor
    BED = "bed"  # bed occupancy strap / mat (may also report vitals)
    SEAT = "seat"  # chair, armchair or couch pressure mat: someone sitting there
    FALL_RADAR = "fall_radar"  # mmWave radar reporting fall_down_status and presence
    PRESENCE = "presence"  # mmWave presence only
    SOS_BUTTON = "sos_button"
    WEARABLE = "wearable"  # pendant / watch with accelerometer stream
    VITALS = "vitals"  # contact-free vital signs monitor
    FLUSH = "flush"
    PLUG = "plug"  # smart plug measuring power
    GATEWAY = "gateway"  # a site's hub; heartbeats only
    SMOKE_ALARM = "smoke_alarm"  # smoke detector (may also report temperature)
    GAS_ALARM = "gas_alarm"  # natural gas / LPG detector
    CO_ALARM = "co_alarm"  # carbon monoxide detector
    WATER_LEAK = "water_leak"  # flood / leak sensor on the floor
    CLIMATE = "climate"  # indoor temperature (and humidity) sensor
    TERMINAL = "terminal"  # a smart home terminal with SOS and "I need help" buttons


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        """Smaller is more urgent; for sorting queues."""
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {
    Severity.CRITICAL: 0,
    Severity.HIGH: 1,
    Severity.MEDIUM: 2,
    Severity.WARNING: 3,
    Severity.INFO: 4,
}


class AlertKind(StrEnum):
    """Stable identifiers used in the API, storage and dashboards."""

    SOS = "sos"
    FALL = "fall"
    WEARABLE_FALL = "wearable_fall"
    BED_EXIT_NO_RETURN = "bed_exit_no_return"
    BATHROOM_TOO_LONG = "bathroom_too_long"
    INACTIVITY = "inactivity"
    NIGHT_DOOR_EXIT = "night_door_exit"
    NOT_RETURNED = "not_returned"
    NOT_UP = "not_up"
    VITALS = "vitals"
    DEVICE_OFFLINE = "device_offline"
    SITE_OFFLINE = "site_offline"
    LOW_BATTERY = "low_battery"
    TAMPER = "tamper"
    ROUTINE_DEVIATION = "routine_deviation"
    SMOKE = "smoke"
    GAS = "gas"
    CARBON_MONOXIDE = "carbon_monoxide"
    WATER_LEAK = "water_leak"
    HEAT = "heat"
    COLD = "cold"
    # A device test overdue (JGJ/T 484: weekly) or a fault not fixed within 2 hours:
    # a notice for the centre, raised by the field service, not by a detector.
    DEVICE_FAULT = "device_fault"


# What a resident may ask for (the field service's RequestKind has the same values):
# meal 助餐, medicine 送药, cleaning 保洁, accompany to hospital 陪同就医, repair 维修.
SERVICE_REQUEST_KINDS: tuple[str, ...] = (
    "meal",
    "medicine",
    "cleaning",
    "accompany_hospital",
    "repair",
    "other",
)


# Hazards in the home: what threatens everyone there, not one person's behaviour.
HAZARD_KINDS: frozenset[AlertKind] = frozenset(
    {
        AlertKind.SMOKE,
        AlertKind.GAS,
        AlertKind.CARBON_MONOXIDE,
        AlertKind.WATER_LEAK,
        AlertKind.HEAT,
        AlertKind.COLD,
    }
)


class AlertCondition(StrEnum):
    """An alert's detector axis: is what was detected still there."""

    ACTIVE = "active"
    CLEARED = "cleared"


class AlertStatus(StrEnum):
    """An alert's handling axis: what people have done about it."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class AlertChangeKind(StrEnum):
    """What one detector transition did to a stored alert."""

    RAISED = "raised"
    UPDATED = "updated"
    SEVERITY_RAISED = "severity_raised"  # an update that made it more urgent
    REACTIVATED = "reactivated"  # an update to an alert whose condition had cleared
    CLEARED = "cleared"
    RE_RAISED = "re_raised"  # a new press or fall on an acknowledged alert: open again


DEFAULT_SEVERITY: Mapping[AlertKind, Severity] = {
    AlertKind.SOS: Severity.CRITICAL,
    AlertKind.FALL: Severity.CRITICAL,
    AlertKind.WEARABLE_FALL: Severity.CRITICAL,
    AlertKind.BED_EXIT_NO_RETURN: Severity.HIGH,
    AlertKind.BATHROOM_TOO_LONG: Severity.HIGH,
    AlertKind.INACTIVITY: Severity.HIGH,
    AlertKind.NIGHT_DOOR_EXIT: Severity.HIGH,
    AlertKind.NOT_RETURNED: Severity.MEDIUM,
    AlertKind.NOT_UP: Severity.MEDIUM,
    AlertKind.VITALS: Severity.HIGH,
    AlertKind.DEVICE_OFFLINE: Severity.WARNING,
    AlertKind.SITE_OFFLINE: Severity.HIGH,
    AlertKind.LOW_BATTERY: Severity.WARNING,
    AlertKind.TAMPER: Severity.HIGH,
    AlertKind.ROUTINE_DEVIATION: Severity.INFO,
    AlertKind.SMOKE: Severity.CRITICAL,
    AlertKind.GAS: Severity.CRITICAL,
    AlertKind.CARBON_MONOXIDE: Severity.CRITICAL,
    AlertKind.WATER_LEAK: Severity.HIGH,
    AlertKind.HEAT: Severity.HIGH,
    AlertKind.COLD: Severity.HIGH,
    AlertKind.DEVICE_FAULT: Severity.WARNING,  # a notice for the centre
}


@dataclass(frozen=True, slots=True)
class Reading:
    """One fact reported by one device at one event time.

    `site_id`, `room_id` and `resident_id` are filled in by ingest from the
    registry; a reading from an unregistered device never reaches detectors.
    `fields` holds the stream's values (see `Stream` for each stream's keys).
    """

    site_id: str
    device_id: str
    stream: Stream
    ts: float  # event time, epoch seconds UTC
    fields: Mapping[str, FieldValue]
    received_at: float = 0.0  # ingest wall time, epoch seconds
    room_id: str | None = None
    resident_id: str | None = None
    source: str = "native"  # codec that produced it: native, z2m, shelly, tasmota
    # False when the message carried no time and `ts` is ingest's receive time.
    time_from_payload: bool = True

    @property
    def key(self) -> tuple[str, str, str, float]:
        """Idempotency key: a redelivered message yields the same key."""
        return (self.site_id, self.device_id, self.stream.value, self.ts)


class TransitionAction(StrEnum):
    RAISE = "raise"
    UPDATE = "update"
    CLEAR = "clear"


@dataclass(frozen=True, slots=True)
class Evidence:
    """A reading (or derived fact) that made a detector decide."""

    ts: float
    device_id: str | None
    stream: str
    summary: str  # short, human readable, English: "bed empty", "front door opened"
    room_id: str | None = None
    # What was seen as codes and values (eldercare.evidence), rendered per language by
    # the gateway; `summary` is their English text (free text from rules without codes).
    observations: tuple[Observation, ...] = ()


@dataclass(frozen=True, slots=True)
class Transition:
    """A change in a detected condition, stamped with the event time it happened at.

    Identity of the alert it belongs to is (site_id, resident_id, kind).
    `details` carries kind-specific numbers (minutes out of bed, heart rate…)
    that notifications and the console may show.
    """

    action: TransitionAction
    kind: AlertKind
    site_id: str
    ts: float
    severity: Severity
    resident_id: str | None = None
    room_id: str | None = None
    device_id: str | None = None
    evidence: tuple[Evidence, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def identity(self) -> tuple[str, str | None, AlertKind]:
        return (self.site_id, self.resident_id, self.kind)
