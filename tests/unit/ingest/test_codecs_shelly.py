"""Shelly Gen1 MQTT payloads.

Fixture sources:
- bieniu/ha-shellies-discovery, data/shelly-door-window.txt (a Door/Window on
  firmware v1.5.2): `shellies/shellydw-B88D99/sensor/state open`, `.../sensor/lux 46`,
  `.../sensor/battery 94`;
- bieniu/ha-shellies-discovery issue 41: `sensor/vibration` is 0 / 1 on the DW;
- a Go home-automation repository's comment quoting a Shelly Motion:
  `shellies/shellymotionsensor-60A423BEB736/status
  {"motion":true,"timestamp":1757604717,"active":true,"vibration":false,"lux":70,"bat":67}`;
- bieniu/ha-shellies-discovery, data/shelly-motion.txt (first Motion firmware
  2020110614): `.../online true` and
  `{"motion":true,"timestamp":4543323,"active":false,"vibration":false,"lux":50,"bat":457}`;
- Home Assistant MQTT config examples: availability `shellies/<id>/online`,
  payload_available `true`, payload_not_available `false`.
"""

from __future__ import annotations

import json

import pytest

from eldercare.domain import Stream
from ingest.codecs import decode
from ingest.decoded import Decoded, Ignored, RejectCause, Rejected, VendorIdentity

NOW = 1757604720.0


def shelly(topic: str, payload: bytes) -> Decoded | Ignored | Rejected:
    return decode(topic, payload, NOW)


def fields(topic: str, payload: bytes) -> dict[Stream, dict[str, object]]:
    result = shelly(topic, payload)
    assert isinstance(result, Decoded), result
    assert result.source == "shelly"
    assert result.event_time_from_payload is False
    assert {r.ts for r in result.readings} == {NOW}
    return {r.stream: dict(r.fields) for r in result.readings}


def test_door_window_state() -> None:
    result = shelly("shellies/shellydw-B88D99/sensor/state", b"open")
    assert isinstance(result, Decoded)
    assert result.identity == VendorIdentity(("shelly", "shellydw-B88D99"))
    assert fields("shellies/shellydw-B88D99/sensor/state", b"open") == {
        Stream.CONTACT: {"open": True}
    }
    assert fields("shellies/shellydw2-483FDA825476/sensor/state", b"close") == {
        Stream.CONTACT: {"open": False}
    }


def test_door_window_battery_and_ignored_lux() -> None:
    assert fields("shellies/shellydw-B88D99/sensor/battery", b"94") == {
        Stream.BATTERY: {"percent": 94.0}
    }
    assert isinstance(shelly("shellies/shellydw-B88D99/sensor/lux", b"46"), Ignored)
    assert isinstance(shelly("shellies/shellydw-B88D99/sensor/tilt", b"0"), Ignored)


def test_vibration_is_tamper() -> None:
    assert fields("shellies/shellydw2-483FDA825476/sensor/vibration", b"1") == {
        Stream.TAMPER: {"tamper": True}
    }
    assert fields("shellies/shellydw2-483FDA825476/sensor/vibration", b"0") == {
        Stream.TAMPER: {"tamper": False}
    }


def test_motion_status_json() -> None:
    payload = (
        b'{"motion":true,"timestamp":1757604717,"active":true,"vibration":false,"lux":70,"bat":67}'
    )
    assert fields("shellies/shellymotionsensor-60A423BEB736/status", payload) == {
        Stream.MOTION: {"motion": True},
        Stream.TAMPER: {"tamper": False},
        Stream.BATTERY: {"percent": 67.0},
    }


def test_first_motion_firmware_battery_out_of_range_is_rejected() -> None:
    payload = (
        b'{"motion":true,"timestamp":4543323,"active":false,"vibration":false,"lux":50,"bat":457}'
    )
    result = shelly("shellies/shellymotionsensor-588E81615AC2/status", payload)
    assert isinstance(result, Rejected) and result.cause is RejectCause.SCHEMA
    assert result.detail.startswith("bat")


def test_motion_plain_topic_and_input() -> None:
    assert fields("shellies/shellymotionsensor-60A423BEB736/sensor/motion", b"true") == {
        Stream.MOTION: {"motion": True}
    }
    assert fields("shellies/shelly1-40F520169316/input/0", b"0") == {
        Stream.MOTION: {"motion": False}
    }


@pytest.mark.parametrize(("payload", "online"), [(b"true", True), (b"false", False)])
def test_online_is_availability(payload: bytes, online: bool) -> None:
    assert fields("shellies/shellymotionsensor-588E81615AC2/online", payload) == {
        Stream.AVAILABILITY: {"online": online}
    }


def test_status_without_known_keys_is_ignored() -> None:
    result = shelly("shellies/shellyht-703523/status", b'{"tmp":{"value":21.5}}')
    assert isinstance(result, Ignored)


@pytest.mark.parametrize(
    "topic",
    [
        "shellies/announce",
        "shellies/command",
        "shellies/shellymotionsensor-588E81615AC2/announce",
        "shellies/shelly1-40F520169316/relay/0",
        "shellies/shelly1-40F520169316/input/1",
        "shellies/shellydw-B88D99/sensor/tilt",
    ],
)
def test_topics_without_readings_are_ignored(topic: str) -> None:
    assert isinstance(shelly(topic, b"x"), Ignored)


@pytest.mark.parametrize(
    ("topic", "payload", "cause"),
    [
        ("shellies/shellydw-B88D99/sensor/state", b"ajar", RejectCause.SCHEMA),
        ("shellies/shellydw-B88D99/sensor/battery", b"lots", RejectCause.SCHEMA),
        ("shellies/shellydw-B88D99/sensor/battery", b"101", RejectCause.SCHEMA),
        ("shellies/shellydw-B88D99/sensor/battery", b"nan", RejectCause.NOT_FINITE),
        ("shellies/shellydw-B88D99/sensor/battery", b"\xff", RejectCause.BAD_UTF8),
        ("shellies/shellydw-B88D99/online", b"yes", RejectCause.SCHEMA),
        ("shellies/x/status", b'{"motion":"yes"}', RejectCause.SCHEMA),
        ("shellies/x/status", b'{"motion":true,"bat":NaN}', RejectCause.NOT_FINITE),
        ("shellies/x/status", b"[]", RejectCause.SCHEMA),
        ("shellies//online", b"true", RejectCause.BAD_TOPIC),
    ],
)
def test_bad_messages(topic: str, payload: bytes, cause: RejectCause) -> None:
    result = shelly(topic, payload)
    assert isinstance(result, Rejected) and result.cause is cause, result


@pytest.mark.parametrize(
    ("event", "action"), [("S", "single"), ("SS", "double"), ("L", "long"), ("LS", "long_single")]
)
def test_button_press_patterns_are_actions(event: str, action: str) -> None:
    """Shelly Button1 / i3 `input_event/0`: the pattern is passed on for the registry to
    give it a meaning (an SOS, a test press, a service request)."""
    payload = json.dumps({"event": event, "event_cnt": 4}).encode()
    topic = "shellies/shellybutton1-A4CF12F45A1B/input_event/0"
    assert fields(topic, payload) == {Stream.ACTION: {"action": action}}


def test_button_event_after_boot_is_ignored_and_junk_refused() -> None:
    topic = "shellies/shellybutton1-A4CF12F45A1B/input_event/0"
    assert isinstance(shelly(topic, b'{"event":"","event_cnt":0}'), Ignored)
    result = shelly(topic, b'{"event":"X","event_cnt":1}')
    assert isinstance(result, Rejected) and "input_event" in result.detail
