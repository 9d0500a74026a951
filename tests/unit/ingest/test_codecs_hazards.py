"""Hazard detectors (smoke, gas, carbon monoxide, water leak, temperature) through the codecs.

Payload shapes from the vendors' documentation and sources:
- zigbee-herdsman-converters, src/converters/fromZigbee.ts: the IAS zone converters
  `ias_smoke_alarm_1` (`smoke`, `tamper`, `battery_low`, `supervision_reports`,
  `restore_reports`, `trouble`, `ac_status`, `test`, `battery_defect`),
  `ias_gas_alarm_1` (`gas`, `tamper`, `battery_low`), `ias_carbon_monoxide_alarm_1`
  (`carbon_monoxide`, `tamper`, `battery_low`) and `ias_water_leak_alarm_1`
  (`water_leak`, `tamper`, `battery_low`);
- zigbee2mqtt device pages: HEIMAN HS1SA exposes `smoke, battery_low, battery,
  linkquality`; HS1CG / HS3CG `gas, battery_low, tamper`; Aqara SJCGQ11LM
  `water_leak, battery_low, tamper, battery, voltage, device_temperature`; Aqara
  WSDCGQ11LM `temperature, humidity, pressure, battery, voltage`; Tuya TS0601_smoke
  `smoke, battery_state` (`low` / `middle` / `high`);
- Shelly Gen1 MQTT API: `shellies/shellyflood-<id>/sensor/flood` `true`/`false`,
  `sensor/temperature`, `sensor/battery`; Shelly H&T `sensor/temperature`,
  `sensor/humidity`; Shelly Smoke `sensor/smoke`;
- Tasmota `tele/<topic>/SENSOR`: `{"Time":...,"AM2301":{"Temperature":...,"Humidity":...},
  "TempUnit":"C"}`, `DS18B20` likewise.
"""

from __future__ import annotations

import json

import pytest

from eldercare.domain import DeviceKind, FieldValue, Stream
from eldercare.registry_model import Device
from ingest.codecs import adapt_to_device, decode, native_schema
from ingest.decoded import Decoded, Ignored, RawReading, RejectCause, Rejected

NOW = 1714528800.0


def result(topic: str, payload: object) -> Decoded | Ignored | Rejected:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return decode(topic, data, NOW)


def readings(topic: str, payload: object) -> dict[Stream, dict[str, FieldValue]]:
    out = result(topic, payload)
    assert isinstance(out, Decoded), out
    streams = [r.stream for r in out.readings]
    assert len(streams) == len(set(streams)), "one reading per stream, or dedup drops one"
    return {r.stream: dict(r.fields) for r in out.readings}


def rejected(topic: str, payload: object) -> Rejected:
    out = result(topic, payload)
    assert isinstance(out, Rejected), out
    return out


# --- zigbee2mqtt -------------------------------------------------------------------------


def test_heiman_smoke_alarm_with_battery_low() -> None:
    got = readings(
        "zigbee2mqtt/kitchen/smoke",
        {"smoke": True, "battery_low": False, "battery": 87, "linkquality": 96},
    )
    assert got[Stream.SMOKE] == {"smoke": True}
    assert got[Stream.BATTERY] == {"percent": 87.0, "low": False}
    assert got[Stream.LINK] == {"linkquality": 96}


def test_smoke_test_press_is_marked_as_a_test() -> None:
    """ias_smoke_alarm_1 reports the test button as `test` beside `smoke`."""
    payload = {
        "smoke": True,
        "tamper": False,
        "battery_low": False,
        "supervision_reports": False,
        "restore_reports": True,
        "trouble": False,
        "ac_status": False,
        "test": True,
        "battery_defect": False,
    }
    got = readings("zigbee2mqtt/kitchen/smoke", payload)
    assert got[Stream.SMOKE] == {"smoke": True, "test": True}
    assert got[Stream.TAMPER] == {"tamper": False}
    assert got[Stream.BATTERY] == {"low": False}


def test_smoke_clear_after_alarm() -> None:
    got = readings("zigbee2mqtt/kitchen/smoke", {"smoke": False, "test": False})
    assert got[Stream.SMOKE] == {"smoke": False, "test": False}


