"""zigbee2mqtt: `<base_topic>/<friendly_name>` JSON state messages and availability.

Facts this codec relies on (zigbee2mqtt documentation, "MQTT Topics and Messages"
and "Device availability"):

- A friendly name may contain `/`, so the identity is everything after the base topic.
- `<name>/availability` is `{"state":"online"}` since z2m 2.0 and plain `online` /
  `offline` before (or with `legacy_availability_payload`).
- `<base>/bridge/...` is z2m's own state and logs; `<name>/set`, `<name>/get` (and
  `/set/<attr>`) are commands to devices. Neither carries a reading.
- `contact: true` means the magnet is present: the door is CLOSED.
- `last_seen` is ISO 8601 (`ISO_8601`: UTC with `Z`; `ISO_8601_local`: with offset)
  or epoch milliseconds (`epoch`), depending on `advanced.last_seen`.
- A value z2m does not know yet is published as null.
- Hazard detectors (zigbee-herdsman-converters' IAS zone converters `ias_smoke_alarm_1`,
  `ias_gas_alarm_1`, `ias_carbon_monoxide_alarm_1`, `ias_water_leak_alarm_1`; Heiman
  HS1SA / HS1CG / HS3CG, Tuya smoke detectors, Aqara SJCGQ11LM) publish `smoke`, `gas`,
  `carbon_monoxide`, `water_leak` as booleans, with `tamper`, `battery_low` and, where
  the zone reports it, `test` (the detector's own test button is held). Tuya's own
  models report `battery_state` (`low` / `middle` / `high`) instead of `battery_low`.
- Temperature sensors (Aqara WSDCGQ11LM) publish `temperature` in °C and `humidity` in %.
- Buttons publish a momentary `action`: SOS buttons `emergency`; others their press
  pattern (`single`, `double`, `triple`, `hold`, ...). An IAS zone in test mode sets
  `test` (zone status bit 8) in the same message: an `emergency` with `test: true` is
  the button's test press, decoded as a device test and never as an SOS.
- Tuya devices with a self-check (TS0601 smoke detectors and mmWave presence / fall
  radars) publish `self_test`: `checking`, `check_success`, `check_failure`, and on
  radars `comm_fault`, `radar_fault`, `others`.

An action other than `emergency` is passed on as an `action` reading: what it means
(an SOS, the device's test, a service request, or nothing) is the device's registry
entry and kind's to say (`ingest.codecs.adapt`), not the codec's.
"""

from __future__ import annotations

from typing import Any

