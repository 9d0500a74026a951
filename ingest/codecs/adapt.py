"""Give a vendor reading the meaning its device's kind implies.

Codecs cannot know what a relay input is wired to, or whether a z2m `occupancy`
comes from a PIR or a bed strap: that is in the registry. Once ingest has resolved
the device, `adapt_to_device` maps:

- an ambiguous binary input (Tasmota `Switch1`, Shelly `input/0`; decoded as
  `motion` with the input's active state) to what the device kind means: motion
  for a PIR, `open` for a door contact (wire or configure the input to be active,
  ON/1, while the door is open), occupancy for a bed mat, a press for an SOS
  button, a flush for a flush sensor;
- z2m `occupancy` to motion on a PIR, occupancy on a bed, presence on a radar;
- `presence` to motion on a PIR, occupancy on a bed;
- hazard alarms (smoke, gas, carbon monoxide, water leak) kept on hazard detectors,
  temperature and humidity kept on hazard detectors and climate sensors only (a door
  sensor's chip temperature is not the room's).

- a button `action` (a vendor's press pattern, a terminal's button) to what the
  device's registry entry (`actions`) or, failing that, its kind's defaults
  (`DEFAULT_ACTIONS`) say: an SOS press, the device's test press, or a service
  request of a kind. An action neither names means nothing and is dropped.

It returns None for a reading that means nothing for the kind (a contact report
from a bed sensor): not an error, just nothing to record. Battery, tamper, link
quality, heartbeat and availability mean the same for every device. Native
readings already carry their meaning; ingest applies this to vendor readings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from eldercare.domain import DeviceKind, Stream
from eldercare.registry_model import ActionMeaning, Device, DeviceAction
from ingest.decoded import RawReading

Rule = Callable[[RawReading], RawReading | None]

_ANY_DEVICE = frozenset(
    (
        Stream.BATTERY,
        Stream.TAMPER,
        Stream.LINK,
        Stream.HEARTBEAT,
        Stream.AVAILABILITY,
        Stream.DEVICE_TEST,  # a self-check means the same whatever the device
    )
)

_SOS = DeviceAction(means=ActionMeaning.SOS)
_TEST = DeviceAction(means=ActionMeaning.DEVICE_TEST)
_HELP = DeviceAction(means=ActionMeaning.SERVICE_REQUEST)  # kind: other
# What an action means when the device's registry entry does not say. `emergency` and
# `sos` are always the emergency call, and so is `single` on an SOS button or pendant
# (generic buttons used as SOS buttons report their press pattern); the registry cannot
# remap them (`eldercare.registry_model.Device`). `test` is the test press of an emergency device. A
# second pattern (`double`, `hold`, ...) means nothing until the registry maps it,
# e.g. `actions: {double: {means: service_request, request: meal}}`.
DEFAULT_ACTIONS: Mapping[DeviceKind, Mapping[str, DeviceAction]] = {
    DeviceKind.SOS_BUTTON: {"emergency": _SOS, "sos": _SOS, "single": _SOS, "test": _TEST},
    DeviceKind.WEARABLE: {"emergency": _SOS, "sos": _SOS, "single": _SOS, "test": _TEST},
    DeviceKind.FALL_RADAR: {"test": _TEST},
    DeviceKind.TERMINAL: {"emergency": _SOS, "sos": _SOS, "need_help": _HELP, "test": _TEST},
}


def action_meaning(device: Device, action: str) -> DeviceAction | None:
    """The registry entry's meaning of `action`, else the kind's default, else None."""
    own = device.actions.get(action)
    if own is not None:
        return own
    return DEFAULT_ACTIONS.get(device.kind, {}).get(action)


def _from_action(raw: RawReading, device: Device) -> RawReading | None:
    name = raw.fields.get("action")
    meaning = action_meaning(device, name) if type(name) is str else None
    if meaning is None:
        return None
    if meaning.means is ActionMeaning.SOS:
        return RawReading(Stream.SOS, raw.ts, {"pressed": True})
    if meaning.means is ActionMeaning.DEVICE_TEST:
        return RawReading(Stream.DEVICE_TEST, raw.ts, {"passed": True})
    return RawReading(Stream.SERVICE_REQUEST, raw.ts, {"kind": meaning.request})


# The one boolean each binary stream carries.
_FLAG = {
    Stream.MOTION: "motion",
    Stream.OCCUPANCY: "occupied",
    Stream.PRESENCE: "present",
    Stream.CONTACT: "open",
}


def _same(raw: RawReading) -> RawReading:
    return raw


def _as(stream: Stream) -> Rule:
    """Carry a binary reading's flag over to another binary stream."""
    target = _FLAG[stream]

    def rule(raw: RawReading) -> RawReading | None:
        value = raw.fields.get(_FLAG[raw.stream])
        if type(value) is not bool:
            return None
        return RawReading(stream, raw.ts, {target: value})

    return rule