def test_heiman_gas_alarm_with_tamper() -> None:
    got = readings("zigbee2mqtt/kitchen/gas", {"gas": True, "tamper": True, "battery_low": False})
    assert got[Stream.GAS] == {"gas": True}
    assert got[Stream.TAMPER] == {"tamper": True}


def test_carbon_monoxide_and_gas_from_one_combined_detector() -> None:
    payload = {
        "carbon_monoxide": True,
        "gas": False,
        "tamper": False,
        "battery_low": True,
        "trouble": False,
        "ac_connected": True,
        "test": False,
        "battery_defect": False,
    }
    got = readings("zigbee2mqtt/boiler-co", payload)
    assert got[Stream.CARBON_MONOXIDE] == {"carbon_monoxide": True, "test": False}
    assert got[Stream.GAS] == {"gas": False, "test": False}
    assert got[Stream.BATTERY] == {"low": True}


def test_aqara_water_leak() -> None:
    payload = {
        "water_leak": True,
        "battery_low": False,
        "tamper": False,
        "battery": 100,
        "voltage": 3055,
        "device_temperature": 24,
        "power_outage_count": 3,
        "linkquality": 120,
        "last_seen": "2024-05-01T09:59:58+08:00",
    }
    out = result("zigbee2mqtt/bathroom/leak", payload)
    assert isinstance(out, Decoded)
    by = {r.stream: dict(r.fields) for r in out.readings}
    assert by[Stream.WATER_LEAK] == {"water_leak": True}
    assert Stream.TEMPERATURE not in by  # device_temperature is the chip's, not the room's
    assert all(r.ts == NOW - 2 for r in out.readings)


def test_aqara_temperature_humidity() -> None:
    payload = {
        "temperature": 31.27,
        "humidity": 58.1,
        "pressure": 1004,
        "battery": 91,
        "voltage": 2985,
        "linkquality": 70,
    }
    got = readings("zigbee2mqtt/living/th", payload)
    assert got[Stream.TEMPERATURE] == {"celsius": 31.27}
    assert got[Stream.HUMIDITY] == {"percent": 58.1}
    assert got[Stream.BATTERY] == {"percent": 91.0}


def test_tuya_smoke_battery_state() -> None:
    got = readings("zigbee2mqtt/tuya-smoke", {"smoke": False, "battery_state": "low"})
    assert got[Stream.BATTERY] == {"low": True}
    assert rejected("zigbee2mqtt/tuya-smoke", {"battery_state": "empty"}).cause == (
        RejectCause.SCHEMA
    )


@pytest.mark.parametrize(
    "payload",
    [
        {"smoke": "true"},
        {"gas": 1},
        {"water_leak": "ON"},
        {"temperature": "31"},
        {"temperature": 400},
        {"humidity": 101},
        {"test": "yes", "smoke": True},
        {"battery_low": 0},
    ],
)
def test_z2m_hazard_keys_of_the_wrong_type_are_refused(payload: dict[str, object]) -> None:
    assert rejected("zigbee2mqtt/kitchen/smoke", payload).cause is RejectCause.SCHEMA


def test_a_fire_hot_sensor_still_delivers_its_smoke_flag() -> None:
    got = readings("zigbee2mqtt/kitchen/smoke", {"smoke": True, "temperature": 95.0})
    assert got[Stream.SMOKE] == {"smoke": True}
    assert got[Stream.TEMPERATURE] == {"celsius": 95.0}


# --- Shelly ------------------------------------------------------------------------------


def test_shelly_flood() -> None:
    assert readings("shellies/shellyflood-A4CF12F45E21/sensor/flood", b"true") == {
        Stream.WATER_LEAK: {"water_leak": True}
    }
    assert readings("shellies/shellyflood-A4CF12F45E21/sensor/flood", b"false") == {
        Stream.WATER_LEAK: {"water_leak": False}
    }
    assert readings("shellies/shellyflood-A4CF12F45E21/sensor/temperature", b"21.75") == {
        Stream.TEMPERATURE: {"celsius": 21.75}
    }


