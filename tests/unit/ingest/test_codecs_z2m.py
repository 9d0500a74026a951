"""zigbee2mqtt payloads as z2m publishes them.

Fixture sources: zigbee2mqtt docs, "MQTT Topics and Messages" (state examples such
as `{"occupancy": true}` and `{"temperature": 27.34, "humidity": 44.72}`, friendly
names with `/` like `kitchen/floor_light`) and "Device availability"
(`zigbee2mqtt/[FRIENDLY_NAME]/availability`, `{"state":"online"}` since 2.0, plain
`online`/`offline` before); the `advanced.last_seen` setting (ISO_8601,
ISO_8601_local, epoch); the device pages' exposes (`contact` true = closed,
`fall_down_status`, `action: emergency`, `heart_rate`/`breath_rate`).
"""

from __future__ import annotations

import json

import pytest

from eldercare.domain import Stream
from ingest.codecs import DecodeLimits, decode
from ingest.decoded import Decoded, Ignored, RejectCause, Rejected, VendorIdentity

NOW = 1714528800.0  # 2024-05-01T02:00:00Z


def z2m(name: str, body: object, received_at: float = NOW) -> Decoded | Ignored | Rejected:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    return decode(f"zigbee2mqtt/{name}", payload, received_at)


def decoded(name: str, body: object, received_at: float = NOW) -> Decoded:
    result = z2m(name, body, received_at)
    assert isinstance(result, Decoded), result
    return result


def by_stream(result: Decoded) -> dict[Stream, dict[str, object]]:
    return {r.stream: dict(r.fields) for r in result.readings}


def test_pir_occupancy_from_docs() -> None:
    result = decoded("0x00158d0001a9ec71", {"occupancy": True})
    assert result.identity == VendorIdentity(("z2m", "zigbee2mqtt", "0x00158d0001a9ec71"))
    assert result.source == "z2m"
    assert by_stream(result) == {Stream.OCCUPANCY: {"occupied": True}}
    assert result.readings[0].ts == NOW
    assert result.event_time_from_payload is False


def test_friendly_name_with_slashes_is_the_identity() -> None:
    result = decoded("kitchen/floor_light", {"occupancy": False})
    assert result.identity == VendorIdentity(("z2m", "zigbee2mqtt", "kitchen/floor_light"))
    result = decoded("hh-401/bedroom/bed", {"occupancy": True})
    assert isinstance(result.identity, VendorIdentity)
    assert result.identity.key == ("z2m", "zigbee2mqtt", "hh-401/bedroom/bed")


def test_one_message_several_readings() -> None:
    body = {"occupancy": True, "battery": 97, "linkquality": 120, "voltage": 3005}
    result = decoded("401/bed", body)
    assert by_stream(result) == {
        Stream.OCCUPANCY: {"occupied": True},
        Stream.BATTERY: {"percent": 97.0},
        Stream.LINK: {"linkquality": 120},
    }
    assert {r.ts for r in result.readings} == {NOW}


@pytest.mark.parametrize(("contact", "is_open"), [(True, False), (False, True)])
def test_contact_true_means_closed(contact: bool, is_open: bool) -> None:
    body = {"battery": 100, "contact": contact, "linkquality": 87, "voltage": 3025}
    assert by_stream(decoded("front-door", body))[Stream.CONTACT] == {"open": is_open}


@pytest.mark.parametrize(
    "last_seen",
    [
        "2024-05-01T02:00:00.000Z",  # ISO_8601 (UTC)
        "2024-05-01T10:00:00+08:00",  # ISO_8601_local
        "2024-05-01T10:00:00.000+08:00",
        1714528800000,  # epoch (milliseconds)
    ],
)
def test_last_seen_forms(last_seen: object) -> None:
    result = decoded("pir", {"occupancy": True, "last_seen": last_seen}, received_at=NOW + 3)
    assert result.readings[0].ts == NOW
    assert result.event_time_from_payload is True


def test_last_seen_without_offset_falls_back_to_receive_time() -> None:
    result = decoded("pir", {"occupancy": True, "last_seen": "2024-05-01T10:00:00"})
    assert result.readings[0].ts == NOW
    assert result.event_time_from_payload is False