def _event_when_active(stream: Stream, field: str) -> Rule:
    """A momentary event (SOS press, flush) from an input becoming active; release is nothing."""

    def rule(raw: RawReading) -> RawReading | None:
        if raw.fields.get(_FLAG[raw.stream]) is True:
            return RawReading(stream, raw.ts, {field: True})
        return None

    return rule


_HAZARD_DEVICE_KINDS = (
    DeviceKind.SMOKE_ALARM,
    DeviceKind.GAS_ALARM,
    DeviceKind.CO_ALARM,
    DeviceKind.WATER_LEAK,
)
_HAZARD_STREAMS: dict[Stream, Rule] = {
    Stream.SMOKE: _same,
    Stream.GAS: _same,
    Stream.CARBON_MONOXIDE: _same,
    Stream.WATER_LEAK: _same,
    Stream.TEMPERATURE: _same,
    Stream.HUMIDITY: _same,
}

_RULES: dict[DeviceKind, dict[Stream, Rule]] = {
    DeviceKind.MOTION: {
        Stream.MOTION: _same,
        Stream.OCCUPANCY: _as(Stream.MOTION),
        Stream.PRESENCE: _as(Stream.MOTION),
    },
    DeviceKind.DOOR: {
        Stream.CONTACT: _same,
        Stream.MOTION: _as(Stream.CONTACT),  # an input, active while open
    },
    DeviceKind.BED: {
        Stream.OCCUPANCY: _same,
        Stream.PRESENCE: _as(Stream.OCCUPANCY),
        Stream.MOTION: _as(Stream.OCCUPANCY),  # a pressure mat on an input
        Stream.VITALS: _same,
    },
    DeviceKind.SEAT: {
        Stream.OCCUPANCY: _same,
        Stream.PRESENCE: _as(Stream.OCCUPANCY),
        Stream.MOTION: _as(Stream.OCCUPANCY),  # a pressure mat on an input
    },
    DeviceKind.FALL_RADAR: {
        Stream.FALL: _same,
        Stream.PRESENCE: _same,
        Stream.OCCUPANCY: _as(Stream.PRESENCE),
        Stream.MOTION: _same,
        Stream.VITALS: _same,
    },
    DeviceKind.PRESENCE: {
        Stream.PRESENCE: _same,
        Stream.OCCUPANCY: _as(Stream.PRESENCE),
        Stream.MOTION: _same,
    },
    DeviceKind.SOS_BUTTON: {
        Stream.SOS: _same,
        Stream.MOTION: _event_when_active(Stream.SOS, "pressed"),
    },
    DeviceKind.WEARABLE: {
        Stream.ACCEL: _same,
        Stream.SOS: _same,
        Stream.FALL: _same,
    },
    DeviceKind.VITALS: {
        Stream.VITALS: _same,
        Stream.PRESENCE: _same,
        Stream.OCCUPANCY: _as(Stream.PRESENCE),
    },
    DeviceKind.FLUSH: {
        Stream.FLUSH: _same,
        Stream.MOTION: _event_when_active(Stream.FLUSH, "flushed"),
    },
    DeviceKind.PLUG: {
        Stream.POWER: _same,
    },
    DeviceKind.GATEWAY: {},
    # Hazard detectors: their alarm flags mean the same whatever the box (a combined
    # smoke and CO alarm is common); temperature only from these and climate sensors.
    **{kind: _HAZARD_STREAMS for kind in _HAZARD_DEVICE_KINDS},
    DeviceKind.CLIMATE: {Stream.TEMPERATURE: _same, Stream.HUMIDITY: _same},
    DeviceKind.TERMINAL: {Stream.SOS: _same, Stream.SERVICE_REQUEST: _same},
}


def adapt_to_device(raw: RawReading, device: Device) -> RawReading | None:
    """The reading as `device` means it, or None when it means nothing for its kind."""
    if raw.stream in _ANY_DEVICE:
        return raw
    if raw.stream is Stream.ACTION:
        return _from_action(raw, device)
    rule = _RULES.get(device.kind, {}).get(raw.stream)
    return rule(raw) if rule is not None else None
