"""Facts to MQTT messages, in the platform's native format or as zigbee2mqtt would send them.

Native: `eldercare/<site>/<device>/<stream>` with `{"ts": <epoch s>, ...fields}`
(docs/devices.md, eldercare/wire_schemas/). zigbee2mqtt: `zigbee2mqtt/<friendly name>` with
the device's whole cached state on every message (z2m's default `cache_state`),
`last_seen` as ISO 8601, `contact: true` meaning CLOSED, and a momentary `action`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from device_sim.device import SimDevice
from device_sim.sensors import Fact
from device_sim.site import Z2M_BASE_TOPIC, SimSite
from eldercare.domain import DeviceKind, Stream
from eldercare.wire import format_native_topic


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes
    retain: bool = False


def z2m_topic(friendly_name: str) -> str:
    return f"{Z2M_BASE_TOPIC}/{friendly_name}"


def iso_utc(ts: float) -> str:
    """zigbee2mqtt's `last_seen` in its ISO_8601 form: UTC with milliseconds and Z."""
    moment = datetime.fromtimestamp(round(ts, 3), UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{round(moment.microsecond / 1000):03d}Z"


def native_payload(fact: Fact) -> dict[str, Any]:
    return {"ts": round(fact.ts, 3), **fact.fields}


def _dumps(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


class SiteEncoder:
    """Encodes one site's facts in event-time order; keeps each z2m device's cached state."""

    def __init__(self, site: SimSite) -> None:
        self.site = site
        self._devices = {d.id: d for d in site.devices}
        self._z2m_state: dict[str, dict[str, Any]] = {}

    def availability(self, ts: float | None = None) -> list[Message]:
        """Retained `online` for every device, as each announces on connecting.

        Live (`ts` None): the plain strings real devices send; their event time is
        when ingest receives them, which is now. Replayed faster than real time, a
        message without its own time would carry the wall clock into event time, so
        native devices send the JSON form with `ts`, and zigbee2mqtt availability
        (which has no time field) is left out."""
        out: list[Message] = []
        for d in self.site.devices:
            if ts is None and d.z2m_name is not None:
                topic = z2m_topic(d.z2m_name) + "/availability"
                out.append(Message(topic, b'{"state":"online"}', True))
            elif ts is None:
                out.append(
                    Message(
                        format_native_topic(self.site.id, d.id, "availability"), b"online", True
                    )
                )
            elif d.z2m_name is None:
                payload = _dumps({"ts": round(ts, 3), "state": "online"})
                out.append(
                    Message(format_native_topic(self.site.id, d.id, "availability"), payload, True)
                )
        return out

    def will(self) -> Message:
        """The site connection's Last Will: its gateway goes offline."""
        return Message(
            format_native_topic(self.site.id, self.site.gateway.id, "availability"),
            b"offline",
            True,
        )

    def encode(self, fact: Fact) -> Message:
        device = self._devices[fact.device_id]
        if device.z2m_name is not None:
            return self._z2m(device, fact)
        return Message(
            format_native_topic(self.site.id, device.id, fact.stream), _dumps(native_payload(fact))
        )

    def _z2m(self, device: SimDevice, fact: Fact) -> Message:
        assert device.z2m_name is not None
        state = self._z2m_state.setdefault(device.id, _z2m_initial(device))
        momentary: dict[str, Any] = {}
        f = fact.fields
        match fact.stream:
            case Stream.MOTION:
                state["occupancy"] = f["motion"]
            case Stream.OCCUPANCY:
                state["occupancy"] = f["occupied"]
            case Stream.CONTACT:
                state["contact"] = not f["open"]  # z2m: true = closed
            case Stream.PRESENCE:
                state["presence"] = f["present"]
            case Stream.FALL:
                state["fall_down_status"] = f["status"]
            case Stream.BATTERY:
                state["battery"] = round(f["percent"])
                state["battery_low"] = f["percent"] < 20
            case Stream.TAMPER:
                state["tamper"] = f["tamper"]
            case Stream.SOS:
                momentary["action"] = "emergency"
            case Stream.SMOKE | Stream.GAS | Stream.WATER_LEAK:
                state[fact.stream.value] = f[fact.stream.value]
            case Stream.TEMPERATURE:
                state["temperature"] = f["celsius"]
            case _:
                pass  # heartbeat: the periodic report of the full state
        state["linkquality"] = device.link_at(fact.ts)
        doc = {**state, **momentary, "last_seen": iso_utc(fact.ts)}
        return Message(z2m_topic(device.z2m_name), _dumps(doc))


def _z2m_initial(device: SimDevice) -> dict[str, Any]:
    state: dict[str, Any] = {}
    if device.kind in (DeviceKind.MOTION, DeviceKind.BED):
        state["occupancy"] = False
    if device.kind is DeviceKind.DOOR:
        state["contact"] = True
        state["tamper"] = False
    if device.kind is DeviceKind.FALL_RADAR:
        state["presence"] = False
        state["fall_down_status"] = "none"
    if device.kind is DeviceKind.SMOKE_ALARM:
        state.update(smoke=False, tamper=False, test=False)
    if device.kind is DeviceKind.GAS_ALARM:
        state.update(gas=False, tamper=False)
    if device.kind is DeviceKind.WATER_LEAK:
        state.update(water_leak=False, tamper=False)
    if device.has_battery:
        state["battery"] = round(device.battery_start)
        state["battery_low"] = False
    return state
