"""The native codec: eldercare/<site_id>/<device_id>/<stream> JSON."""

from __future__ import annotations

import json

import pytest

from eldercare.domain import Stream
from ingest.codecs import DecodeLimits, decode, native_schema
from ingest.decoded import Decoded, NativeIdentity, RejectCause, Rejected

NOW = 1714528800.0  # 2024-05-01T02:00:00Z = 10:00 in Asia/Shanghai


def topic(stream: str, site: str = "hh-3-2-401", device: str = "dev-1") -> str:
    return f"eldercare/{site}/{device}/{stream}"


def ok(stream: str, body: object, received_at: float = NOW, **kw: object) -> Decoded:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    result = decode(topic(stream, **kw), payload, received_at)  # type: ignore[arg-type]
    assert isinstance(result, Decoded), result
    return result


def rejected(stream_topic: str, payload: bytes, received_at: float = NOW) -> Rejected:
    result = decode(stream_topic, payload, received_at)
    assert isinstance(result, Rejected), result
    return result


@pytest.mark.parametrize("stream", [s for s in Stream])
def test_every_schema_example_decodes(stream: Stream) -> None:
    for example in native_schema(stream)["examples"]:
        result = ok(stream.value, example, received_at=NOW + 5)
        assert result.identity == NativeIdentity("hh-3-2-401", "dev-1")
        assert result.source == "native"
        [reading] = result.readings
        assert reading.stream is stream


def test_motion_with_numeric_ts_and_seq() -> None:
    result = ok("motion", {"ts": NOW - 2.5, "motion": True, "seq": 41})
    [reading] = result.readings
    assert reading.ts == NOW - 2.5
    assert dict(reading.fields) == {"motion": True}
    assert result.event_time_from_payload is True
    assert result.extra == {"seq": 41}


def test_contact_iso_ts_with_offset() -> None:
    result = ok("contact", {"ts": "2024-05-01T10:00:00+08:00", "open": False})
    [reading] = result.readings
    assert reading.ts == NOW
    assert reading.fields == {"open": False}


def test_iso_ts_with_z_and_fraction() -> None:
    [reading] = ok("presence", {"ts": "2024-05-01T01:59:59.250Z", "present": True}).readings
    assert reading.ts == NOW - 0.75


def test_missing_ts_uses_receive_time() -> None:
    result = ok("battery", {"percent": 55})
    assert result.readings[0].ts == NOW
    assert result.readings[0].fields == {"percent": 55.0}
    assert result.event_time_from_payload is False


def test_heartbeat_keeps_seq_as_field() -> None:
    result = ok("heartbeat", {"seq": 7})
    assert result.readings[0].fields == {"seq": 7}
    assert ok("heartbeat", {}).readings[0].fields == {}


def test_integral_float_seq_is_an_integer() -> None:
    assert ok("motion", {"motion": False, "seq": 3.0}).extra == {"seq": 3}


def test_fall_statuses() -> None:
    for status in ("none", "maybe_fall", "fall"):
        assert ok("fall", {"status": status}).readings[0].fields == {"status": status}
    assert rejected(topic("fall"), b'{"status":"fallen"}').cause is RejectCause.SCHEMA


def test_vitals_either_rate() -> None:
    assert ok("vitals", {"heart_rate": 61}).readings[0].fields == {"heart_rate": 61.0}
    assert ok("vitals", {"breathing_rate": 14.5}).readings[0].fields == {"breathing_rate": 14.5}
    r = rejected(topic("vitals"), b'{"ts": 1714528800}')
    assert r.cause is RejectCause.SCHEMA and "heart_rate" in r.detail


def test_accel_batch_to_axis_tuples() -> None:
    body = {"ts": NOW, "rate_hz": 50, "samples": [[0.01, -0.02, 0.98], [0, 1, 2]]}
    [reading] = ok("accel", body).readings
    assert reading.fields == {
        "rate_hz": 50.0,
        "x": (0.01, 0.0),
        "y": (-0.02, 1.0),
        "z": (0.98, 2.0),
    }


def test_accel_in_milli_g() -> None:
    body = {"rate_hz": 25, "unit": "mg", "samples": [[10, -20, 1000]]}
    [reading] = ok("accel", body).readings
    assert reading.fields["z"] == (1.0,)
    assert reading.fields["x"] == (0.01,)


def test_accel_too_many_samples_is_oversize() -> None:
    body = {"rate_hz": 50, "samples": [[0, 0, 1]] * 2001}
    r = rejected(topic("accel"), json.dumps(body).encode())
    assert r.cause is RejectCause.OVERSIZE and "samples" in r.detail
    ok("accel", {"rate_hz": 50, "samples": [[0, 0, 1]] * 2000})


