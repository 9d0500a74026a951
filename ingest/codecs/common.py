"""Helpers every codec shares: strict JSON parsing, typed field checks, event time.

Codecs signal a bad message by raising `Invalid`; `ingest.codecs.decode` turns it
into a `Rejected`. The happy path raises nothing and allocates little, because it
runs for every message at ≥10,000 msg/s.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime
from typing import Any, NoReturn

from eldercare.errors import EldercareError
from ingest.codecs.limits import DecodeLimits
from ingest.decoded import RejectCause


class Invalid(EldercareError):
    """A message that must be quarantined; carries the cause counted and a short detail."""

    def __init__(self, cause: RejectCause, detail: str) -> None:
        super().__init__(detail)
        self.cause = cause
        self.detail = detail


def invalid(key: str, problem: str) -> NoReturn:
    raise Invalid(RejectCause.SCHEMA, f"{key}: {problem}")


class _NotFinite(ValueError):
    pass


def _refuse_constant(name: str) -> NoReturn:
    # json accepts NaN / Infinity / -Infinity by default; they are not JSON and would
    # poison every comparison downstream.
    raise _NotFinite(name)


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


def decode_utf8(payload: bytes) -> str:
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Invalid(RejectCause.BAD_UTF8, f"invalid UTF-8 at byte {exc.start}") from None


def parse_json(payload: bytes) -> Any:
    """Strict JSON: UTF-8 only, no NaN/Infinity, bounded nesting."""
    text = decode_utf8(payload)
    try:
        return _DECODER.decode(text)
    except _NotFinite as exc:
        raise Invalid(RejectCause.NOT_FINITE, f"{exc} is not a JSON number") from None
    except RecursionError:
        raise Invalid(RejectCause.SCHEMA, "JSON nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, and integers beyond Python's digit limit
        raise Invalid(RejectCause.BAD_JSON, str(exc)[:100]) from None


def parse_object(payload: bytes) -> dict[str, Any]:
    value = parse_json(payload)
    if type(value) is not dict:
        raise Invalid(RejectCause.SCHEMA, f"payload must be a JSON object, got {json_type(value)}")
    return value


_JSON_TYPES: dict[type, str] = {
    bool: "boolean",
    int: "number",
    float: "number",
    str: "string",
    list: "array",
    dict: "object",
    type(None): "null",
}


def json_type(value: Any) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def as_bool(key: str, value: Any) -> bool:
    # `type(...) is bool` rather than isinstance: JSON true is never the number 1 here.
    if value is True or value is False:
        return value
    invalid(key, f"expected boolean, got {json_type(value)}")


def as_number(key: str, value: Any, low: float, high: float) -> float:
    kind = type(value)
    if kind is float:
        if not math.isfinite(value):
            raise Invalid(RejectCause.NOT_FINITE, f"{key}: number out of float range")
    elif kind is not int:  # bool is excluded here too: type(True) is bool, not int
        invalid(key, f"expected number, got {json_type(value)}")
    if not low <= value <= high:
        invalid(key, f"{_short(value)} outside {low:g}..{high:g}")
    return float(value)


def as_int(key: str, value: Any, low: int, high: int) -> int:
    """An integer as JSON Schema means it: 3 and 3.0 are both the integer 3."""
    kind = type(value)
    if kind is float:
        if not math.isfinite(value):
            raise Invalid(RejectCause.NOT_FINITE, f"{key}: number out of float range")
        if not value.is_integer():
            invalid(key, "expected integer, got a fraction")
    elif kind is not int:
        invalid(key, f"expected integer, got {json_type(value)}")
    if not low <= value <= high:
        invalid(key, f"{_short(value)} outside {low}..{high}")
    return int(value)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 24 else text[:20] + "..."


# ISO 8601 date-time as RFC 3339 spells it. ASCII digits only: `\d` would also match
# other scripts' digits. ISO_DATETIME_WITH_OFFSET is also the pattern of `ts` in the
# native JSON Schemas; vendors may omit the offset (see `iso_to_epoch`).
_ISO_DATE_AND_TIME = (
    r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?"
)
_ISO_OFFSET = r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"
ISO_DATETIME_WITH_OFFSET = _ISO_DATE_AND_TIME + _ISO_OFFSET + "$"
ISO_DATETIME_WITH_OFFSET_RE = re.compile(ISO_DATETIME_WITH_OFFSET)
_ISO_ANY_RE = re.compile(_ISO_DATE_AND_TIME + _ISO_OFFSET + "?$")
_OFFSET_GROUP = 5

# Indoor temperature bounds: wide enough for a sensor beside a kitchen fire, whose
# message also carries the smoke flag and must not be refused for its temperature.
TEMPERATURE_MIN_C = -60.0
TEMPERATURE_MAX_C = 150.0

MAX_EPOCH_S = 253402300799.0  # 9999-12-31T23:59:59Z: beyond it no date-time exists


def iso_to_epoch(key: str, text: str, *, require_offset: bool) -> float | None:
    """Epoch seconds of an ISO 8601 date-time; None when it has no UTC offset and one
    is not required (the caller then falls back to the receive time)."""
    match = _ISO_ANY_RE.match(text)
    if match is None:
        invalid(key, "not an ISO 8601 date-time")
    if match.group(_OFFSET_GROUP) is None:
        if require_offset:
            invalid(key, "date-time needs a UTC offset (Z or +hh:mm)")
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except (ValueError, OverflowError):
        invalid(key, "not a valid calendar date-time")


def epoch_seconds(key: str, value: Any) -> float:
    """A numeric epoch in seconds (native `ts`)."""
    return as_number(key, value, 0.0, MAX_EPOCH_S)


def check_event_time(ts: float, received_at: float, limits: DecodeLimits) -> None:
    if ts > received_at + limits.max_future_s:
        raise Invalid(
            RejectCause.FUTURE_TIMESTAMP, f"event time {ts - received_at:.0f} s after receipt"
        )
    if ts < received_at - limits.max_age_s:
        raise Invalid(
            RejectCause.ANCIENT_TIMESTAMP, f"event time {received_at - ts:.0f} s before receipt"
        )
