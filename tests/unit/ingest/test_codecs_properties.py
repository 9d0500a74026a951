"""Properties of the codecs over generated input.

- `decode` never raises and always returns Decoded, Ignored or Rejected, for any topic
  string and any bytes, and for any JSON value on the topics the codecs understand.
- The hand-written native validator agrees with the published JSON Schemas: payloads
  generated from each schema are accepted by both, and mutations of them get the
  same verdict from both (the schemas are read by `jsonschema`, the reference).
"""

from __future__ import annotations

import json
import math
from typing import Any

import jsonschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eldercare.domain import Stream
from ingest.codecs import DecodeLimits, decode, native_schema
from ingest.codecs.common import Invalid
from ingest.codecs.native import validate_payload
from ingest.decoded import Decoded, Ignored, Rejected
from tests.helpers.examples import examples

NOW = 1714528800.0
RESULT_TYPES = (Decoded, Ignored, Rejected)
LIMITS = DecodeLimits()
SETTINGS = settings(
    max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["online", "offline", "ON", "OFF", "open", "close", "true", "0", "fall"])
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
KNOWN_KEYS = [
    "ts", "seq", "motion", "open", "occupied", "present", "status", "pressed", "percent",
    "tamper", "rate_hz", "samples", "unit", "heart_rate", "breathing_rate", "linkquality",
    "flushed", "watts", "state", "occupancy", "presence", "contact", "fall_down_status",
    "action", "battery", "breath_rate", "last_seen", "Time", "Switch1", "bat", "vibration",
]  # fmt: skip
json_objects = st.dictionaries(
    st.sampled_from(KNOWN_KEYS) | st.text(max_size=8), json_values, max_size=6
)
VALID_TOPICS = [f"eldercare/hh-1/dev-1/{s.value}" for s in Stream] + [
    "zigbee2mqtt/401/bed",
    "zigbee2mqtt/401/bed/availability",
    "zigbee2mqtt/bridge/state",
    "shellies/shellymotionsensor-60A423BEB736/status",
    "shellies/shellydw-B88D99/sensor/state",
    "shellies/shellydw-B88D99/sensor/battery",
    "shellies/shellydw-B88D99/online",
    "shellies/shelly1-40F520169316/input/0",
    "tele/sonoff2/SENSOR",
    "tele/sonoff2/STATE",
    "tele/sonoff2/LWT",
    "stat/sonoff2/RESULT",
]
topics = (
    st.text(max_size=60)
    | st.sampled_from(VALID_TOPICS)
    | st.builds(
        lambda prefix, rest: prefix + rest,
        st.sampled_from(["eldercare/", "zigbee2mqtt/", "shellies/", "tele/", "stat/"]),
        st.text(max_size=40),
    )
)


def assert_no_codec_error(result: object) -> None:
    """decode's last-resort catch turns a codec bug into "undecodable": none may occur."""
    assert not (isinstance(result, Rejected) and result.detail.startswith("undecodable")), result


@SETTINGS
@given(topic=topics, payload=st.binary(max_size=200), received_at=st.floats())
def test_decode_never_raises_on_any_bytes(topic: str, payload: bytes, received_at: float) -> None:
    result = decode(topic, payload, received_at)
    assert isinstance(result, RESULT_TYPES)
    assert_no_codec_error(result)


@SETTINGS
@given(topic=st.sampled_from(VALID_TOPICS), value=json_values | json_objects)
def test_decode_never_raises_on_any_json(topic: str, value: Any) -> None:
    payload = json.dumps(value).encode()
    result = decode(topic, payload, NOW)
    assert isinstance(result, RESULT_TYPES)
    assert_no_codec_error(result)
    if isinstance(result, Decoded):
        for reading in result.readings:
            assert isinstance(reading.stream, Stream)
            assert math.isfinite(reading.ts)


# ---- schema agreement ------------------------------------------------------------


