"""Tasmota with the default FullTopic `%prefix%/%topic%/`:

- `tele/<topic>/SENSOR`: `{"Time":"2017-10-01T12:37:18","Switch1":"ON",...}` → the input
- `stat/<topic>/RESULT`: `{"Switch1":{"Action":"ON"}}` → the input, at once on change
- `tele/<topic>/LWT`: `Online` / `Offline` (retained Last Will) → availability
- `tele/<topic>/STATE`: periodic status (Uptime, Wifi, POWER) → heartbeat

A Tasmota topic is one device, and `Switch1` is its input (a PIR or a reed contact
set up as a Switch); other `SwitchN` keys and sensors are not read. What the input
means is decided by `adapt_to_device` from the device's kind.

Event time: Tasmota's `Time` is the device's local time and carries no UTC offset
unless `SetOption52 1` is set, and the zone it was set to is not known here (nor
whether it was ever synced). Without an offset the receive time is used; Tasmota
publishes at once over Wi-Fi, so that is within a second of the event.
"""

from __future__ import annotations

from typing import Any

from eldercare.domain import FieldValue, Stream
from ingest.codecs.common import (
    Invalid,
    check_event_time,
    decode_utf8,
    invalid,
    iso_to_epoch,
    json_type,
    parse_object,
)
from ingest.codecs.limits import DecodeLimits
from ingest.decoded import (
    Decoded,
    DecodeResult,
    Ignored,
    RawReading,
    RejectCause,
    VendorIdentity,
)

SOURCE = "tasmota"
TASMOTA_PREFIXES = ("tele/", "stat/")
INPUT_KEY = "Switch1"
_SWITCH_STATES = {"ON": True, "OFF": False}


def decode_tasmota(
    topic: str, payload: bytes, received_at: float, limits: DecodeLimits
) -> DecodeResult:
    levels = topic.split("/")
    if len(levels) != 3:
        return Ignored("not a default-FullTopic tasmota topic")
    prefix, name, kind = levels
    if not name:
        raise Invalid(RejectCause.BAD_TOPIC, "empty tasmota topic name")
    identity = VendorIdentity((SOURCE, name))
    if prefix == "tele" and kind == "LWT":
        text = decode_utf8(payload).strip()
        if text not in ("Online", "Offline"):
            invalid("LWT", "expected Online|Offline")
        reading = RawReading(Stream.AVAILABILITY, received_at, {"online": text == "Online"})
        return Decoded(identity, [reading], SOURCE, event_time_from_payload=False)
    if prefix == "tele" and kind == "STATE":
        body = parse_object(payload)
        ts, from_payload = _event_time(body.get("Time"), received_at, limits)
        return Decoded(identity, [RawReading(Stream.HEARTBEAT, ts, {})], SOURCE, from_payload)
    if prefix == "tele" and kind == "SENSOR":
        body = parse_object(payload)
        if INPUT_KEY not in body:
            return Ignored(f"tasmota SENSOR without {INPUT_KEY} ({len(body)} keys)")
        active = _switch_state(INPUT_KEY, body[INPUT_KEY])
        ts, from_payload = _event_time(body.get("Time"), received_at, limits)
        return _input(identity, active, ts, from_payload)
    if prefix == "stat" and kind == "RESULT":
        body = parse_object(payload)
        event = body.get(INPUT_KEY)
        if event is None:
            return Ignored(f"tasmota RESULT without {INPUT_KEY}")
        if type(event) is not dict or "Action" not in event:
            invalid(INPUT_KEY, 'expected {"Action": "ON"|"OFF"}')
        action = event["Action"]
        if type(action) is str and action not in _SWITCH_STATES:
            return Ignored(f"tasmota switch action {action[:20]!r}")  # TOGGLE, HOLD...
        active = _switch_state(f"{INPUT_KEY}.Action", action)
        return _input(identity, active, received_at, False)
    return Ignored(f"tasmota {prefix}/{kind[:20]} carries no reading")


def _input(identity: VendorIdentity, active: bool, ts: float, from_payload: bool) -> Decoded:
    fields: dict[str, FieldValue] = {"motion": active}
    return Decoded(identity, [RawReading(Stream.MOTION, ts, fields)], SOURCE, from_payload)


def _switch_state(key: str, value: Any) -> bool:
    if type(value) is not str or value not in _SWITCH_STATES:
        invalid(key, f"expected ON|OFF, got {json_type(value)}")
    return _SWITCH_STATES[value]


def _event_time(value: Any, received_at: float, limits: DecodeLimits) -> tuple[float, bool]:
    if value is None:
        return received_at, False
    if type(value) is not str:
        invalid("Time", f"expected date-time, got {json_type(value)}")
    ts = iso_to_epoch("Time", value, require_offset=False)
    if ts is None:
        return received_at, False
    check_event_time(ts, received_at, limits)
    return ts, True
