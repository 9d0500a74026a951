"""adapt_to_device: a vendor reading takes the meaning of the device it came from."""

from __future__ import annotations

import pytest

from eldercare.domain import DeviceKind, FieldValue, Stream
from eldercare.registry_model import Device
from ingest.codecs import adapt_to_device, decode
from ingest.decoded import Decoded, RawReading

NOW = 1714528800.0


def device(kind: DeviceKind) -> Device:
    return Device(id=f"{kind.value}-1", kind=kind)


def raw(stream: Stream, **fields: FieldValue) -> RawReading:
    return RawReading(stream, NOW, fields)


def adapted(reading: RawReading, kind: DeviceKind) -> tuple[Stream, dict[str, FieldValue]] | None:
    out = adapt_to_device(reading, device(kind))
    return None if out is None else (out.stream, dict(out.fields))


def only_reading(topic: str, payload: bytes) -> RawReading:
    result = decode(topic, payload, NOW)
    assert isinstance(result, Decoded), result
    [reading] = result.readings
    return reading


@pytest.mark.parametrize(
    ("kind", "on", "off"),
    [
        (DeviceKind.MOTION, (Stream.MOTION, {"motion": True}), (Stream.MOTION, {"motion": False})),
        (DeviceKind.DOOR, (Stream.CONTACT, {"open": True}), (Stream.CONTACT, {"open": False})),
        (
            DeviceKind.BED,
            (Stream.OCCUPANCY, {"occupied": True}),
            (Stream.OCCUPANCY, {"occupied": False}),
        ),
        (DeviceKind.SOS_BUTTON, (Stream.SOS, {"pressed": True}), None),
        (DeviceKind.FLUSH, (Stream.FLUSH, {"flushed": True}), None),
        (DeviceKind.PLUG, None, None),
    ],
)
def test_tasmota_switch_and_shelly_input_by_kind(kind: DeviceKind, on: object, off: object) -> None:
    tasmota_on = only_reading("tele/hall/SENSOR", b'{"Switch1":"ON"}')
    tasmota_off = only_reading("stat/hall/RESULT", b'{"Switch1":{"Action":"OFF"}}')
    shelly_on = only_reading("shellies/shelly1-40F520169316/input/0", b"1")
    shelly_off = only_reading("shellies/shelly1-40F520169316/input/0", b"0")
    assert adapted(tasmota_on, kind) == on
    assert adapted(shelly_on, kind) == on
    assert adapted(tasmota_off, kind) == off
    assert adapted(shelly_off, kind) == off


def test_z2m_occupancy_by_kind() -> None:
    reading = only_reading("zigbee2mqtt/401/x", b'{"occupancy": true}')
    assert adapted(reading, DeviceKind.BED) == (Stream.OCCUPANCY, {"occupied": True})
    assert adapted(reading, DeviceKind.MOTION) == (Stream.MOTION, {"motion": True})
    assert adapted(reading, DeviceKind.PRESENCE) == (Stream.PRESENCE, {"present": True})
    assert adapted(reading, DeviceKind.FALL_RADAR) == (Stream.PRESENCE, {"present": True})
    assert adapted(reading, DeviceKind.DOOR) is None


def test_presence_radar_presence() -> None:
    reading = only_reading("zigbee2mqtt/radar", b'{"presence": false}')
    assert adapted(reading, DeviceKind.PRESENCE) == (Stream.PRESENCE, {"present": False})
    assert adapted(reading, DeviceKind.FALL_RADAR) == (Stream.PRESENCE, {"present": False})
    assert adapted(reading, DeviceKind.BED) == (Stream.OCCUPANCY, {"occupied": False})
    assert adapted(reading, DeviceKind.SOS_BUTTON) is None


def test_same_meaning_everywhere_streams_pass() -> None:
    cases: list[tuple[Stream, dict[str, FieldValue]]] = [
        (Stream.BATTERY, {"percent": 12.0}),
        (Stream.TAMPER, {"tamper": True}),
        (Stream.LINK, {"linkquality": 80}),
        (Stream.HEARTBEAT, {}),
        (Stream.AVAILABILITY, {"online": False}),
    ]
    for stream, fields in cases:
        reading = raw(stream, **fields)
        for kind in DeviceKind:
            assert adapt_to_device(reading, device(kind)) is reading


def test_readings_matching_the_kind_are_unchanged() -> None:
    cases = [
        (raw(Stream.CONTACT, open=True), DeviceKind.DOOR),
        (raw(Stream.FALL, status="maybe_fall"), DeviceKind.FALL_RADAR),
        (raw(Stream.SOS, pressed=True), DeviceKind.SOS_BUTTON),
        (raw(Stream.VITALS, heart_rate=60.0), DeviceKind.BED),
        (raw(Stream.ACCEL, rate_hz=50.0, x=(0.0,), y=(0.0,), z=(1.0,)), DeviceKind.WEARABLE),
        (raw(Stream.POWER, watts=1800.0), DeviceKind.PLUG),
        (raw(Stream.FLUSH, flushed=True), DeviceKind.FLUSH),
    ]
    for reading, kind in cases:
        assert adapt_to_device(reading, device(kind)) is reading