from eldercare.domain import FieldValue, Stream
from ingest.codecs.common import (
    MAX_EPOCH_S,
    TEMPERATURE_MAX_C,
    TEMPERATURE_MIN_C,
    Invalid,
    as_bool,
    as_int,
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

SOURCE = "z2m"
FALL_STATUSES = frozenset(("none", "maybe_fall", "fall"))
_COMMAND_LEVELS = frozenset(("set", "get"))
# Keys that carry no reading but are expected in state messages; they do not count
# as unknown.
_QUIET_KEYS = frozenset(("last_seen", "elapsed"))
# z2m key → the hazard stream it is the alarm flag of (the field has the same name).
_HAZARD_KEYS = {
    "smoke": Stream.SMOKE,
    "gas": Stream.GAS,
    "carbon_monoxide": Stream.CARBON_MONOXIDE,
    "water_leak": Stream.WATER_LEAK,
}
# Streams whose detectors have a test button, reported as `test` in the same message.
_TESTABLE = frozenset((Stream.SMOKE, Stream.GAS, Stream.CARBON_MONOXIDE))
_TUYA_BATTERY_STATES = {"low": True, "middle": False, "high": False}
# Tuya `self_test` → passed; a state absent here (`checking`, `others`) is no result yet.
_SELF_TEST_RESULTS = {
    "check_success": True,
    "check_failure": False,
    "comm_fault": False,
    "radar_fault": False,
}
_SELF_TEST_STATES = frozenset((*_SELF_TEST_RESULTS, "checking", "others"))
EMERGENCY_ACTION = "emergency"
_MAX_ACTION_LEN = 64


def decode_z2m(
    base: str, rest: str, payload: bytes, received_at: float, limits: DecodeLimits
) -> DecodeResult:
    if rest == "bridge" or rest.startswith("bridge/"):
        return Ignored("zigbee2mqtt bridge topic")
    levels = rest.split("/")
    if "" in levels:
        raise Invalid(RejectCause.BAD_TOPIC, "empty level in zigbee2mqtt friendly name")
    if levels[-1] in _COMMAND_LEVELS or (len(levels) > 1 and levels[-2] in _COMMAND_LEVELS):
        return Ignored("zigbee2mqtt command topic")
    if levels[-1] == "availability" and len(levels) > 1:
        name = rest[: -len("/availability")]
        return _availability(VendorIdentity((SOURCE, base, name)), payload, received_at)
    return _state(VendorIdentity((SOURCE, base, rest)), payload, received_at, limits)


def _availability(identity: VendorIdentity, payload: bytes, received_at: float) -> Decoded:
    text = decode_utf8(payload).strip()
    # JSON since z2m 2.0; the legacy payload is the plain string.
    state = parse_object(payload).get("state") if text.startswith("{") else text
    if state == "online":
        online = True
    elif state == "offline":
        online = False
    else:
        raise Invalid(RejectCause.SCHEMA, "availability: expected online|offline")
    reading = RawReading(Stream.AVAILABILITY, received_at, {"online": online})
    return Decoded(identity, [reading], SOURCE, event_time_from_payload=False)


def _event_time(last_seen: Any, received_at: float, limits: DecodeLimits) -> tuple[float, bool]:
    if last_seen is None:
        return received_at, False
    if type(last_seen) is str:
        ts = iso_to_epoch("last_seen", last_seen, require_offset=False)
        if ts is None:  # no offset: a local time of unknown zone; trust our own clock
            return received_at, False
    elif type(last_seen) in (int, float):
        ts = as_number("last_seen", last_seen, 0.0, MAX_EPOCH_S * 1000.0) / 1000.0
    else:
        invalid("last_seen", f"expected date-time or epoch ms, got {json_type(last_seen)}")
    check_event_time(ts, received_at, limits)
    return ts, True


def _state(
    identity: VendorIdentity, payload: bytes, received_at: float, limits: DecodeLimits
) -> DecodeResult:
    body = parse_object(payload)
    ts, from_payload = _event_time(body.get("last_seen"), received_at, limits)
    readings: list[RawReading] = []
    vitals: dict[str, FieldValue] = {}
    battery: dict[str, FieldValue] = {}  # `battery` and `battery_low` are one reading
    hazards: list[RawReading] = []
    test: bool | None = None
    unknown = 0
    emergency = False
    for key, value in body.items():
        if value is None:
            continue  # z2m's "not known yet"
        if key == "occupancy":
            readings.append(RawReading(Stream.OCCUPANCY, ts, {"occupied": as_bool(key, value)}))
        elif key == "presence":
            readings.append(RawReading(Stream.PRESENCE, ts, {"present": as_bool(key, value)}))
        elif key == "contact":
            # z2m: contact true = magnet present = CLOSED; the platform stores `open`.
            readings.append(RawReading(Stream.CONTACT, ts, {"open": not as_bool(key, value)}))
        elif key == "fall_down_status":
            if type(value) is not str or value not in FALL_STATUSES:
                invalid(key, "expected none|maybe_fall|fall")
            readings.append(RawReading(Stream.FALL, ts, {"status": value}))
        elif key == "action":
            if type(value) is not str:
                invalid(key, f"expected string, got {json_type(value)}")
            if value == EMERGENCY_ACTION:
                emergency = True  # an SOS, unless the same message says test mode
            elif value and len(value) <= _MAX_ACTION_LEN:
                readings.append(RawReading(Stream.ACTION, ts, {"action": value}))
            # "" is z2m clearing the last action: nothing happened
        elif key == "battery":
            battery["percent"] = as_number(key, value, 0, 100)
        elif key == "battery_low":
            battery["low"] = as_bool(key, value)
        elif key == "battery_state":
            if type(value) is not str or value not in _TUYA_BATTERY_STATES:
                invalid(key, "expected low|middle|high")
            battery["low"] = _TUYA_BATTERY_STATES[value]
        elif key in _HAZARD_KEYS:
            hazards.append(RawReading(_HAZARD_KEYS[key], ts, {key: as_bool(key, value)}))
        elif key == "test":
            test = as_bool(key, value)
        elif key == "self_test":
            if type(value) is not str or value not in _SELF_TEST_STATES:
                invalid(key, "expected " + "|".join(sorted(_SELF_TEST_STATES)))
            if value in _SELF_TEST_RESULTS:
                passed = _SELF_TEST_RESULTS[value]
                readings.append(RawReading(Stream.DEVICE_TEST, ts, {"passed": passed}))
        elif key == "temperature":
            celsius = as_number(key, value, TEMPERATURE_MIN_C, TEMPERATURE_MAX_C)
            readings.append(RawReading(Stream.TEMPERATURE, ts, {"celsius": celsius}))
        elif key == "humidity":
            humidity = as_number(key, value, 0, 100)
            readings.append(RawReading(Stream.HUMIDITY, ts, {"percent": humidity}))
        elif key == "tamper":
            readings.append(RawReading(Stream.TAMPER, ts, {"tamper": as_bool(key, value)}))
        elif key == "linkquality":
            quality = as_int(key, value, 0, 255)
            readings.append(RawReading(Stream.LINK, ts, {"linkquality": quality}))
        elif key == "heart_rate":
            vitals["heart_rate"] = as_number(key, value, 0, 300)
        elif key == "breath_rate":
            vitals["breathing_rate"] = as_number(key, value, 0, 120)
        elif key not in _QUIET_KEYS:
            unknown += 1
    if emergency:
        # Test mode: the resident (or a responder) pressed it to test it, not to call.
        if test is True:
            readings.append(RawReading(Stream.DEVICE_TEST, ts, {"passed": True}))
        else:
            readings.append(RawReading(Stream.SOS, ts, {"pressed": True}))
    if vitals:
        readings.append(RawReading(Stream.VITALS, ts, vitals))
    if battery:
        readings.append(RawReading(Stream.BATTERY, ts, battery))
    for hazard in hazards:
        if test is not None and hazard.stream in _TESTABLE:
            hazard = RawReading(hazard.stream, ts, {**hazard.fields, "test": test})
        readings.append(hazard)
    if not readings:
        return Ignored(f"no known keys ({unknown} unknown)")
    return Decoded(identity, readings, SOURCE, from_payload)