def test_accel_sample_cap_follows_limits() -> None:
    body = json.dumps({"rate_hz": 50, "samples": [[0, 0, 1]] * 11}).encode()
    r = decode(topic("accel"), body, NOW, limits=DecodeLimits(max_accel_samples=10))
    assert isinstance(r, Rejected) and r.cause is RejectCause.OVERSIZE


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ({"rate_hz": 50, "samples": []}, "samples"),
        ({"rate_hz": 50, "samples": [[0, 1]]}, "samples[0]"),
        ({"rate_hz": 50, "samples": [[0, 1, "2"]]}, "samples[0][2]"),
        ({"rate_hz": 0, "samples": [[0, 1, 2]]}, "rate_hz"),
        ({"rate_hz": 50, "unit": "G", "samples": [[0, 1, 2]]}, "unit"),
        ({"samples": [[0, 1, 2]]}, "rate_hz"),
    ],
)
def test_accel_bad_shapes(body: dict[str, object], key: str) -> None:
    r = rejected(topic("accel"), json.dumps(body).encode())
    assert r.cause is RejectCause.SCHEMA
    assert r.detail.startswith(key)


@pytest.mark.parametrize("payload", [b"online", b"online\n", b' {"state": "online"} '])
def test_availability_online(payload: bytes) -> None:
    result = decode(topic("availability"), payload, NOW)
    assert isinstance(result, Decoded)
    assert result.readings[0].fields == {"online": True}
    assert result.readings[0].ts == NOW


def test_availability_offline_and_bad() -> None:
    result = decode(topic("availability"), b"offline", NOW)
    assert isinstance(result, Decoded) and result.readings[0].fields == {"online": False}
    assert rejected(topic("availability"), b"gone").cause is RejectCause.SCHEMA
    assert rejected(topic("availability"), b'{"state": "up"}').cause is RejectCause.SCHEMA
    assert rejected(topic("availability"), b'{"state": "online", "x": 1}').cause is (
        RejectCause.SCHEMA
    )


@pytest.mark.parametrize(
    ("payload", "cause", "in_detail"),
    [
        (b"\xff\xfe{}", RejectCause.BAD_UTF8, "byte 0"),
        (b'{"motion": true', RejectCause.BAD_JSON, ""),
        (b"", RejectCause.BAD_JSON, ""),
        (b'["motion", true]', RejectCause.SCHEMA, "object"),
        (b"true", RejectCause.SCHEMA, "object"),
        (b'{"motion": "true"}', RejectCause.SCHEMA, "motion"),
        (b'{"motion": 1}', RejectCause.SCHEMA, "motion"),
        (b'{"motion": true, "colour": "red"}', RejectCause.SCHEMA, "colour"),
        (b"{}", RejectCause.SCHEMA, "motion"),
        (b'{"motion": true, "ts": NaN}', RejectCause.NOT_FINITE, "NaN"),
        (b'{"motion": true, "ts": -Infinity}', RejectCause.NOT_FINITE, "Infinity"),
        (b'{"motion": true, "ts": true}', RejectCause.SCHEMA, "ts"),
        (b'{"motion": true, "ts": "2024-05-01T10:00:00"}', RejectCause.SCHEMA, "offset"),
        (b'{"motion": true, "ts": "2024-02-30T10:00:00Z"}', RejectCause.SCHEMA, "ts"),
        (b'{"motion": true, "ts": "yesterday"}', RejectCause.SCHEMA, "ts"),
        (b'{"motion": true, "seq": -1}', RejectCause.SCHEMA, "seq"),
        (b'{"motion": true, "seq": 1.5}', RejectCause.SCHEMA, "seq"),
        (b'{"motion": true, "seq": "1"}', RejectCause.SCHEMA, "seq"),
    ],
)
def test_bad_motion_payloads(payload: bytes, cause: RejectCause, in_detail: str) -> None:
    r = rejected(topic("motion"), payload)
    assert r.cause is cause, r
    assert in_detail in r.detail


@pytest.mark.parametrize(
    ("body", "cause"),
    [
        (b'{"percent": true}', RejectCause.SCHEMA),  # a boolean is not a number
        (b'{"percent": 101}', RejectCause.SCHEMA),
        (b'{"percent": -0.5}', RejectCause.SCHEMA),
        (b'{"percent": 1e999}', RejectCause.NOT_FINITE),  # json turns it into inf
        (b'{"percent": 1' + b"0" * 400 + b"}", RejectCause.SCHEMA),  # a huge integer
        (b'{"percent": 1' + b"0" * 5000 + b"}", RejectCause.BAD_JSON),  # beyond int parsing
        (b'{"percent": Infinity}', RejectCause.NOT_FINITE),
    ],
)
def test_bad_numbers(body: bytes, cause: RejectCause) -> None:
    r = rejected(topic("battery"), body)
    assert r.cause is cause, r


def test_link_quality_integer_range() -> None:
    assert ok("link", {"linkquality": 255}).readings[0].fields == {"linkquality": 255}
    assert rejected(topic("link"), b'{"linkquality": 256}').cause is RejectCause.SCHEMA
    assert rejected(topic("link"), b'{"linkquality": 12.5}').cause is RejectCause.SCHEMA


def test_momentary_events_must_be_true() -> None:
    assert ok("sos", {"pressed": True}).readings[0].fields == {"pressed": True}
    assert rejected(topic("sos"), b'{"pressed": false}').cause is RejectCause.SCHEMA
    assert rejected(topic("flush"), b'{"flushed": 1}').cause is RejectCause.SCHEMA


