"""End to end in Debian's Chromium: the real app under uvicorn, the real alert pipeline,
a real InfluxDB. An SOS appears in the console without a reload, the operator
acknowledges and resolves it, the family portal shows it handled, in both languages.
Screenshots of every page go to test-artifacts/ for a person to look at.

Only `platform` (tests/e2e/conftest.py) changes when `eldercare run` wires ingest and
detectors: the SOS will then be published over MQTT instead of handed to the pipeline.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from paho.mqtt.enums import CallbackAPIVersion

from eldercare.clock import WallClock
from eldercare.domain import (
    AlertKind,
    Severity,
    Transition,
    TransitionAction,
)
from eldercare.influx import InfluxClient, point_for_reading
from eldercare.settings import Settings
from gateway.users import Role, create_user
from tests.helpers.browser import Platform, open_page, recent_day
from tests.helpers.gateway import (
    PASSWORD,
    build_gateway,
    db_url,
    free_port,
    serve,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.asyncio(loop_scope="session"),
]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


async def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=False)


async def test_sos_from_raise_to_family_portal(platform: Platform, browser: Any) -> None:
    await sos_scenario(platform, browser, shots="")


async def sos_scenario(platform: Any, browser: Any, shots: str) -> None:
    """An SOS appears in the console within 2 s without a reload; the operator
    acknowledges and resolves it; the family portal shows it handled, in both languages.
    `platform` needs `url` and `raise_sos(site, resident)`; `shots` prefixes screenshots
    (empty: take them)."""
    from playwright.async_api import expect

    console = await open_page(
        browser, platform.url, "op-bincheng", "zh-CN", viewport={"width": 1440, "height": 900}
    )
    await console.wait_for_url("**/console")
    await expect(console.locator("#conn")).to_have_class("conn live")
    await expect(console.locator("#queue-empty")).to_be_visible()

    await platform.raise_sos("hh-401", "zhang-xiuying")
    row = console.locator("#queue .row").first
    # Pushed by the live stream: no reload, within 2 seconds.
    await expect(row).to_be_visible(timeout=2000)
    await expect(row.locator(".kind")).to_have_text("一键呼叫")
    await expect(row).to_have_class("row sev-critical selected flash")
    await expect(console.locator(".resident-card h3")).to_contain_text("张秀英")
    await expect(console.locator("a.tel").first).to_have_attribute("href", "tel:13800000001")
    # Evidence in the operator's language, from structured parts, not the English summary.
    await expect(console.locator("ul.evidence")).to_contain_text("卧室")
    await expect(console.locator("ul.evidence")).to_contain_text("按下一键呼叫按钮")
    await expect(console.locator("ul.evidence")).not_to_contain_text("SOS button pressed")
    await expect(console.locator(".strip-row").first).to_be_visible()
    if not shots:
        await _shot(console, "console-zh-alert")

    await console.keyboard.press("a")  # acknowledge
    await expect(row.locator(".timer")).to_have_text("已接警")
    await expect(row).not_to_have_class("row sev-critical selected flash")
    await console.keyboard.press("r")  # resolve
    await console.select_option("#outcome", "resident_fine")
    await console.fill("#resolve-note", "误按，已电话确认")
    await console.click("#dlg-ok")
    await expect(console.locator("#queue .row")).to_have_count(0)
    await expect(console.locator(".detail-head .handling")).to_have_text("已处置")
    history = console.locator(".history")
    for step in ("发生", "接警 · op-bincheng", "处置完成 · op-bincheng · 老人无恙"):
        await expect(history).to_contain_text(step)  # escalation steps may come between
    await expect(console.locator("#st-ack60")).to_have_text("100.0%")
    if not shots:
        await _shot(console, "console-zh-resolved")

    family = await open_page(
        browser,
        platform.url,
        "family-zhang",
        "zh-CN",
        viewport={"width": 390, "height": 844},
        is_mobile=True,
    )
    await family.wait_for_url("**/family")
    item = family.locator(".alert-item").first
    await expect(item.locator(".status")).to_have_text("已处置")
    await expect(item).to_contain_text("一键呼叫")
    await expect(item).to_contain_text("老人无恙")
    await expect(item).to_contain_text("op-bincheng")
    await expect(family.locator("#state")).to_contain_text("张秀英在家")
    await expect(family.locator("#state")).to_contain_text("厨房")
    if not shots:
        await _shot(family, "family-zh")

    family_en = await open_page(
        browser,
        platform.url,
        "family-zhang",
        "en",
        viewport={"width": 390, "height": 844},
        is_mobile=True,
    )
    await family_en.wait_for_url("**/family")
    await expect(family_en.locator("#state")).to_contain_text("is at home, last active")
    await expect(family_en.locator(".alert-item").first).to_contain_text("resident fine")
    if not shots:
        await _shot(family_en, "family-en")


async def test_console_in_english_and_the_other_pages(platform: Platform, browser: Any) -> None:
    from playwright.async_api import expect

    await platform.raise_sos("hh-401", "zhang-xiuying")
    await platform.raise_sos("yiyang", "sun-lan", "r301")
    page = await open_page(
        browser, platform.url, "op-bincheng", "en", viewport={"width": 1440, "height": 900}
    )
    await page.wait_for_url("**/console")
    await expect(page.locator("#queue .row")).to_have_count(2)
    await expect(page.locator("#queue .row .kind").first).to_have_text("SOS call")
    await expect(page.locator("#conn")).to_have_text("Live")
    await expect(page.locator("#st-sites")).to_have_text("2")
    await page.keyboard.press("j")
    await expect(page.locator("#queue .row").nth(1)).to_have_class(re.compile(r"\bselected\b"))
    await expect(page.locator("#queue .row").nth(1)).to_have_class(re.compile(r"\bflash\b"))
    await expect(page.locator(".resident-card h3")).to_contain_text("孙兰")
    await expect(page.locator(".resident-card")).to_contain_text("301-1")
    await _shot(page, "console-en")

    await page.click("#lang")  # switch to Chinese, remembered
    await expect(page.locator("#queue .row .kind").first).to_have_text("一键呼叫")
    await page.goto("/console/floor")
    await expect(page.locator(".bed")).to_have_count(3)
    await expect(page.locator(".bed.alerting")).to_have_count(1)
    await _shot(page, "floor-zh")
    now = time.time()
    await platform.pipeline.handle_transitions(
        [
            Transition(
                TransitionAction.RAISE,
                AlertKind.DEVICE_OFFLINE,
                "hh-401",
                now - 3600,
                Severity.WARNING,
                device_id="hh401-pir-k",
                room_id="kitchen",
            ),
            Transition(
                TransitionAction.RAISE,
                AlertKind.LOW_BATTERY,
                "yiyang",
                now - 7200,
                Severity.WARNING,
                device_id="yy-bed-302-1",
                details={"battery": 12.0},
            ),
        ]
    )
    run_dir = Path(platform.gateway.app.state.gateway.settings.run_dir)
    (run_dir / "quarantine").mkdir(parents=True, exist_ok=True)
    (run_dir / "quarantine" / "quarantine-000001.jsonl").write_text(
        '{"cause": "malformed_json", "detail": "x", "topic": "eldercare/a/b/motion",'
        f' "received_at": {now - 60}, "payload": "secret-ish payload"}}\n'
    )
    await page.goto("/console/devices")
    await expect(page.locator("h2").first).to_have_text("离线设备与低电量")
    # An operator gets the numbers to tell an admin, not the payloads.
    await expect(page.locator("#intake")).to_contain_text("被隔离的消息 1 条")
    await expect(page.locator("#intake")).to_contain_text("告知管理员")
    await expect(page.locator("body")).not_to_contain_text("secret-ish payload")
    rows = page.locator("#problems-table tbody tr")
    await expect(rows).to_have_count(2)
    await expect(rows.first).to_contain_text("电量低 12%")  # the longest-standing first
    await expect(rows.nth(1)).to_contain_text("设备离线")
    await _shot(page, "devices-zh")

    login = await (await browser.new_context(locale="en", base_url=platform.url)).new_page()
    await login.goto("/login")
    await _shot(login, "login-en")


async def test_family_declares_away_and_the_operator_sees_and_withdraws_it(
    platform: Platform, browser: Any
) -> None:
    """The daughter declares her mother away until a time on the portal; the operator sees
    it on the resident card of an alert and withdraws it; the portal offers the form again."""
    from playwright.async_api import expect

    family = await open_page(browser, platform.url, "family-zhang", "zh-CN")
    await family.wait_for_url("**/family")
    await expect(family.locator("#away-form")).to_be_visible()
    await expect(family.locator("#away-explain")).to_contain_text("外出未归")
    until = time.strftime("%Y-%m-%dT18:00", time.gmtime(time.time() + 8 * 3600 + 2 * 86400))
    await family.fill("#away-until", until)
    await family.fill("#away-note", "在女儿家")
    await family.click("#away-form button[type=submit]")
    shown = until[5:10].replace("-", "/") + " " + until[11:16]
    await expect(family.locator("#away-current")).to_contain_text(f"预计{shown}回家")
    await expect(family.locator("#away-current")).to_contain_text("在女儿家")
    await expect(family.locator("#away-form")).to_be_hidden()
    await expect(family.locator("#state-away")).to_have_text(f"张秀英已报备外出，预计{shown}回家")
    await _shot(family, "family-away-zh")

    await platform.raise_sos("hh-401", "zhang-xiuying")
    page = await open_page(
        browser, platform.url, "op-bincheng", "en", viewport={"width": 1440, "height": 900}
    )
    await page.wait_for_url("**/console")
    await page.locator("#queue .row").first.click()
    await expect(page.locator("#away")).to_contain_text(f"declared away until {shown}")
    await expect(page.locator("#away")).to_contain_text("family-zhang")
    await _shot(page, "console-away-en")
    await page.click("#btn-away-withdraw")
    await expect(page.locator("#away")).to_contain_text("None declared")

    await family.reload()
    await expect(family.locator("#away-form")).to_be_visible()
    await expect(family.locator("#away-current")).to_be_hidden()
    await expect(family.locator("#state-away")).to_be_hidden()


async def test_lost_stream_is_impossible_to_miss(tmp_path: Path, browser: Any) -> None:
    from playwright.async_api import expect

    settings = Settings(run_dir=tmp_path / "run", database_url=db_url(tmp_path))
    gateway = await build_gateway(settings, WallClock())
    port = free_port()
    async with serve(gateway.app, port) as url:
        page = await open_page(
            browser, url, "op-bincheng", "en", viewport={"width": 1440, "height": 900}
        )
        await page.wait_for_url("**/console")
        await expect(page.locator("#conn")).to_have_class("conn live")
        await expect(page.locator("#conn-banner")).to_be_hidden()
    # The server is gone: the console must say so, loudly.
    await expect(page.locator("#conn-banner")).to_be_visible(timeout=10000)
    await expect(page.locator("#conn")).to_have_text(re.compile("LOST"))
    await _shot(page, "console-en-connection-lost")
    # And it recovers by itself when the server is back.
    async with serve(gateway.app, port):
        await expect(page.locator("#conn")).to_have_class("conn live", timeout=15000)
        await expect(page.locator("#conn-banner")).to_be_hidden()
    await gateway.engine.dispose()


SOS_BUTTONS = {"hh-401": "hh401-sos", "zh-12": "zh12-sos"}  # as in the test registry


class MqttPlatform:
    """The whole platform as `eldercare run` wires it; an SOS is a device's MQTT message."""

    def __init__(self, platform: Any) -> None:
        self.platform = platform
        self.url = f"http://127.0.0.1:{platform.settings.http_port}"

    async def raise_sos(self, site: str, resident: str, room: str = "bedroom") -> None:
        import json

        import paho.mqtt.client as mqtt

        s = self.platform.settings
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"gw-e2e-{secrets.token_hex(4)}"
        )
        connected = threading.Event()
        client.on_connect = lambda *_: connected.set()
        if s.mqtt_username:
            client.username_pw_set(s.mqtt_username, s.mqtt_password)
        client.connect(s.mqtt_host, s.mqtt_port)
        client.loop_start()
        try:
            # Publishing before the broker's CONNACK fails: wait for it (off the event loop).
            assert await asyncio.to_thread(connected.wait, 5), "device could not connect"
            payload = json.dumps({"ts": time.time(), "pressed": True})
            topic = f"eldercare/{site}/{SOS_BUTTONS[site]}/sos"
            client.publish(topic, payload, qos=1).wait_for_publish(5)
        finally:
            client.loop_stop()
            client.disconnect()