def test_shelly_ht_and_smoke() -> None:
    assert readings("shellies/shellyht-6A1F3C/sensor/humidity", b"48.5") == {
        Stream.HUMIDITY: {"percent": 48.5}
    }
    assert readings("shellies/shellysmoke-6A1F3C/sensor/smoke", b"true") == {
        Stream.SMOKE: {"smoke": True}
    }
    assert rejected("shellies/shellysmoke-6A1F3C/sensor/smoke", b"maybe").cause is (
        RejectCause.SCHEMA
    )
    assert rejected("shellies/shellyht-6A1F3C/sensor/temperature", b"hot").cause is (
        RejectCause.SCHEMA
    )
    ignored = result("shellies/shellyht-6A1F3C/sensor/act_reasons", b'["sensor"]')
    assert isinstance(ignored, Ignored)


# --- Tasmota -----------------------------------------------------------------------------


def test_tasmota_am2301_temperature_and_humidity() -> None:
    payload = {
        "Time": "2024-05-01T10:00:00",
        "AM2301": {"Temperature": 34.2, "Humidity": 41.0, "DewPoint": 19.2},
        "TempUnit": "C",
    }
    got = readings("tele/bedroom-th/SENSOR", payload)
    assert got == {Stream.TEMPERATURE: {"celsius": 34.2}, Stream.HUMIDITY: {"percent": 41.0}}


def test_tasmota_fahrenheit_and_switch_together() -> None:
    payload = {
        "Time": "2024-05-01T10:00:00",
        "Switch1": "ON",
        "DS18B20": {"Id": "01131B5E6DAA", "Temperature": 53.6},
        "TempUnit": "F",
    }
    got = readings("tele/hall/SENSOR", payload)
    assert got[Stream.MOTION] == {"motion": True}
    assert got[Stream.TEMPERATURE]["celsius"] == pytest.approx(12.0)


def test_tasmota_sensor_without_switch_or_temperature_is_ignored() -> None:
    out = result("tele/plug/SENSOR", {"Time": "2024-05-01T10:00:00", "ENERGY": {"Power": 3}})
    assert isinstance(out, Ignored)
    bad = {"Time": "2024-05-01T10:00:00", "SI7021": {"Temperature": "warm"}, "TempUnit": "C"}
    assert rejected("tele/hall/SENSOR", bad).cause is RejectCause.SCHEMA


# --- native and device kinds -------------------------------------------------------------


@pytest.mark.parametrize(
    ("stream", "body"),
    [
        (Stream.SMOKE, {"smoke": True, "test": True}),
        (Stream.GAS, {"gas": True}),
        (Stream.CARBON_MONOXIDE, {"carbon_monoxide": False}),
        (Stream.WATER_LEAK, {"water_leak": True}),
        (Stream.TEMPERATURE, {"celsius": 12.5}),
        (Stream.HUMIDITY, {"percent": 60}),
    ],
)
def test_native_hazard_streams(stream: Stream, body: dict[str, object]) -> None:
    assert native_schema(stream)["required"]
    got = readings(f"eldercare/hh-1/dev-1/{stream.value}", body)
    assert list(got) == [stream]
    out = rejected(f"eldercare/hh-1/dev-1/{stream.value}", {**body, "alarm": True})
    assert out.cause is RejectCause.SCHEMA and "alarm" in out.detail


def _adapt(stream: Stream, kind: DeviceKind, **fields: FieldValue) -> Stream | None:
    out = adapt_to_device(RawReading(stream, NOW, fields), Device(id="d1", kind=kind))
    return None if out is None else out.stream


def test_hazard_readings_keep_their_meaning_on_hazard_devices_only() -> None:
    assert _adapt(Stream.SMOKE, DeviceKind.SMOKE_ALARM, smoke=True) is Stream.SMOKE
    assert _adapt(Stream.CARBON_MONOXIDE, DeviceKind.SMOKE_ALARM, carbon_monoxide=True) is (
        Stream.CARBON_MONOXIDE
    )
    assert _adapt(Stream.WATER_LEAK, DeviceKind.WATER_LEAK, water_leak=True) is Stream.WATER_LEAK
    assert _adapt(Stream.TEMPERATURE, DeviceKind.CLIMATE, celsius=30.0) is Stream.TEMPERATURE
    assert _adapt(Stream.TEMPERATURE, DeviceKind.DOOR, celsius=30.0) is None
    assert _adapt(Stream.SMOKE, DeviceKind.MOTION, smoke=True) is None
    assert _adapt(Stream.BATTERY, DeviceKind.GAS_ALARM, low=True) is Stream.BATTERY
