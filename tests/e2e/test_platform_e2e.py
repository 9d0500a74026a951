"""The whole platform in one process, as `eldercare run` wires it, over the real broker,
InfluxDB, SQLite and a real HTTP receiver: an SOS published by a device becomes a
stored alert, a notification, an InfluxDB point and an entry in the API."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from eldercare.influx import InfluxClient
from eldercare.registry_apply import apply_document
from eldercare.registry_model import RegistryDocument
from eldercare.settings import Settings
from eldercare_app.local_services import free_port
from eldercare_app.wiring import Platform, build_platform
from tests.helpers.alerts import HttpReceiver
from tests.helpers.polling import wait_for

# The platform runs on the fixture loop; the test must run on the same one.
pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

SITE = "e2e-home-1"


def registry(receiver: HttpReceiver) -> RegistryDocument:
    doc = yaml.safe_load(
        f"""
sites:
  - id: {SITE}
    kind: home
    name: 王桂兰家
    organisation: 滨州市/滨城区/市中街道/黄河社区
    address: 黄河社区 1-1-101
    timezone: Asia/Shanghai
    rooms:
      - {{id: bedroom, kind: bedroom, name: 卧室}}
      - {{id: entrance, kind: entrance, name: 门厅}}
    residents:
      - {{id: wang-guilan, name: 王桂兰, birth_year: 1940, room: bedroom, phone: "13800000001"}}
    devices:
      - {{id: e2e-sos, kind: sos_button, room: bedroom, resident: wang-guilan}}
      - {{id: e2e-door, kind: door, room: entrance, outer_door: true}}
    contacts:
      - id: duty
        name: 值班员
        role: operator
        language: zh-CN
        apprise: ["{receiver.url("centre")}"]
      - id: daughter
        name: Li Mei
        role: family
        language: en
        residents: [wang-guilan]
        apprise: ["{receiver.url("family")}"]
"""
    )
    return RegistryDocument.model_validate(doc)


@pytest.fixture
async def platform(
    settings: Settings,
    http_receiver: HttpReceiver,
) -> AsyncIterator[Platform]:
    port = free_port()
    cfg = settings.model_copy(
        update={
            "http_port": port,
            "public_url": f"http://127.0.0.1:{port}",
            "mqtt_client_id": f"e2e-{port}",
        }
    )
    p = await build_platform(cfg)
    await apply_document(p.parts.sessions, registry(http_receiver))
    await p.start()
    await wait_for(p.parts.ingest.ready.is_set, what="ingest subscribed")
    try:
        yield p
    finally:
        await p.stop()


def publish(settings: Settings, topic: str, payload: dict[str, Any]) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="e2e-device")
    if settings.mqtt_username:
        client.username_pw_set(settings.mqtt_username, settings.mqtt_password)
    client.connect(settings.mqtt_host, settings.mqtt_port)
    client.loop_start()
    try:
        client.publish(topic, json.dumps(payload), qos=1).wait_for_publish(5)
    finally:
        client.loop_stop()
        client.disconnect()


async def test_sos_over_mqtt_becomes_alert_notification_point_and_api_entry(
    platform: Platform,
    http_receiver: HttpReceiver,
) -> None:
    settings = platform.settings
    t_event = time.time()
    publish(settings, f"eldercare/{SITE}/e2e-sos/sos", {"ts": t_event, "pressed": True})

    service = platform.parts.alert_service

    async def stored() -> Any:
        alerts = await service.list_alerts()
        return [a for a in alerts if a.kind == "sos" and a.site == SITE]

    (alert,) = await wait_for(stored, what="the SOS alert stored")
    assert alert.severity == "critical"
    assert alert.resident == "wang-guilan"
    assert alert.raised_at == pytest.approx(t_event, abs=1e-3), "event time, not receive time"

    # The duty operator (the centre) is notified at once, in Chinese, with the resident's name.
    async def centre_notified() -> Any:
        return http_receiver.to("centre")

    (msg,) = await wait_for(centre_notified, what="the centre's notification")
    text = json.dumps(msg.doc, ensure_ascii=False)
    assert "王桂兰" in text and "一键呼叫" in text
    assert not http_receiver.to("family"), "family is notified only if unacknowledged at 60 s"

    # The reading and the alert event are in InfluxDB.
    async with InfluxClient.from_settings(settings) as influx:

        async def in_influx() -> Any:
            sos = await influx.query(
                f"SELECT * FROM sos WHERE site = '{SITE}'", db=settings.influx_db
            )
            events = await influx.query(
                f"SELECT * FROM alert_event WHERE site = '{SITE}' AND event = 'raised'",
                db=settings.influx_db,
            )
            return sos and events

        await wait_for(in_influx, what="points in InfluxDB")

    # The API shows it to an admin, and the operator's acknowledgement is recorded.
    base = settings.public_url
    async with httpx.AsyncClient(base_url=base) as client:
        assert (await client.get("/api/alerts")).status_code == 401
        from gateway.users import Role, create_user

        await create_user(
            platform.parts.sessions,
            username="admin",
            role=Role.ADMIN,
            password="correct horse battery",
            now=time.time(),
        )
        login = await client.post(
            "/api/auth/login", json={"username": "admin", "password": "correct horse battery"}
        )
        assert login.status_code == 200, login.text
        listed = (await client.get("/api/alerts")).json()
        assert any(a["kind"] == "sos" and a["site_id"] == SITE for a in listed)
