"""Shelly Gen1 MQTT: `shellies/<id>/...`, one plain value per topic, plus a JSON
`status` from battery sensors such as the Shelly Motion.

Topics understood (payloads as the devices send them):

- `shellies/<id>/online`: `true` / `false` (the device's Last Will) → availability
- `shellies/<id>/sensor/state`: `open` / `close` (Door/Window 1 and 2) → contact
- `shellies/<id>/sensor/motion`: `true`/`false` or `1`/`0` → motion
- `shellies/<id>/sensor/vibration`: `1`/`0` or `true`/`false` → tamper (the device was
  knocked or moved; Shelly sells it as the anti-tamper feature)
- `shellies/<id>/sensor/battery`: percent → battery
- `shellies/<id>/input/0`: `1` / `0` → an ambiguous input (see `adapt_to_device`)
- `shellies/<id>/input_event/0`: `{"event":"SS","event_cnt":4}` (Button1, i3) → a press
  pattern as an `action`: `S` single, `SS` double, `SSS` triple, `L` long, `SL`
  single_long, `LS` long_single; what it means is the registry's (`adapt_to_device`)
- `shellies/<id>/status`: `{"motion":true,"timestamp":...,"active":true,
  "vibration":false,"lux":78,"bat":98}` (Shelly Motion)
- `shellies/<id>/sensor/flood`: `true` / `false` (Shelly Flood) → water_leak
- `shellies/<id>/sensor/smoke`: `true` / `false` (Shelly Smoke) → smoke
- `shellies/<id>/sensor/temperature`: `24.25` (H&T, Flood, Smoke) → temperature
- `shellies/<id>/sensor/humidity`: `52.5` (H&T) → humidity

Temperature is published in the unit set on the device; the platform expects the
factory default, °C (registry docs say so). Everything else (announce, info, relays,
lux, tilt, `sensor/error`, `sensor/act_reasons`) is `Ignored`.

Event time is always the receive time. Gen1 devices publish at once over Wi-Fi and
keep no backlog, whereas their `timestamp` is only as good as the device's SNTP
sync: a device that never synced reports seconds since boot (e.g. 4543323).
"""

from __future__ import annotations

from typing import Any

from eldercare.domain import Stream
from ingest.codecs.common import (
    TEMPERATURE_MAX_C,
    TEMPERATURE_MIN_C,
    Invalid,
    as_bool,
    as_number,
    decode_utf8,
    invalid,
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

SOURCE = "shelly"
SHELLY_ROOT = "shellies"
SHELLY_ROOT_PREFIX = SHELLY_ROOT + "/"
_FLAGS = {"true": True, "false": False, "1": True, "0": False}
# Shelly's input_event codes → the action names the registry maps (z2m's spelling).
PRESS_PATTERNS = {
    "S": "single",
    "SS": "double",
    "SSS": "triple",
    "L": "long",
    "SL": "single_long",
    "LS": "long_single",
}


def decode_shelly(
    topic: str, payload: bytes, received_at: float, limits: DecodeLimits
) -> DecodeResult:
    levels = topic.split("/")
    if len(levels) < 3:
        return Ignored("shelly broadcast topic")  # shellies/announce, shellies/command
    device_id = levels[1]
    if not device_id:
        raise Invalid(RejectCause.BAD_TOPIC, "empty shelly device id")
    identity = VendorIdentity((SOURCE, device_id))
    what = tuple(levels[2:])

    def one(stream: Stream, fields: dict[str, Any]) -> Decoded:
        reading = RawReading(stream, received_at, fields)
        return Decoded(identity, [reading], SOURCE, event_time_from_payload=False)

    if what == ("online",):
        return one(Stream.AVAILABILITY, {"online": _flag(what, payload)})
    if what == ("sensor", "state"):
        text = decode_utf8(payload).strip()
        if text not in ("open", "close"):
            invalid("sensor/state", "expected open|close")
        return one(Stream.CONTACT, {"open": text == "open"})
    if what == ("sensor", "motion"):
        return one(Stream.MOTION, {"motion": _flag(what, payload)})
    if what == ("sensor", "vibration"):
        return one(Stream.TAMPER, {"tamper": _flag(what, payload)})
    if what == ("sensor", "battery"):
        return one(Stream.BATTERY, {"percent": _percent("sensor/battery", payload)})
    if what == ("input", "0"):
        return one(Stream.MOTION, {"motion": _flag(what, payload)})
    if what == ("input_event", "0"):
        body = parse_object(payload)
        event = body.get("event")
        if event == "":
            return Ignored("shelly input_event without an event (after boot)")
        if type(event) is not str or event not in PRESS_PATTERNS:
            invalid("input_event/0.event", "expected " + "|".join(PRESS_PATTERNS))
        return one(Stream.ACTION, {"action": PRESS_PATTERNS[event]})
    if what == ("sensor", "flood"):
        return one(Stream.WATER_LEAK, {"water_leak": _flag(what, payload)})
    if what == ("sensor", "smoke"):
        return one(Stream.SMOKE, {"smoke": _flag(what, payload)})
    if what == ("sensor", "temperature"):
        celsius = _number("sensor/temperature", payload, TEMPERATURE_MIN_C, TEMPERATURE_MAX_C)
        return one(Stream.TEMPERATURE, {"celsius": celsius})
    if what == ("sensor", "humidity"):
        return one(Stream.HUMIDITY, {"percent": _number("sensor/humidity", payload, 0, 100)})
    if what == ("status",):
        return _status(identity, payload, received_at)
    return Ignored(f"shelly topic {'/'.join(what)[:40]} carries no reading")


def _flag(what: tuple[str, ...], payload: bytes) -> bool:
    value = _FLAGS.get(decode_utf8(payload).strip())
    if value is None:
        invalid("/".join(what), "expected true|false|1|0")
    return value


def _percent(key: str, payload: bytes) -> float:
    return _number(key, payload, 0, 100)


def _number(key: str, payload: bytes, low: float, high: float) -> float:
    text = decode_utf8(payload).strip()
    try:
        number = float(text) if len(text) <= 20 else None
    except ValueError:
        number = None
    if number is None:
        invalid(key, "expected a number")
    return as_number(key, number, low, high)


def _status(identity: VendorIdentity, payload: bytes, received_at: float) -> DecodeResult:
    body = parse_object(payload)
    readings: list[RawReading] = []
    if body.get("motion") is not None:
        motion = as_bool("motion", body["motion"])
        readings.append(RawReading(Stream.MOTION, received_at, {"motion": motion}))
    if body.get("vibration") is not None:
        tamper = as_bool("vibration", body["vibration"])
        readings.append(RawReading(Stream.TAMPER, received_at, {"tamper": tamper}))
    if body.get("bat") is not None:
        percent = as_number("bat", body["bat"], 0, 100)
        readings.append(RawReading(Stream.BATTERY, received_at, {"percent": percent}))
    if not readings:
        return Ignored("shelly status without motion, vibration or bat")
    return Decoded(identity, readings, SOURCE, event_time_from_payload=False)
