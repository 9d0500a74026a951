"""A smoke alarm in Chromium: the console and the family portal show it as a home hazard,
with its own icon, badge and what to do, in both languages; an SOS beside it has none."""

from __future__ import annotations

import time
from typing import Any

import pytest

from eldercare.domain import AlertKind, Evidence, Severity, Transition, TransitionAction
from eldercare.evidence import EvidenceCode, seen
from tests.helpers.browser import Platform, open_page

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.asyncio(loop_scope="session"),
]


def _smoke(ts: float) -> Transition:
    smoke = seen(EvidenceCode.SMOKE_ALARM)  # as the smoke rule says it
    return Transition(
        action=TransitionAction.RAISE,
        kind=AlertKind.SMOKE,
        site_id="hh-401",
        ts=ts,
        severity=Severity.CRITICAL,
        resident_id="zhang-xiuying",
        room_id="kitchen",
        device_id="hh401-smoke",
        evidence=(Evidence(ts, "hh401-smoke", "smoke", smoke.english(), "kitchen", (smoke,)),),
    )


async def test_smoke_is_shown_as_a_home_hazard(platform: Platform, browser: Any) -> None:
    from playwright.async_api import expect

    console = await open_page(
        browser, platform.url, "op-bincheng", "zh-CN", viewport={"width": 1440, "height": 900}
    )
    await console.wait_for_url("**/console")
    await expect(console.locator("#conn")).to_have_class("conn live")
    await platform.raise_sos("hh-401", "zhang-xiuying")
    await platform.pipeline.handle_transitions([_smoke(time.time())])
    smoke_row = console.locator("#queue .row.hazard")
    await expect(smoke_row).to_have_count(1, timeout=2000)
    await expect(smoke_row.locator(".kind")).to_have_text("烟雾报警")
    await expect(smoke_row.locator(".hazard-icon")).to_have_text("🔥")
    await expect(smoke_row.locator(".hazard-badge")).to_have_text("居家安全隐患")
    sos_row = console.locator("#queue .row:not(.hazard)")
    await expect(sos_row.locator(".kind")).to_have_text("一键呼叫")
    await expect(sos_row.locator(".hazard-mark")).to_have_count(0)
    await smoke_row.click()
    await expect(console.locator(".hazard-advice")).to_contain_text("拨打119")
    await expect(console.locator("ul.evidence")).to_contain_text("烟雾报警器鸣响")

    family = await open_page(
        browser, platform.url, "family-zhang", "en", viewport={"width": 390, "height": 844},
        is_mobile=True,
    )  # fmt: skip
    await family.wait_for_url("**/family")
    item = family.locator(".alert-item", has_text="Smoke alarm")
    await expect(item.locator(".hazard-badge")).to_have_text("Home hazard")
    await expect(item.locator(".hazard-advice")).to_contain_text("call 119")
    sos_item = family.locator(".alert-item", has_text="SOS call")
    await expect(sos_item.locator(".hazard-mark")).to_have_count(0)