@pytest.mark.parametrize(
    ("last_seen", "cause"),
    [
        ("last tuesday", RejectCause.SCHEMA),
        (True, RejectCause.SCHEMA),
        ([2024], RejectCause.SCHEMA),
        ((NOW + 3600) * 1000, RejectCause.FUTURE_TIMESTAMP),
        ("2023-01-01T00:00:00Z", RejectCause.ANCIENT_TIMESTAMP),
    ],
)
def test_bad_last_seen(last_seen: object, cause: RejectCause) -> None:
    result = z2m("pir", {"occupancy": True, "last_seen": last_seen})
    assert isinstance(result, Rejected) and result.cause is cause
    if cause is RejectCause.SCHEMA:
        assert "last_seen" in result.detail


@pytest.mark.parametrize(
    ("payload", "online"),
    [
        (b'{"state":"online"}', True),  # z2m >= 2.0
        (b'{"state":"offline"}', False),
        (b"online", True),  # legacy
        (b"offline", False),
    ],
)
def test_availability_both_forms(payload: bytes, online: bool) -> None:
    result = decode("zigbee2mqtt/hh-401/bedroom/bed/availability", payload, NOW)
    assert isinstance(result, Decoded)
    assert isinstance(result.identity, VendorIdentity)
    assert result.identity.key == ("z2m", "zigbee2mqtt", "hh-401/bedroom/bed")
    assert by_stream(result) == {Stream.AVAILABILITY: {"online": online}}
    assert result.readings[0].ts == NOW
    assert result.event_time_from_payload is False


def test_bad_availability() -> None:
    for payload in (b"maybe", b'{"state":"up"}', b'{"state":true}', b"{oops"):
        result = decode("zigbee2mqtt/bed/availability", payload, NOW)
        assert isinstance(result, Rejected), payload


@pytest.mark.parametrize(
    "topic",
    [
        "zigbee2mqtt/bridge/state",
        "zigbee2mqtt/bridge/logging",
        "zigbee2mqtt/bridge/devices",
        "zigbee2mqtt/bridge",
        "zigbee2mqtt/kitchen/light/set",
        "zigbee2mqtt/kitchen/light/get",
        "zigbee2mqtt/kitchen/light/set/state",
    ],
)
def test_bridge_and_command_topics_are_ignored(topic: str) -> None:
    assert isinstance(decode(topic, b'{"state":"ON"}', NOW), Ignored)


def test_fall_radar_statuses() -> None:
    for status in ("none", "maybe_fall", "fall"):
        body = {"fall_down_status": status, "presence": True}
        assert by_stream(decoded("radar", body)) == {
            Stream.FALL: {"status": status},
            Stream.PRESENCE: {"present": True},
        }
    for bad in ("falling", 2, True):
        result = z2m("radar", {"fall_down_status": bad})
        assert isinstance(result, Rejected) and "fall_down_status" in result.detail


def test_emergency_action_is_sos_and_other_actions_are_passed_on_unjudged() -> None:
    assert by_stream(decoded("sos", {"action": "emergency", "battery": 90})) == {
        Stream.SOS: {"pressed": True},
        Stream.BATTERY: {"percent": 90.0},
    }
    # What `double` means (a service request, nothing) is the registry's to say.
    assert by_stream(decoded("switch", {"action": "double", "battery": 50})) == {
        Stream.ACTION: {"action": "double"},
        Stream.BATTERY: {"percent": 50.0},
    }
    result = z2m("switch", {"action": ""})  # z2m clearing the last action
    assert isinstance(result, Ignored)


def test_an_emergency_in_test_mode_is_the_buttons_test_press_not_an_sos() -> None:
    result = decoded("sos", {"action": "emergency", "test": True, "battery": 90})
    assert by_stream(result) == {
        Stream.DEVICE_TEST: {"passed": True},
        Stream.BATTERY: {"percent": 90.0},
    }
    assert Stream.SOS not in by_stream(result)
    # Test mode off: the press is the emergency call it always was.
    assert by_stream(decoded("sos", {"action": "emergency", "test": False})) == {
        Stream.SOS: {"pressed": True}
    }


