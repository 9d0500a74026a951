"""Device test presses, requests from a device and device_fault notices, against the
running platform (`eldercare run`'s wiring) over the real broker, InfluxDB, SQLite and
an HTTP receiver for the centre:

- a test press (z2m `emergency` in IAS test mode; a native `sos` with `test: true`) is
  recorded as the button's device test and raises no alarm and notifies nobody;
- an SOS button's second pattern (`double`, mapped in its registry entry to a meal) and
  a terminal's "I need help" open service requests on the family/operator path, while
  the button's real press is still the SOS alarm;
- a fall radar whose weekly test is overdue is raised once as a `device_fault` notice to
  the centre, not again on later ticks nor after a restart, and clears (resolving
  itself) when a passed test is recorded.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from eldercare.clock import FakeClock
from eldercare.domain import AlertKind
from eldercare.registry_apply import apply_document
from eldercare.registry_model import RegistryDocument
from eldercare.settings import Settings
from eldercare_app.local_services import free_port
from eldercare_app.wiring import Platform, build_platform
from field_service.device_faults import DeviceFaultWatch
from field_service.device_tests import list_tests, record_test
from field_service.orders import OrderStore
from tests.helpers.alerts import HttpReceiver
from tests.helpers.polling import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

SITE = "dev-events-home"
DAY = 86400.0


def registry(receiver: HttpReceiver) -> RegistryDocument:
    return RegistryDocument.model_validate(
        {
            "sites": [
                {
                    "id": SITE, "kind": "home", "name": "赵家",
                    "organisation": "滨州市/滨城区/市中街道/黄河社区",
                    "address": "黄河社区 5-1-201",
                    "rooms": [{"id": "bedroom", "kind": "bedroom", "name": "卧室"}],
                    "residents": [{"id": "zhao", "name": "赵桂兰", "room": "bedroom"}],
                    "devices": [
                        {"id": "sos-z", "kind": "sos_button", "room": "bedroom", "resident": "zhao",
                         "vendor": {"z2m": {"friendly_name": "201/sos"}},
                         "actions": {"double": {"means": "service_request", "request": "meal"}}},
                        {"id": "sos-n", "kind": "sos_button", "room": "bedroom",
                         "resident": "zhao"},
                        {"id": "terminal", "kind": "terminal", "room": "bedroom"},
                        {"id": "radar", "kind": "fall_radar", "room": "bedroom"},
                    ],
                    "contacts": [
                        {"id": "duty", "name": "值班员", "role": "operator", "language": "zh-CN",
                         "apprise": [receiver.url("centre")]},
                    ],
                }
            ]
        }
    )  # fmt: skip


def platform_settings(settings: Settings) -> Settings:
    port = free_port()
    return settings.model_copy(
        update={
            "http_port": port,
            "public_url": f"http://127.0.0.1:{port}",
            "mqtt_client_id": f"dev-events-{port}",
        }
    )


async def started(
    cfg: Settings, receiver: HttpReceiver, clock: FakeClock | None = None
) -> Platform:
    p = await build_platform(cfg, clock=clock)
    await apply_document(p.parts.sessions, registry(receiver))
    await p.registry.refresh()
    await p.start()

    async def subscribed() -> bool:
        return bool(p.parts.ingest.ready.is_set())

    await wait_for(subscribed, what="ingest subscribed")
    return p


@pytest.fixture
async def platform(settings: Settings, http_receiver: HttpReceiver) -> AsyncIterator[Platform]:
    p = await started(platform_settings(settings), http_receiver)
    try:
        yield p
    finally:
        await p.stop()


class Devices:
    """A zigbee2mqtt bridge and native devices: one MQTT connection publishing at QoS 1."""

    def __init__(self, settings: Settings) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"devev-{os.getpid()}")
        if settings.mqtt_username:
            self.client.username_pw_set(settings.mqtt_username, settings.mqtt_password)
        self.client.connect(settings.mqtt_host, settings.mqtt_port)
        self.client.loop_start()

    def z2m(self, name: str, body: dict[str, Any]) -> None:
        self.client.publish(f"zigbee2mqtt/{name}", json.dumps(body), qos=1).wait_for_publish(5)

    def native(self, device: str, stream: str, body: dict[str, Any]) -> None:
        topic = f"eldercare/{SITE}/{device}/{stream}"
        self.client.publish(topic, json.dumps(body), qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def devices(settings: Settings) -> Iterator[Devices]:
    d = Devices(settings)
    yield d
    d.close()


async def alerts_of(platform: Platform, kind: AlertKind) -> list[Any]:
    return [a for a in await platform.parts.alert_service.list_alerts() if a.kind == kind]


async def test_test_presses_are_device_tests_and_a_second_pattern_is_a_request(
    platform: Platform, devices: Devices, http_receiver: HttpReceiver
) -> None:
    sessions = platform.parts.sessions
    devices.z2m("201/sos", {"action": "emergency", "test": True, "battery": 90})
    devices.native("sos-n", "sos", {"ts": time.time(), "pressed": True, "test": True})

    async def device_tests() -> list[Any]:
        tests = await list_tests(sessions, [SITE])
        return tests if len(tests) == 2 else []

    tests = await wait_for(device_tests, what="both test presses recorded")
    assert {(t.device_id, t.passed, t.source) for t in tests} == {
        ("sos-z", True, "device"),
        ("sos-n", True, "device"),
    }
    # The detectors had both batches before the field service: had either been an SOS it
    # would be stored by now.
    assert await alerts_of(platform, AlertKind.SOS) == []

    orders = OrderStore(sessions)
    devices.z2m("201/sos", {"action": "double"})
    devices.native("terminal", "action", {"action": "need_help"})

    async def requests() -> list[Any]:
        found = [o for o in await orders.list_orders() if o.kind == "service_request"]
        return found if len(found) == 2 else []

    found = {o.requested_by: o for o in await wait_for(requests, what="two requests opened")}
    assert set(found) == {"device:sos-z", "device:terminal"}
    meal, help_ = found["device:sos-z"], found["device:terminal"]
    assert (meal.request_kind, meal.resident_id, meal.state.value) == ("meal", "zhao", "requested")
    assert (help_.request_kind, help_.resident_id) == ("other", "zhao")  # a home of one
    assert await alerts_of(platform, AlertKind.SOS) == []
    assert http_receiver.to("centre") == []  # nobody was called for any of it

    # Pressed again while the meal request is open: nothing new for the operator.
    devices.z2m("201/sos", {"action": "double"})
    # The button's real press is the emergency call it always was.
    devices.z2m("201/sos", {"action": "emergency"})

    async def sos() -> list[Any]:
        return await alerts_of(platform, AlertKind.SOS)

    [alarm] = await wait_for(sos, what="the SOS alarm")
    assert alarm.device == "sos-z"
    assert len([o for o in await orders.list_orders() if o.kind == "service_request"]) == 2

    async def centre_called() -> bool:
        return bool(http_receiver.to("centre"))

    await wait_for(centre_called, what="the centre notified of the SOS")
    assert len(await list_tests(sessions, [SITE])) == 2  # a redelivered press counts once


async def test_an_overdue_device_test_is_raised_once_across_a_restart_and_clears(
    settings: Settings, http_receiver: HttpReceiver
) -> None:
    """On the platform's injected clock: a week after the radar was first seen, its test
    is overdue."""
    now = time.time()
    clock = FakeClock(now)
    platform = await started(platform_settings(settings), http_receiver, clock)
    try:
        [watch] = [c for c in platform.components if isinstance(c, DeviceFaultWatch)]
        await watch.stop()  # the test ticks it, on the fake clock
        assert await watch.tick(clock.now()) == []
        for device in ("sos-z", "sos-n"):
            await record_test(
                platform.parts.sessions, site_id=SITE, device_id=device, at=now + 7 * DAY,
                passed=True, source="responder", by="wang", note=None,
            )  # fmt: skip
        clock.set(now + 8 * DAY)
        [raised] = await watch.tick(clock.now())
        assert (raised.kind, raised.device_id) == (AlertKind.DEVICE_FAULT, "radar")
        assert raised.ts == pytest.approx(now + 7 * DAY, abs=60)  # its due time
        await platform.parts.alerts.tick()

        async def centre_told() -> list[Any]:
            return http_receiver.to("centre")

        [told] = await wait_for(centre_told, what="the centre told of the device fault")
        assert "设备故障" in told.doc["title"] + told.doc["message"]
        clock.advance(60)
        assert await watch.tick(clock.now()) == []
    finally:
        await platform.stop()

    clock.advance(60)
    again = await started(platform_settings(settings), http_receiver, clock)
    try:
        [watch] = [c for c in again.components if isinstance(c, DeviceFaultWatch)]
        await watch.stop()
        assert await watch.tick(clock.now()) == []  # raised before the restart: not again
        await again.parts.alerts.tick()
        [alert] = await alerts_of(again, AlertKind.DEVICE_FAULT)
        assert alert.status.value == "open"
        tested_at = clock.now() + 30
        await record_test(
            again.parts.sessions, site_id=SITE, device_id="radar", at=tested_at, passed=True,
            source="responder", by="wang", note=None,
        )  # fmt: skip
        clock.advance(60)
        [cleared] = await watch.tick(clock.now())
        assert (cleared.action.value, cleared.ts) == ("clear", tested_at)
        await again.parts.alerts.tick()
        [alert] = await alerts_of(again, AlertKind.DEVICE_FAULT)
        assert (alert.condition.value, alert.status.value) == ("cleared", "resolved")
        assert len(http_receiver.to("centre")) == 1  # one notice for the one episode
    finally:
        await again.stop()