def test_oversize_checked_before_parsing() -> None:
    payload = b"\xff" * 65537  # not even UTF-8: size is what is reported
    assert rejected(topic("motion"), payload).cause is RejectCause.OVERSIZE
    small = DecodeLimits(max_payload_bytes=10)
    r = decode(topic("motion"), b'{"motion": true}', NOW, limits=small)
    assert isinstance(r, Rejected) and r.cause is RejectCause.OVERSIZE


def test_deep_nesting_is_rejected() -> None:
    assert rejected(topic("motion"), b"[" * 30000 + b"]" * 30000).cause is RejectCause.SCHEMA
    nested = b'{"motion": true, "x": ' + b"[" * 3000 + b"]" * 3000 + b"}"
    assert rejected(topic("motion"), nested).cause is RejectCause.SCHEMA


def test_future_and_ancient_timestamps() -> None:
    future = json.dumps({"ts": NOW + 301, "motion": True}).encode()
    assert rejected(topic("motion"), future).cause is RejectCause.FUTURE_TIMESTAMP
    ok("motion", {"ts": NOW + 299, "motion": True})
    ancient = json.dumps({"ts": NOW - 31 * 86400, "motion": True}).encode()
    assert rejected(topic("motion"), ancient).cause is RejectCause.ANCIENT_TIMESTAMP
    # Milliseconds sent as seconds lie past the last ISO 8601 year: a shape error.
    millis = json.dumps({"ts": NOW * 1000, "motion": True}).encode()
    r = rejected(topic("motion"), millis)
    assert r.cause is RejectCause.SCHEMA and r.detail.startswith("ts:")
    tight = DecodeLimits(max_future_s=1.0, max_age_s=60.0)
    result = decode(
        topic("motion"), json.dumps({"ts": NOW - 61, "motion": True}).encode(), NOW, limits=tight
    )
    assert isinstance(result, Rejected) and result.cause is RejectCause.ANCIENT_TIMESTAMP


@pytest.mark.parametrize(
    "bad_topic",
    [
        "eldercare/hh-1/dev-1",
        "eldercare/hh-1/dev-1/motion/extra",
        "eldercare//dev-1/motion",
        "eldercare/hh 1/dev-1/motion",
        "eldercare/hh-1/-dev/motion",
        "eldercare/hh-1/dev-1\n/motion",
        "eldercare/hh-1/dev-1/pressure",
        "eldercare/hh-1/+/motion",
        "eldercare/hh-1/#",
        "eldercare/" + "s" * 65 + "/dev-1/motion",
        "eldercare/hh-1/dev-1/Motion",
    ],
)
def test_bad_native_topics(bad_topic: str) -> None:
    r = rejected(bad_topic, b'{"motion": true}')
    assert r.cause is RejectCause.BAD_TOPIC


def test_unknown_root_is_unsupported() -> None:
    assert rejected("home/kitchen/temp", b"21.5").cause is RejectCause.UNSUPPORTED
    assert rejected("", b"x").cause is RejectCause.BAD_TOPIC
    assert rejected("a/+/b", b"x").cause is RejectCause.BAD_TOPIC


def test_wrong_argument_types_do_not_raise() -> None:
    for name, payload in [(None, b"{}"), ("eldercare/hh-1/d-1/motion", None), (b"t", b"")]:
        result = decode(name, payload, NOW)  # type: ignore[arg-type]
        assert isinstance(result, Rejected)
    memory = decode(topic("motion"), memoryview(b'{"motion": true}'), NOW)  # type: ignore[arg-type]
    assert isinstance(memory, Decoded)


def test_sos_test_press_is_a_device_test_never_an_sos() -> None:
    [reading] = ok("sos", {"ts": NOW, "pressed": True, "test": True}).readings
    assert (reading.stream, dict(reading.fields)) == (Stream.DEVICE_TEST, {"passed": True})
    [reading] = ok("sos", {"ts": NOW, "pressed": True, "test": False}).readings
    assert (reading.stream, dict(reading.fields)) == (Stream.SOS, {"pressed": True})
    assert rejected(topic("sos"), b'{"pressed": true, "test": "yes"}').cause is RejectCause.SCHEMA


def test_self_check_action_and_service_request_streams() -> None:
    [reading] = ok("device_test", {"ts": NOW, "passed": False}).readings
    assert (reading.stream, dict(reading.fields)) == (Stream.DEVICE_TEST, {"passed": False})
    [reading] = ok("action", {"action": "need_help"}).readings
    assert (reading.stream, dict(reading.fields)) == (Stream.ACTION, {"action": "need_help"})
    [reading] = ok("service_request", {"kind": "meal"}).readings
    assert dict(reading.fields) == {"kind": "meal"}
    assert rejected(topic("action"), b'{"action": "no spaces"}').cause is RejectCause.SCHEMA
    assert rejected(topic("service_request"), b'{"kind": "pizza"}').cause is RejectCause.SCHEMA