@pytest.mark.parametrize(
    ("state", "passed"),
    [("check_success", True), ("check_failure", False), ("radar_fault", False)],
)
def test_tuya_self_test_result_is_a_device_test(state: str, passed: bool) -> None:
    assert by_stream(decoded("radar", {"self_test": state, "presence": True})) == {
        Stream.DEVICE_TEST: {"passed": passed},
        Stream.PRESENCE: {"present": True},
    }


def test_tuya_self_test_still_checking_is_no_result_and_junk_is_refused() -> None:
    assert isinstance(z2m("radar", {"self_test": "checking"}), Ignored)
    result = z2m("radar", {"self_test": "ok"})
    assert isinstance(result, Rejected) and "self_test" in result.detail


def test_vital_signs_radar() -> None:
    body = {"presence": True, "heart_rate": 62, "breath_rate": 15}
    assert by_stream(decoded("vitals", body))[Stream.VITALS] == {
        "heart_rate": 62.0,
        "breathing_rate": 15.0,
    }


def test_tamper() -> None:
    assert by_stream(decoded("pir", {"tamper": True}))[Stream.TAMPER] == {"tamper": True}


def test_only_unknown_keys_is_ignored_with_a_count() -> None:
    result = z2m("0x00158d000405cfee", {"pressure": 1004, "voltage": 2985})  # no readings here
    assert isinstance(result, Ignored)
    assert "2 unknown" in result.reason
    assert isinstance(z2m("x", {}), Ignored)


def test_null_values_are_not_yet_known() -> None:
    result = z2m("radar", {"presence": None, "fall_down_status": None, "battery": None})
    assert isinstance(result, Ignored)
    assert by_stream(decoded("pir", {"occupancy": None, "battery": 70})) == {
        Stream.BATTERY: {"percent": 70.0}
    }


@pytest.mark.parametrize(
    ("body", "key", "cause"),
    [
        ({"occupancy": "true"}, "occupancy", RejectCause.SCHEMA),
        ({"contact": 1}, "contact", RejectCause.SCHEMA),
        ({"battery": 150}, "battery", RejectCause.SCHEMA),
        ({"battery": True}, "battery", RejectCause.SCHEMA),
        ({"linkquality": "good"}, "linkquality", RejectCause.SCHEMA),
        ({"linkquality": 300}, "linkquality", RejectCause.SCHEMA),
        ({"heart_rate": -1}, "heart_rate", RejectCause.SCHEMA),
        ({"action": 3}, "action", RejectCause.SCHEMA),
    ],
)
def test_known_keys_with_wrong_types(body: dict[str, object], key: str, cause: RejectCause) -> None:
    result = z2m("dev", body)
    assert isinstance(result, Rejected) and result.cause is cause
    assert result.detail.startswith(key)


def test_bad_payloads() -> None:
    cases = {
        b"\xc3\x28": RejectCause.BAD_UTF8,
        b"{": RejectCause.BAD_JSON,
        b"[1,2]": RejectCause.SCHEMA,
        b'"online"': RejectCause.SCHEMA,
        b'{"battery": NaN}': RejectCause.NOT_FINITE,
        b'{"battery": 1e400}': RejectCause.NOT_FINITE,
    }
    for payload, cause in cases.items():
        result = z2m("dev", payload)
        assert isinstance(result, Rejected) and result.cause is cause, payload


def test_bad_friendly_names() -> None:
    for topic in ("zigbee2mqtt/", "zigbee2mqtt/a//b", "zigbee2mqtt/a/"):
        result = decode(topic, b'{"occupancy": true}', NOW)
        assert isinstance(result, Rejected) and result.cause is RejectCause.BAD_TOPIC, topic


def test_other_base_topics() -> None:
    limits = DecodeLimits(z2m_base_topics=("zigbee2mqtt", "site7/z2m"))
    result = decode("site7/z2m/bed", b'{"occupancy": true}', NOW, limits=limits)
    assert isinstance(result, Decoded)
    assert isinstance(result.identity, VendorIdentity)
    assert result.identity.key == ("z2m", "site7/z2m", "bed")
    unknown = decode("zigbee2mqttx/bed", b'{"occupancy": true}', NOW)
    assert isinstance(unknown, Rejected) and unknown.cause is RejectCause.UNSUPPORTED
