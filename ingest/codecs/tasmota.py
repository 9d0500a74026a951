"""Tasmota with the default FullTopic `%prefix%/%topic%/`:

- `tele/<topic>/SENSOR`: `{"Time":"2017-10-01T12:37:18","Switch1":"ON",...}` → the input;
  a climate sensor's object (`"AM2301":{"Temperature":23.4,"Humidity":45.6}`, `DS18B20`,
  `SI7021`, `BME280`...) → temperature (converted from °F when `"TempUnit":"F"`) and
  humidity, from the first sensor object that has a `Temperature`
- `stat/<topic>/RESULT`: `{"Switch1":{"Action":"ON"}}` → the input, at once on change;
  `{"Button1":{"Action":"DOUBLE"}}` (buttons detached from the relay, `SetOption73 1`)
  → a press pattern as an `action` (`single`, `double`, `triple`, `quad`, `penta`,
  `hold`), whose meaning is the registry's (`adapt_to_device`)
- `tele/<topic>/LWT`: `Online` / `Offline` (retained Last Will) → availability
- `tele/<topic>/STATE`: periodic status (Uptime, Wifi, POWER) → heartbeat

A Tasmota topic is one device, and `Switch1` is its input (a PIR or a reed contact
set up as a Switch); other `SwitchN` keys and other sensor values are not read. What the input
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
    TEMPERATURE_MAX_C,
    TEMPERATURE_MIN_C,
    Invalid,
    as_number,
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
BUTTON_KEY = "Button1"
_SWITCH_STATES = {"ON": True, "OFF": False}
BUTTON_ACTIONS = {
    "SINGLE": "single",
    "DOUBLE": "double",
    "TRIPLE": "triple",
    "QUAD": "quad",
    "PENTA": "penta",
    "HOLD": "hold",
}


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
        return _sensor(identity, parse_object(payload), received_at, limits)
    if prefix == "stat" and kind == "RESULT":
        body = parse_object(payload)
        button = body.get(BUTTON_KEY)
        if button is not None:
            return _button(identity, button, received_at)
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


def _button(identity: VendorIdentity, event: Any, received_at: float) -> DecodeResult:
    action = event.get("Action") if type(event) is dict else None
    if type(action) is not str:
        invalid(BUTTON_KEY, 'expected {"Action": "SINGLE"|"DOUBLE"|...}')
    name = BUTTON_ACTIONS.get(action)
    if name is None:
        return Ignored(f"tasmota button action {action[:20]!r}")  # CLEAR, INC_DEC ...
    reading = RawReading(Stream.ACTION, received_at, {"action": name})
    return Decoded(identity, [reading], SOURCE, event_time_from_payload=False)


def _sensor(
    identity: VendorIdentity, body: dict[str, Any], received_at: float, limits: DecodeLimits
) -> DecodeResult:
    climate = _climate_object(body)
    if INPUT_KEY not in body and climate is None:
        return Ignored(f"tasmota SENSOR without {INPUT_KEY} or a temperature ({len(body)} keys)")
    ts, from_payload = _event_time(body.get("Time"), received_at, limits)
    readings: list[RawReading] = []
    if INPUT_KEY in body:
        active = _switch_state(INPUT_KEY, body[INPUT_KEY])
        readings.append(RawReading(Stream.MOTION, ts, {"motion": active}))
    if climate is not None:
        name, values = climate
        unit = body.get("TempUnit", "C")
        if unit not in ("C", "F"):
            invalid("TempUnit", "expected C|F")
        reading = as_number(f"{name}.Temperature", values["Temperature"], -200.0, 400.0)
        celsius = (reading - 32.0) * 5.0 / 9.0 if unit == "F" else reading
        celsius = as_number(f"{name}.Temperature", celsius, TEMPERATURE_MIN_C, TEMPERATURE_MAX_C)
        readings.append(RawReading(Stream.TEMPERATURE, ts, {"celsius": celsius}))
        if values.get("Humidity") is not None:
            humidity = as_number(f"{name}.Humidity", values["Humidity"], 0, 100)
            readings.append(RawReading(Stream.HUMIDITY, ts, {"percent": humidity}))
    return Decoded(identity, readings, SOURCE, from_payload)


def _climate_object(body: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The first sensor object reporting a temperature (Tasmota names it by the chip)."""
    for name, value in body.items():
        if type(value) is dict and value.get("Temperature") is not None:
            return name[:40], value
    return None


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
