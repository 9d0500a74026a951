"""What a codec returns: readings for one device identity, or a rejection.

Codecs are pure: bytes in, `Decoded` or `Rejected` out, no registry and no I/O.
Ingest then resolves the identity against the registry (unknown identities go
to the unregistered-devices list) and stamps site, room and resident.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from eldercare.domain import FieldValue, Stream


class RejectCause(StrEnum):
    """Why a message was quarantined; counters are kept per cause."""

    BAD_JSON = "bad_json"
    BAD_UTF8 = "bad_utf8"
    SCHEMA = "schema"  # valid JSON, wrong shape or types
    NOT_FINITE = "not_finite"  # NaN / Infinity
    OVERSIZE = "oversize"
    FUTURE_TIMESTAMP = "future_timestamp"
    ANCIENT_TIMESTAMP = "ancient_timestamp"
    BAD_TOPIC = "bad_topic"
    UNSUPPORTED = "unsupported"  # a topic we subscribe to but have no codec for


@dataclass(frozen=True, slots=True)
class NativeIdentity:
    site_id: str
    device_id: str


@dataclass(frozen=True, slots=True)
class VendorIdentity:
    """A vendor's name for a device, as `eldercare.registry_model.vendor_keys` spells it."""

    key: tuple[str, ...]  # ("z2m", base_topic, friendly_name) | ("shelly", id) | ("tasmota", t)


DeviceIdentity = NativeIdentity | VendorIdentity


@dataclass(frozen=True, slots=True)
class RawReading:
    """A reading before registry resolution."""

    stream: Stream
    ts: float  # event time, epoch seconds
    fields: Mapping[str, FieldValue]


@dataclass(frozen=True, slots=True)
class Decoded:
    identity: DeviceIdentity
    readings: list[RawReading]
    source: str  # native | z2m | shelly | tasmota
    # True when the message carried its own time; False when ingest's receive time was used.
    event_time_from_payload: bool = True
    extra: Mapping[str, FieldValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Ignored:
    """A message on a subscribed topic that carries nothing to record (bridge logs, /set)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Rejected:
    cause: RejectCause
    detail: str


DecodeResult = Decoded | Ignored | Rejected
