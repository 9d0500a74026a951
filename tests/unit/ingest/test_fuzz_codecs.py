"""Hostile device input, structure-aware: payloads shaped like each vendor's, with wrong
types, odd unicode, deep nesting and huge arrays. Whatever arrives, `decode` answers with
a result (never an exception, never its last-resort "undecodable"), what it decodes can be
written to InfluxDB, and a maximum-size payload costs bounded memory."""

from __future__ import annotations

import json
import math
import tracemalloc
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eldercare.domain import Reading, Stream
from eldercare.influx import point_for_reading
from ingest.codecs import DecodeLimits, decode
from ingest.decoded import Decoded, Ignored, RejectCause, Rejected
from tests.helpers.examples import examples

NOW = 1714528800.0
LIMITS = DecodeLimits()
MAX = LIMITS.max_payload_bytes
SETTINGS = settings(
    max_examples=examples(250), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

# Text a device or an attacker might put anywhere: control characters, escapes, RTL
# marks, CJK, emoji, lone surrogates (legal in JSON escapes, not encodable as UTF-8).
hostile_text = st.text(
    alphabet=st.characters(codec=None, exclude_categories=()), max_size=12
) | st.sampled_from(
    ["", " ", "\x00", "\n", "'\"\\", "\u202e", "卧室", "🚪", "\ud800", "Online", "ON", "open"]
)  # fmt: skip
numbers = (
    st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([0, 1, -1, 100, 101, 1e308, -0.0, 2**63, NOW * 1000, NOW])
)
anything = st.recursive(
    st.none() | st.booleans() | numbers | hostile_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(hostile_text, inner, max_size=4),
    max_leaves=10,
)


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


plausible_times = st.floats(min_value=NOW - 40 * 86400, max_value=NOW + 600)
z2m_values: dict[str, st.SearchStrategy[Any]] = {
    "occupancy": st.booleans(),
    "contact": st.booleans(),
    "presence": st.booleans(),
    "tamper": st.booleans(),
    "battery": numbers,
    "linkquality": numbers,
    "fall_down_status": st.sampled_from(["none", "maybe_fall", "fall", "FALL", ""]),
    "action": st.sampled_from(["emergency", "single", "sos", ""]) | hostile_text,
    "heart_rate": numbers,
    "breath_rate": numbers,
    "last_seen": plausible_times.map(iso) | plausible_times.map(lambda t: t * 1000) | anything,
    "water_leak": st.booleans(),
    "state": st.sampled_from(["ON", "OFF"]) | hostile_text,
}


@st.composite
def z2m_messages(draw: st.DrawFn) -> tuple[str, bytes]:
    name = draw(st.sampled_from(["401/bed", "门", "a b/c", "x" * 200]) | hostile_text)
    if draw(st.booleans()):
        body: Any = draw(
            st.sampled_from(["online", "offline"]).map(lambda s: {"state": s})
            | st.sampled_from(["online", "offline"])
            | anything
        )
        if isinstance(body, str):  # raw bytes as a device would send them, surrogates too
            raw = body.encode("utf-8", "surrogatepass")
        else:
            raw = json.dumps(body).encode()
        return f"zigbee2mqtt/{name}/availability", raw
    keys = draw(st.lists(st.sampled_from(sorted(z2m_values)), max_size=6, unique=True))
    payload = {k: draw(z2m_values[k] if draw(st.integers(0, 4)) else anything) for k in keys}
    payload.update(draw(st.dictionaries(hostile_text, anything, max_size=2)))
    return f"zigbee2mqtt/{name}", json.dumps(payload).encode()


@st.composite
def shelly_messages(draw: st.DrawFn) -> tuple[str, bytes]:
    device = draw(st.sampled_from(["shellydw-B88D99", "shellymotionsensor-60A4"]) | hostile_text)
    suffix, body = draw(
        st.sampled_from(["sensor/state", "sensor/battery", "sensor/tilt", "sensor/vibration",
                         "online", "input/0", "relay/0", "status", "sensor/lux"])
        .flatmap(lambda s: st.tuples(st.just(s), st.one_of(
            st.sampled_from(["open", "close", "true", "false", "0", "1", "87", "-5", "1e999"]),
            hostile_text,
            st.fixed_dictionaries(
                {"motion": st.booleans(), "bat": st.fixed_dictionaries({"value": numbers}),
                 "unixtime": plausible_times.map(int), "vibration": anything}
            ).map(json.dumps),
            anything.map(json.dumps),
        )))
    )  # fmt: skip
    return f"shellies/{device}/{suffix}", body.encode("utf-8", "surrogatepass")


@st.composite
def tasmota_messages(draw: st.DrawFn) -> tuple[str, bytes]:
    topic = draw(st.sampled_from(["sonoff2", "tasmota_A1"]) | hostile_text)
    kind = draw(
        st.sampled_from(["tele/{}/SENSOR", "tele/{}/STATE", "tele/{}/LWT", "stat/{}/RESULT"])
    )
    if kind.endswith("LWT"):
        body = draw(st.sampled_from(["Online", "Offline"]) | hostile_text)
        return kind.format(topic), body.encode("utf-8", "surrogatepass")
    doc = draw(
        st.fixed_dictionaries(
            {"Time": plausible_times.map(lambda t: iso(t)[:19]) | anything},
            optional={
                "Switch1": st.sampled_from(["ON", "OFF"])
                | st.fixed_dictionaries({"Action": st.sampled_from(["ON", "OFF"]) | anything})
                | anything,
                "AM2301": st.fixed_dictionaries({"Temperature": numbers, "Humidity": numbers}),
                "Wifi": st.fixed_dictionaries({"RSSI": numbers}),
            },
        )
    )
    return kind.format(topic), json.dumps(doc).encode()


def writable(result: object) -> None:
    """The properties every answer of `decode` must have."""
    assert isinstance(result, Decoded | Ignored | Rejected)
    if isinstance(result, Rejected):
        assert not result.detail.startswith("undecodable"), result
        result.detail.encode("utf-8")  # logged and quarantined as text
        return
    if isinstance(result, Ignored):
        return
    for raw in result.readings:
        assert isinstance(raw.stream, Stream)
        assert math.isfinite(raw.ts)
        if raw.stream is Stream.HEARTBEAT and not raw.fields:
            continue  # a known gap, tracked by test_a_heartbeat_without_seq_is_storable
        reading = Reading(
            "site-1", "device-1", raw.stream, raw.ts, raw.fields, source=result.source
        )
        point_for_reading(reading).encode("utf-8")


@SETTINGS
@given(message=z2m_messages())
def test_zigbee2mqtt_shaped_input(message: tuple[str, bytes]) -> None:
    writable(decode(*message, NOW))


@SETTINGS
@given(message=shelly_messages())
def test_shelly_shaped_input(message: tuple[str, bytes]) -> None:
    writable(decode(*message, NOW))


@SETTINGS
@given(message=tasmota_messages())
def test_tasmota_shaped_input(message: tuple[str, bytes]) -> None:
    writable(decode(*message, NOW))


native_streams = st.sampled_from([s.value for s in Stream])


@SETTINGS
@given(
    stream=native_streams,
    payload=st.fixed_dictionaries(
        {"ts": plausible_times | anything},
        optional={
            "seq": numbers,
            "status": st.sampled_from(["none", "maybe_fall", "fall"]) | hostile_text,
            "motion": st.booleans() | anything,
            "percent": numbers,
            "rate_hz": numbers,
            "samples": st.lists(st.lists(numbers | anything, max_size=4), max_size=30),
        },
    ),
)
def test_native_shaped_input(stream: str, payload: dict[str, Any]) -> None:
    writable(decode(f"eldercare/hh-1/dev-1/{stream}", json.dumps(payload).encode(), NOW))


# ---- worst cases at the size limit -------------------------------------------------------

TOPICS = [
    "eldercare/hh-1/dev-1/accel",
    "eldercare/hh-1/dev-1/motion",
    "zigbee2mqtt/401/bed",
    "shellies/shellydw-1/status",
    "tele/sonoff2/SENSOR",
]


def _fill(head: str, unit: str, tail: str) -> bytes:
    """head + unit repeated + tail, exactly `MAX` bytes or just under."""
    room = MAX - len(head.encode()) - len(tail.encode())
    count = room // len(unit.encode())
    return (head + unit * count + tail).encode()


WORST = {
    "deep arrays": ("[" * (MAX // 2) + "]" * (MAX // 2)).encode(),
    "deep objects": _fill("", '{"a":', "1") + b"}" * 0,
    "huge flat array": _fill('{"ts":1714528800,"samples":[', "0,", "0]}"),
    "huge sample array": _fill(
        '{"ts":1714528800,"rate_hz":50,"samples":[', "[0,0,1],", "[0,0,1]]}"
    ),
    "many keys": b"{" + b",".join(b'"k%d":0' % i for i in range(MAX // 12)) + b"}",
    "long escaped string": _fill('{"action":"', "\\u4e2d", '"}'),
    "many big numbers": _fill("[", "1" * 4000 + ",", "1]"),
    "many floats": _fill("[", "1.7976931348623157e308,", "0]"),
}


@pytest.mark.parametrize("shape", list(WORST))
def test_a_maximum_size_payload_is_answered_in_bounded_memory(shape: str) -> None:
    payload = WORST[shape]
    assert len(payload) <= MAX
    for topic in TOPICS:
        tracemalloc.start()
        try:
            result = decode(topic, payload, NOW)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        writable(result)
        # 64 KiB of JSON may become a few MiB of Python objects; never more.
        assert peak < 16 * 2**20, f"{shape} on {topic}: peak {peak / 2**20:.1f} MiB"


def test_one_byte_over_the_limit_is_refused_unread() -> None:
    payload = b" " * (MAX + 1)
    for topic in TOPICS:
        result = decode(topic, payload, NOW)
        assert isinstance(result, Rejected) and result.cause is RejectCause.OVERSIZE


# Found by fuzzing: a heartbeat without `seq` (every Tasmota STATE, a native {"ts": ...})
# used to decode to a reading with no fields, which InfluxDB cannot store.
@pytest.mark.parametrize(
    "topic,payload",
    [
        ("eldercare/hh-1/dev-1/heartbeat", b'{"ts": 1714528800}'),
        ("tele/sonoff2/STATE", b'{"Time": "2024-05-01T02:00:00"}'),
    ],
)
def test_a_heartbeat_without_seq_is_storable(topic: str, payload: bytes) -> None:
    result = decode(topic, payload, NOW)
    assert isinstance(result, Decoded)
    (raw,) = result.readings
    point_for_reading(Reading("site-1", "device-1", raw.stream, raw.ts, raw.fields))
