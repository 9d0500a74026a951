"""The platform's own MQTT format: `eldercare/<site_id>/<device_id>/<stream>`, JSON.

Every stream has a JSON Schema in `eldercare/wire_schemas/<stream>.json` (the published
contract for device makers). The hot path does not run a generic JSON Schema
validator: the hand-written checks below accept exactly what the schemas accept
(a property test holds them to it), at a fraction of the cost.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from eldercare.domain import SERVICE_REQUEST_KINDS, FieldValue, Stream
from eldercare.wire import NATIVE_ROOT, NativeTopic, TopicError
from ingest.codecs.common import (
    ISO_DATETIME_WITH_OFFSET_RE,
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
from ingest.decoded import Decoded, NativeIdentity, RawReading, RejectCause

SOURCE = "native"
NATIVE_ROOT_PREFIX = NATIVE_ROOT + "/"
MAX_SEQ = 2**63 - 1  # fits InfluxDB's signed 64-bit integer field
FALL_STATUSES = ("none", "maybe_fall", "fall")

FieldCheck = Callable[[str, Any], FieldValue]


def _boolean(key: str, value: Any) -> FieldValue:
    return as_bool(key, value)


def _true(key: str, value: Any) -> FieldValue:
    if value is True:
        return True
    invalid(key, "must be true (a momentary event)")


def _number(low: float, high: float) -> FieldCheck:
    def check(key: str, value: Any) -> FieldValue:
        return as_number(key, value, low, high)

    return check


def _integer(low: int, high: int) -> FieldCheck:
    def check(key: str, value: Any) -> FieldValue:
        return as_int(key, value, low, high)

    return check


def _one_of(*choices: str) -> FieldCheck:
    allowed = frozenset(choices)

    def check(key: str, value: Any) -> FieldValue:
        if type(value) is str and value in allowed:
            return value
        invalid(key, f"expected one of {'|'.join(choices)}")

    return check


def _action_name(key: str, value: Any) -> FieldValue:
    if type(value) is str and _ACTION_NAME_RE.match(value) is not None:
        return value
    invalid(key, "expected an action name: 1-64 of A-Z a-z 0-9 _ . : -")


_ACTION_NAME_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


@dataclass(frozen=True, slots=True)
class _Spec:
    """Payload keys of one stream (besides `ts` and `seq`), each with its check."""

    fields: Mapping[str, FieldCheck]
    required: tuple[str, ...] = ()
    any_of: tuple[str, ...] = ()  # at least one of these must be present


_SPECS: dict[Stream, _Spec] = {
    Stream.MOTION: _Spec({"motion": _boolean}, ("motion",)),
    Stream.CONTACT: _Spec({"open": _boolean}, ("open",)),
    Stream.OCCUPANCY: _Spec({"occupied": _boolean}, ("occupied",)),
    Stream.PRESENCE: _Spec({"present": _boolean}, ("present",)),
    Stream.FALL: _Spec({"status": _one_of(*FALL_STATUSES)}, ("status",)),
    Stream.SOS: _Spec({"pressed": _true, "test": _boolean}, ("pressed",)),
    Stream.BATTERY: _Spec({"percent": _number(0, 100)}, ("percent",)),
    Stream.TAMPER: _Spec({"tamper": _boolean}, ("tamper",)),
    Stream.VITALS: _Spec(
        {"heart_rate": _number(0, 300), "breathing_rate": _number(0, 120)},
        any_of=("heart_rate", "breathing_rate"),
    ),
    Stream.LINK: _Spec({"linkquality": _integer(0, 255)}, ("linkquality",)),
    Stream.HEARTBEAT: _Spec({}),
    Stream.FLUSH: _Spec({"flushed": _true}, ("flushed",)),
    Stream.POWER: _Spec({"watts": _number(0, 100_000)}, ("watts",)),
    Stream.SMOKE: _Spec({"smoke": _boolean, "test": _boolean}, ("smoke",)),
    Stream.GAS: _Spec({"gas": _boolean, "test": _boolean}, ("gas",)),
    Stream.CARBON_MONOXIDE: _Spec(
        {"carbon_monoxide": _boolean, "test": _boolean}, ("carbon_monoxide",)
    ),
    Stream.WATER_LEAK: _Spec({"water_leak": _boolean}, ("water_leak",)),
    Stream.TEMPERATURE: _Spec(
        {"celsius": _number(TEMPERATURE_MIN_C, TEMPERATURE_MAX_C)}, ("celsius",)
    ),
    Stream.HUMIDITY: _Spec({"percent": _number(0, 100)}, ("percent",)),
    Stream.DEVICE_TEST: _Spec({"passed": _boolean}, ("passed",)),
    Stream.ACTION: _Spec({"action": _action_name}, ("action",)),
    Stream.SERVICE_REQUEST: _Spec({"kind": _one_of(*SERVICE_REQUEST_KINDS)}, ("kind",)),
}
ACCEL_RATE_MAX_HZ = 1000.0
ACCEL_UNITS = {"g": 1.0, "mg": 0.001}
ACCEL_AXIS_MAX = 1e6  # generous even in mg; a bound keeps every value a finite float


def decode_native(topic: str, payload: bytes, received_at: float, limits: DecodeLimits) -> Decoded:
    try:
        where = NativeTopic.parse(topic)
    except TopicError as exc:
        raise Invalid(RejectCause.BAD_TOPIC, str(exc)) from None
    identity = NativeIdentity(where.site_id, where.device_id)
    if where.stream is Stream.AVAILABILITY:
        return _availability(identity, payload, received_at, limits)

    body = parse_object(payload)
    fields = validate_payload(where.stream, body, limits)
    ts, from_payload = _event_time(body.get("ts"), received_at, limits)
    extra: dict[str, FieldValue] = {}
    seq = body.get("seq")
    if seq is not None:
        extra["seq"] = int(seq)
        if where.stream is Stream.HEARTBEAT:
            fields["seq"] = int(seq)
    reading = RawReading(where.stream, ts, fields)
    if where.stream is Stream.SOS:
        reading = _sos_or_test(reading)
    return Decoded(identity, [reading], SOURCE, from_payload, extra)


def _sos_or_test(reading: RawReading) -> RawReading:
    """A press with `test: true` is the button's test press: the device's test, never an
    SOS. Without the flag (or `test: false`) it is the emergency call it always was."""
    if reading.fields.get("test") is True:
        return RawReading(Stream.DEVICE_TEST, reading.ts, {"passed": True})
    return RawReading(Stream.SOS, reading.ts, {"pressed": True})


def validate_payload(
    stream: Stream, body: dict[str, Any], limits: DecodeLimits
) -> dict[str, FieldValue]:
    """Check a parsed payload's shape against its stream's schema; return the reading's fields.

    Accepts exactly what `eldercare/wire_schemas/<stream>.json` accepts (with the default
    limits). Raises `Invalid` naming the offending key otherwise. Time *semantics*
    (a real calendar date, not far in the future) are checked after this.
    """
    if "ts" in body:
        _check_ts_shape(body["ts"])
    if "seq" in body:
        as_int("seq", body["seq"], 0, MAX_SEQ)
    if stream is Stream.ACCEL:
        return _accel(body, limits)
    if stream is Stream.AVAILABILITY:
        return {"online": _availability_state(body)}
    spec = _SPECS[stream]
    checks = spec.fields
    fields: dict[str, FieldValue] = {}
    for key, value in body.items():
        check = checks.get(key)
        if check is not None:
            fields[key] = check(key, value)
        elif key != "ts" and key != "seq":
            invalid(key[:40], f"unknown key for stream {stream.value}")
    for key in spec.required:
        if key not in fields:
            invalid(key, "required key missing")
    if spec.any_of and not any(key in fields for key in spec.any_of):
        invalid("|".join(spec.any_of), "at least one is required")
    return fields


def _check_ts_shape(value: Any) -> None:
    if type(value) is str:
        if ISO_DATETIME_WITH_OFFSET_RE.match(value) is None:
            invalid("ts", "not an ISO 8601 date-time with offset")
    else:
        as_number("ts", value, 0.0, MAX_EPOCH_S)


def _event_time(value: Any, received_at: float, limits: DecodeLimits) -> tuple[float, bool]:
    if value is None:
        return received_at, False
    ts = iso_to_epoch("ts", value, require_offset=True) if type(value) is str else float(value)
    assert ts is not None  # an offset is required, so a time always results
    check_event_time(ts, received_at, limits)
    return ts, True


def _accel(body: dict[str, Any], limits: DecodeLimits) -> dict[str, FieldValue]:
    for key in body:
        if key not in ("ts", "seq", "rate_hz", "samples", "unit"):
            invalid(key[:40], "unknown key for stream accel")
    if "rate_hz" not in body:
        invalid("rate_hz", "required key missing")
    rate = as_number("rate_hz", body["rate_hz"], 0.0, ACCEL_RATE_MAX_HZ)
    if rate == 0.0:
        invalid("rate_hz", "must be above 0")
    scale = 1.0
    if "unit" in body:
        unit = body["unit"]
        if type(unit) is not str or unit not in ACCEL_UNITS:
            invalid("unit", "expected g|mg")
        scale = ACCEL_UNITS[unit]
    if "samples" not in body:
        invalid("samples", "required key missing")
    samples = body["samples"]
    if type(samples) is not list:
        invalid("samples", f"expected array, got {json_type(samples)}")
    if len(samples) > limits.max_accel_samples:
        raise Invalid(
            RejectCause.OVERSIZE,
            f"samples: {len(samples)} samples, at most {limits.max_accel_samples}",
        )
    if not samples:
        invalid("samples", "must not be empty")
    xs: list[float] = []
    ys: list[float] = []
    zs: list[float] = []
    for i, sample in enumerate(samples):
        if type(sample) is not list or len(sample) != 3:
            invalid(f"samples[{i}]", "expected [x, y, z]")
        x, y, z = sample
        xs.append(as_number(f"samples[{i}][0]", x, -ACCEL_AXIS_MAX, ACCEL_AXIS_MAX) * scale)
        ys.append(as_number(f"samples[{i}][1]", y, -ACCEL_AXIS_MAX, ACCEL_AXIS_MAX) * scale)
        zs.append(as_number(f"samples[{i}][2]", z, -ACCEL_AXIS_MAX, ACCEL_AXIS_MAX) * scale)
    return {"rate_hz": rate, "x": tuple(xs), "y": tuple(ys), "z": tuple(zs)}


def _availability_state(body: dict[str, Any]) -> bool:
    for key in body:
        if key not in ("ts", "seq", "state"):
            invalid(key[:40], "unknown key for availability")
    if "state" not in body:
        invalid("state", "required key missing")
    state = body["state"]
    if state == "online" and type(state) is str:
        return True
    if state == "offline" and type(state) is str:
        return False
    invalid("state", "expected online|offline")


def _availability(
    identity: NativeIdentity, payload: bytes, received_at: float, limits: DecodeLimits
) -> Decoded:
    """Plain `online`/`offline` (what an MQTT Last Will carries), or JSON `{"state": ...}`."""
    text = decode_utf8(payload).strip()
    ts, from_payload = received_at, False
    extra: dict[str, FieldValue] = {}
    if text == "online":
        online = True
    elif text == "offline":
        online = False
    elif text.startswith("{"):
        body = parse_object(payload)
        online = bool(validate_payload(Stream.AVAILABILITY, body, limits)["online"])
        ts, from_payload = _event_time(body.get("ts"), received_at, limits)
        if "seq" in body:
            extra["seq"] = int(body["seq"])
    else:
        raise Invalid(RejectCause.SCHEMA, "availability: expected online|offline")
    reading = RawReading(Stream.AVAILABILITY, ts, {"online": online})
    return Decoded(identity, [reading], SOURCE, from_payload, extra)