def test_readings_meaningless_for_the_kind_are_dropped() -> None:
    assert adapt_to_device(raw(Stream.CONTACT, open=True), device(DeviceKind.BED)) is None
    assert adapt_to_device(raw(Stream.FALL, status="fall"), device(DeviceKind.DOOR)) is None
    assert adapt_to_device(raw(Stream.MOTION, motion=True), device(DeviceKind.GATEWAY)) is None
    assert adapt_to_device(raw(Stream.ACCEL, rate_hz=50.0), device(DeviceKind.MOTION)) is None


def test_adapted_reading_keeps_event_time() -> None:
    out = adapt_to_device(
        RawReading(Stream.MOTION, 123.5, {"motion": True}), device(DeviceKind.DOOR)
    )
    assert out is not None and out.ts == 123.5


def _action(device: Device, name: str) -> tuple[Stream, dict[str, FieldValue]] | None:
    out = adapt_to_device(raw(Stream.ACTION, action=name), device)
    return None if out is None else (out.stream, dict(out.fields))


def test_button_actions_by_kind_defaults() -> None:
    button = device(DeviceKind.SOS_BUTTON)
    # The call stays the call: emergency and a registered SOS button's single press.
    assert _action(button, "emergency") == (Stream.SOS, {"pressed": True})
    assert _action(button, "single") == (Stream.SOS, {"pressed": True})
    assert _action(button, "test") == (Stream.DEVICE_TEST, {"passed": True})
    assert _action(button, "double") is None  # a second pattern means nothing unmapped
    terminal = device(DeviceKind.TERMINAL)
    assert _action(terminal, "need_help") == (Stream.SERVICE_REQUEST, {"kind": "other"})
    assert _action(terminal, "sos") == (Stream.SOS, {"pressed": True})
    assert _action(device(DeviceKind.MOTION), "single") is None


def test_registry_maps_a_second_press_pattern_to_a_request_kind() -> None:
    button = Device.model_validate(
        {
            "id": "sos-1", "kind": "sos_button",
            "actions": {"double": {"means": "service_request", "request": "meal"},
                        "hold": {"means": "service_request"}},
        }
    )  # fmt: skip
    assert _action(button, "double") == (Stream.SERVICE_REQUEST, {"kind": "meal"})
    assert _action(button, "hold") == (Stream.SERVICE_REQUEST, {"kind": "other"})
    assert _action(button, "single") == (Stream.SOS, {"pressed": True})  # still the call


def test_the_registry_cannot_remap_the_emergency_call() -> None:
    for kind, name in [("sos_button", "emergency"), ("terminal", "sos"), ("sos_button", "single"),
                       ("wearable", "single")]:  # fmt: skip
        with pytest.raises(ValueError, match="can only mean sos"):
            Device.model_validate(
                {"id": "b", "kind": kind, "actions": {name: {"means": "service_request"}}}
            )
    # A terminal's `single` is no call: it may mean what its maker says.
    Device.model_validate(
        {"id": "t", "kind": "terminal", "actions": {"single": {"means": "service_request"}}}
    )
    with pytest.raises(ValueError):
        Device.model_validate(
            {"id": "b", "kind": "sos_button",
             "actions": {"double": {"means": "service_request", "request": "pizza"}}}
        )  # fmt: skip


def test_request_kinds_are_the_field_services() -> None:
    from eldercare.domain import SERVICE_REQUEST_KINDS
    from field_service.requests import RequestKind

    assert tuple(k.value for k in RequestKind) == SERVICE_REQUEST_KINDS


def test_a_self_check_passes_for_every_device_kind() -> None:
    assert adapted(raw(Stream.DEVICE_TEST, passed=False), DeviceKind.FALL_RADAR) == (
        Stream.DEVICE_TEST,
        {"passed": False},
    )


def test_a_shelly_or_tasmota_button_test_press_by_registry() -> None:
    """Buttons without a test mode of their own: the registry names the pattern that is
    the test press (e.g. a long press), decoded by any codec as an `action`."""
    button = Device.model_validate(
        {"id": "sos-1", "kind": "sos_button", "actions": {"long": {"means": "device_test"}}}
    )
    shelly = only_reading(
        "shellies/shellybutton1-A4CF12F45A1B/input_event/0", b'{"event":"L","event_cnt":9}'
    )
    out = adapt_to_device(shelly, button)
    assert out is not None and (out.stream, dict(out.fields)) == (
        Stream.DEVICE_TEST,
        {"passed": True},
    )
    single = only_reading("stat/sos-btn/RESULT", b'{"Button1":{"Action":"SINGLE"}}')
    out = adapt_to_device(single, button)
    assert out is not None and out.stream is Stream.SOS  # the call stays the call