@pytest.fixture
async def mqtt_platform(settings: Settings) -> AsyncIterator[MqttPlatform]:
    from eldercare import registry_store
    from eldercare.registry_model import RegistryDocument
    from eldercare_app.wiring import build_platform
    from tests.helpers.gateway import REGISTRY, free_port

    port = free_port()
    db = f"gw_{secrets.token_hex(4)}"
    cfg = settings.model_copy(
        update={
            "http_port": port,
            "public_url": f"http://127.0.0.1:{port}",
            "mqtt_client_id": f"gw-e2e-{port}",
            "influx_db": db,
        }
    )
    influx = InfluxClient(cfg.influx_url)
    await influx.query(f'CREATE DATABASE "{db}"')
    await influx.write([point_for_reading(x) for x in recent_day(time.time())], db)
    platform = await build_platform(cfg)
    sessions = platform.parts.sessions
    await registry_store.apply_document(sessions, RegistryDocument.model_validate(REGISTRY))
    for username, role, scope, residents in [
        ("op-bincheng", Role.OPERATOR, "滨州市/滨城区", None),
        ("family-zhang", Role.FAMILY, None, ["hh-401/zhang-xiuying"]),
    ]:
        await create_user(
            sessions,
            username=username,
            role=role,
            password=PASSWORD,
            now=time.time(),
            scope=scope,
            residents=residents,
            display_name=username,
        )
    await platform.start()
    for _ in range(200):  # ingest subscribed to the broker
        if platform.parts.ingest.ready.is_set():
            break
        await asyncio.sleep(0.05)
    try:
        yield MqttPlatform(platform)
    finally:
        await platform.stop()
        await influx.query(f'DROP DATABASE "{db}"')
        await influx.aclose()


async def test_sos_over_mqtt_through_the_whole_platform(
    mqtt_platform: MqttPlatform, browser: Any
) -> None:
    await sos_scenario(mqtt_platform, browser, shots="mqtt")
