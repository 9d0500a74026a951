"""Tasmota payloads with the default FullTopic `%prefix%/%topic%/`.

Fixture sources:
- ioBroker.sonoff adapter (a comment quoting a Sonoff): `tele/sonoff2/SENSOR =
  {"Time":"2017-10-01T12:37:18","Switch1":"ON","DS18B20":{"Temperature":20.6},"TempUnit":"C"}`;
- Home Assistant's Tasmota integration tests: `stat/RESULT {"Switch1":{"Action":"OFF"}}`
  and `tele/SENSOR {"Switch1":"ON"}`;
- a Tasmota user's log: `tele/<topic>/STATE = {"Time":"2021-03-13T09:20:26",
  "Uptime":"0T13:20:12","UptimeSec":48012,"Heap":17,"SleepMode":"Dynamic","Sleep":50,
  "LoadAvg":19,"MqttCount":1,"Wifi":{...}}` and a SENSOR with only ENERGY;
- Tasmota docs: LWT `Online` / `Offline`; `SetOption52 1` appends the UTC offset to Time.
"""

from __future__ import annotations

import pytest

from eldercare.domain import Stream
from ingest.codecs import decode
from ingest.decoded import Decoded, Ignored, RejectCause, Rejected, VendorIdentity

NOW = 1714528800.0  # 2024-05-01T02:00:00Z


def decoded(topic: str, payload: bytes) -> Decoded:
    result = decode(topic, payload, NOW)
    assert isinstance(result, Decoded), result
    assert result.source == "tasmota"
    return result


def test_sensor_switch_without_offset_uses_receive_time() -> None:
    payload = (
        b'{"Time":"2017-10-01T12:37:18","Switch1":"ON","DS18B20":{"Temperature":20.6},'
        b'"TempUnit":"C"}'
    )
    result = decoded("tele/sonoff2/SENSOR", payload)
    assert result.identity == VendorIdentity(("tasmota", "sonoff2"))
    reading, temperature = result.readings
    assert reading.stream is Stream.MOTION and reading.fields == {"motion": True}
    assert temperature.stream is Stream.TEMPERATURE and temperature.fields == {"celsius": 20.6}
    assert reading.ts == temperature.ts == NOW
    assert result.event_time_from_payload is False


def test_sensor_time_with_offset_is_event_time() -> None:
    result = decoded("tele/pir-1/SENSOR", b'{"Time":"2024-05-01T10:00:00+08:00","Switch1":"OFF"}')
    assert result.readings[0].ts == NOW
    assert result.readings[0].fields == {"motion": False}
    assert result.event_time_from_payload is True


def test_sensor_without_time() -> None:
    assert decoded("tele/tasmota_49A3BC/SENSOR", b'{"Switch1":"ON"}').readings[0].ts == NOW


def test_result_switch_action() -> None:
    result = decoded("stat/tasmota_49A3BC/RESULT", b'{"Switch1":{"Action":"OFF"}}')
    assert result.readings[0].fields == {"motion": False}
    on = decoded("stat/tasmota_49A3BC/RESULT", b'{"Switch1":{"Action":"ON"}}')
    assert on.readings[0].fields == {"motion": True}


@pytest.mark.parametrize(("payload", "online"), [(b"Online", True), (b"Offline", False)])
def test_lwt_is_availability(payload: bytes, online: bool) -> None:
    result = decoded("tele/sonoff2/LWT", payload)
    assert result.readings[0].stream is Stream.AVAILABILITY
    assert result.readings[0].fields == {"online": online}


def test_state_is_heartbeat() -> None:
    payload = (
        b'{"Time":"2021-03-13T09:20:26","Uptime":"0T13:20:12","UptimeSec":48012,"Heap":17,'
        b'"SleepMode":"Dynamic","Sleep":50,"LoadAvg":19,"MqttCount":1,"Wifi":{"AP":1,'
        b'"SSId":"hello-nantes","BSSId":"30:23:03:xx:xx:xx","Channel":5,"RSSI":64,'
        b'"Signal":-68,"LinkCount":1,"Downtime":"0T00:00:05"}}'
    )
    [reading] = decoded("tele/compteur/STATE", payload).readings
    assert reading.stream is Stream.HEARTBEAT and reading.ts == NOW


@pytest.mark.parametrize(
    ("topic", "payload"),
    [
        ("tele/pow1/SENSOR", b'{"Time":"2018-01-02T17:13:17","ENERGY":{"Total":13.091}}'),
        ("stat/sonoff/RESULT", b'{"POWER":"ON"}'),
        ("stat/sonoff/RESULT", b'{"Switch1":{"Action":"TOGGLE"}}'),
        ("stat/sonoff/POWER", b"ON"),
        ("tele/sonoff/INFO1", b'{"Module":"Sonoff Basic"}'),
        ("tele/a/b/SENSOR", b'{"Switch1":"ON"}'),
    ],
)
def test_messages_without_readings_are_ignored(topic: str, payload: bytes) -> None:
    assert isinstance(decode(topic, payload, NOW), Ignored)


@pytest.mark.parametrize(
    ("topic", "payload", "cause"),
    [
        ("tele/x/LWT", b"online", RejectCause.SCHEMA),
        ("tele/x/SENSOR", b'{"Switch1":"MAYBE"}', RejectCause.SCHEMA),
        ("tele/x/SENSOR", b'{"Switch1":1}', RejectCause.SCHEMA),
        ("tele/x/SENSOR", b'{"Switch1":"ON","Time":20240501}', RejectCause.SCHEMA),
        ("tele/x/SENSOR", b'{"Switch1":"ON","Time":"noon"}', RejectCause.SCHEMA),
        (
            "tele/x/SENSOR",
            b'{"Switch1":"ON","Time":"2024-06-01T00:00:00Z"}',
            RejectCause.FUTURE_TIMESTAMP,
        ),
        ("tele/x/SENSOR", b"Switch1 ON", RejectCause.BAD_JSON),
        ("stat/x/RESULT", b'{"Switch1":"ON"}', RejectCause.SCHEMA),
        ("tele//SENSOR", b'{"Switch1":"ON"}', RejectCause.BAD_TOPIC),
        ("cmnd/x/POWER", b"ON", RejectCause.UNSUPPORTED),
    ],
)
def test_bad_messages(topic: str, payload: bytes, cause: RejectCause) -> None:
    result = decode(topic, payload, NOW)
    assert isinstance(result, Rejected) and result.cause is cause, result


@pytest.mark.parametrize(
    ("action", "name"), [("SINGLE", "single"), ("DOUBLE", "double"), ("HOLD", "hold")]
)
def test_button_press_patterns_are_actions(action: str, name: str) -> None:
    """Buttons detached from the relay (SetOption73 1) report their pattern; its meaning
    (an SOS, a test press, a service request) is the registry's."""
    result = decoded("stat/sos-btn/RESULT", b'{"Button1":{"Action":"%s"}}' % action.encode())
    [reading] = result.readings
    assert (reading.stream, dict(reading.fields)) == (Stream.ACTION, {"action": name})


def test_button_actions_not_a_pattern_are_ignored_and_junk_refused() -> None:
    assert isinstance(
        decode("stat/sos-btn/RESULT", b'{"Button1":{"Action":"CLEAR"}}', NOW), Ignored
    )
    result = decode("stat/sos-btn/RESULT", b'{"Button1":"DOUBLE"}', NOW)
    assert isinstance(result, Rejected) and "Button1" in result.detail
