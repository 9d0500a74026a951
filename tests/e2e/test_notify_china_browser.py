"""In Debian's Chromium: the operator console's alert detail and the family portal
show, for each notification, its channel and what became of it, in zh-CN and en.
The daughter's night call (Aliyun, via the real SDK and the local provider stand-in)
is not answered; her SMS is delivered."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from alerts.pipeline import AlertPipeline
from eldercare.clock import FakeClock, WallClock
from eldercare.influx import InfluxClient, point_for_reading
from eldercare.settings import Settings
from tests.helpers.browser import open_page, recent_day, screenshot
from tests.helpers.china_providers import ALIYUN_KEY_ID, ALIYUN_SECRET, FakeChinaProviders
from tests.helpers.gateway import (
    Gateway,
    build_gateway,
    current_index,
    db_url,
    in_process_client,
    login,
    serve,
    sos,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.asyncio(loop_scope="session"),
]


@dataclass
class Platform:
    url: str
    gateway: Gateway
    clock: FakeClock


@pytest.fixture
async def platform(tmp_path: Path, influx_url: str) -> AsyncIterator[Platform]:
    db = f"gw_{secrets.token_hex(4)}"
    influx = InfluxClient(influx_url)
    await influx.query(f'CREATE DATABASE "{db}"')
    await influx.write([point_for_reading(x) for x in recent_day(time.time())], db)
    clock = FakeClock(time.time())  # the pipeline's; the gateway runs on the wall clock
    settings = Settings(
        run_dir=tmp_path / "run", database_url=db_url(tmp_path), influx_url=influx_url, influx_db=db
    )
    gateway = await build_gateway(settings, WallClock(), influx=influx)
    async with serve(gateway.app) as url:
        yield Platform(url, gateway, clock)
    await influx.query(f'DROP DATABASE "{db}"')
    await influx.aclose()
    await gateway.engine.dispose()


async def test_pages_show_channel_and_outcome_of_each_notification(
    platform: Platform, browser: Any, providers: FakeChinaProviders
) -> None:
    from playwright.async_api import expect

    providers.call_states["13900000002"] = "200005"  # she does not pick up
    args = providers.url_args()
    contact = {
        "id": "daughter",
        "name": "李梅",
        "role": "family",
        "phone": "13900000002",
        "residents": ["zhang-xiuying"],
        "apprise": [
            f"aliyunvoice://{ALIYUN_KEY_ID}:{ALIYUN_SECRET}@TTS_1/13900000002?{args}",
            f"aliyunsms://{ALIYUN_KEY_ID}:{ALIYUN_SECRET}@SMS_1/13900000002?sign=x&{args}",
        ],
    }
    async with in_process_client(platform.gateway) as client:
        admin = await login(client, "admin1")
        resp = await client.put("/api/sites/hh-401/contacts/daughter", json=contact, headers=admin)
        assert resp.status_code in (200, 201), resp.text
    gateway, clock = platform.gateway, platform.clock
    await gateway.index.refresh()
    pipeline = AlertPipeline(
        gateway.store, lambda: current_index(gateway.index), clock, public_url="http://x"
    )
    t0 = clock.now()
    try:
        await pipeline.handle_transitions([sos("hh-401", "zhang-xiuying", t0)])
        await pipeline.tick()
        clock.set(t0 + 60)  # the family step: a call and an SMS
        await pipeline.tick()
        clock.set(t0 + 90)  # the providers' receipts
        await pipeline.tick()
    finally:
        await pipeline.stop()

    for lang, voice, sms, history in (
        ("zh-CN", "李梅 · 语音电话 · 未接听", "李梅 · 短信 · 已送达", "电话未接听 · 李梅 (family)"),
        (
            "en",
            "李梅 · Voice call · not answered",
            "李梅 · SMS · delivered",
            "call not answered · 李梅",
        ),
    ):
        console = await open_page(
            browser, platform.url, "op-bincheng", lang, viewport={"width": 1440, "height": 900}
        )
        await console.wait_for_url("**/console")
        await console.locator("#queue .row").first.click()
        card = console.locator(".card.notifications")
        await expect(card).to_contain_text(voice)
        await expect(card).to_contain_text(sms)
        await expect(console.locator(".history").first).to_contain_text(history)
        await screenshot(console, f"console-notifications-{lang}")

        family = await open_page(
            browser,
            platform.url,
            "family-zhang",
            lang,
            viewport={"width": 390, "height": 844},
            is_mobile=True,
        )
        await family.wait_for_url("**/family")
        line = family.locator(".alert-item .notified").first
        await expect(line).to_contain_text(voice)
        await expect(line).to_contain_text(sms)
        await screenshot(family, f"family-notifications-{lang}")