def from_schema(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Instances of the subset of JSON Schema the native schemas use."""
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "anyOf" in schema and "type" not in schema:
        return st.one_of([from_schema(s) for s in schema["anyOf"]])
    kind = schema["type"]
    if kind == "boolean":
        return st.booleans()
    if kind == "integer":
        return st.integers(schema.get("minimum"), schema.get("maximum"))
    if kind == "number":
        low = schema.get("minimum", schema.get("exclusiveMinimum"))
        high = schema.get("maximum")
        floats = st.floats(
            low, high, allow_nan=False, allow_infinity=False,
            exclude_min="exclusiveMinimum" in schema,
        )  # fmt: skip
        int_low = None if low is None else math.floor(low) + 1 if "exclusiveMinimum" in schema \
            else math.ceil(low)  # fmt: skip
        ints = st.integers(int_low, None if high is None else math.floor(high))
        return floats | ints
    if kind == "string":
        return st.from_regex(schema["pattern"], fullmatch=True)
    if kind == "array":
        if "prefixItems" in schema:
            return st.tuples(*[from_schema(s) for s in schema["prefixItems"]]).map(list)
        return st.lists(
            from_schema(schema["items"]),
            min_size=schema.get("minItems", 0),
            max_size=min(schema.get("maxItems", 10), 10),
        )
    assert kind == "object", schema
    required = set(schema.get("required", []))
    props = schema["properties"]
    objects = st.fixed_dictionaries(
        {k: from_schema(v) for k, v in props.items() if k in required},
        optional={k: from_schema(v) for k, v in props.items() if k not in required},
    )
    alternatives = [set(alt["required"]) for alt in schema.get("anyOf", [])]
    if alternatives:
        objects = objects.filter(lambda obj: any(alt <= obj.keys() for alt in alternatives))
    return objects


SCHEMAS = {stream: native_schema(stream) for stream in Stream}
VALIDATORS = {stream: jsonschema.Draft202012Validator(s) for stream, s in SCHEMAS.items()}
valid_cases = st.sampled_from(list(Stream)).flatmap(
    lambda stream: st.tuples(st.just(stream), from_schema(SCHEMAS[stream]))
)


def fast_accepts(stream: Stream, value: Any) -> bool:
    if type(value) is not dict:
        return False
    try:
        validate_payload(stream, value, LIMITS)
    except Invalid:
        return False
    return True


@st.composite
def mutated_cases(draw: st.DrawFn) -> tuple[Stream, Any]:
    stream, value = draw(valid_cases)
    mutation = draw(st.sampled_from(["drop", "add", "replace", "retype", "whole"]))
    value = dict(value)
    if mutation == "drop" and value:
        del value[draw(st.sampled_from(sorted(value)))]
    elif mutation == "add":
        value[draw(st.sampled_from(KNOWN_KEYS) | st.text(max_size=8))] = draw(json_values)
    elif mutation == "replace" and value:
        value[draw(st.sampled_from(sorted(value)))] = draw(json_values)
    elif mutation == "retype":
        key = draw(st.sampled_from(sorted(SCHEMAS[stream]["properties"])))
        value[key] = draw(json_scalars)
    elif mutation == "whole":
        return stream, draw(json_values)
    return stream, value


@SETTINGS
@given(case=valid_cases)
def test_generated_valid_payloads_are_accepted_by_both(case: tuple[Stream, Any]) -> None:
    stream, value = case
    assert VALIDATORS[stream].is_valid(value), value
    assert fast_accepts(stream, value), value
    if stream is Stream.AVAILABILITY:
        return
    # End to end, with an event time inside the accepted window.
    value = {**value, "ts": NOW - 1}
    result = decode(f"eldercare/hh-1/dev-1/{stream.value}", json.dumps(value).encode(), NOW)
    assert isinstance(result, Decoded), (value, result)


@settings(max_examples=examples(400), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=mutated_cases())
def test_mutated_payloads_get_the_same_verdict(case: tuple[Stream, Any]) -> None:
    stream, value = case
    assert VALIDATORS[stream].is_valid(value) == fast_accepts(stream, value), value


def test_schemas_are_valid_draft_2020_12() -> None:
    for stream, schema in SCHEMAS.items():
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        jsonschema.Draft202012Validator.check_schema(schema)
        for example in schema["examples"]:
            assert VALIDATORS[stream].is_valid(example)
            assert fast_accepts(stream, example)


def test_oversized_accel_rejected_by_both() -> None:
    value = {"rate_hz": 50, "samples": [[0, 0, 1]] * 2001}
    assert not VALIDATORS[Stream.ACCEL].is_valid(value)
    assert not fast_accepts(Stream.ACCEL, value)
