"""The responder's phone page end to end in Debian's Chromium, both languages: an order
dispatched from the console appears on the responder's page without a reload, is
accepted, the responder is on the way and arrives, closes it with an outcome, and the
family portal says a helper is on the way / arrived at HH:MM. Real app under uvicorn,
real alert pipeline, real InfluxDB (the console's activity strip)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.helpers.browser import Platform, open_page, screenshot
from tests.helpers.field import add_responders

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.asyncio(loop_scope="session"),
]

PHONE = {"viewport": {"width": 360, "height": 740}, "is_mobile": True, "has_touch": True}
DESK = {"viewport": {"width": 1440, "height": 900}}
TEXT = {
    "zh-CN": {
        "waiting": "待接单", "sos": "一键呼叫", "pressed": "按下一键呼叫按钮", "flag": "认知障碍",
        "accepted": "已接单", "on_the_way": "在路上", "arrived": "已到达", "done": "已完成",
        "fam_on_the_way": "正在赶来", "fam_arrived": "已于 {t} 到达", "fam_done": "上门协助",
    },
    "en": {
        "waiting": "Waiting to accept", "sos": "SOS call", "pressed": "SOS button pressed",
        "flag": "dementia", "accepted": "Accepted", "on_the_way": "On the way",
        "arrived": "Arrived", "done": "Done", "fam_on_the_way": "is on the way",
        "fam_arrived": "arrived at {t}", "fam_done": "assisted on site",
    },
}  # fmt: skip


def _hhmm(ts: float) -> str:
    return datetime.fromtimestamp(ts, ZoneInfo("Asia/Shanghai")).strftime("%H:%M")


async def _round(
    plat: Platform, chromium: Any, lang: str, responder: str, name: str, first: bool
) -> None:
    from playwright.async_api import expect

    words = TEXT[lang]
    phone = await open_page(chromium, plat.url, responder, lang, **PHONE)
    await phone.wait_for_url("**/field")
    if first:
        await expect(phone.locator("#no-orders")).to_be_visible()
    family = await open_page(chromium, plat.url, "family-zhang", lang, **PHONE)
    await family.wait_for_url("**/family")

    console = await open_page(chromium, plat.url, "op-bincheng", lang, **DESK)
    await console.wait_for_url("**/console")
    await expect(console.locator("#queue .row")).to_have_count(1)
    who = console.locator("#dispatch-who")
    await expect(who.locator("option").first).to_have_attribute("value", "wang-grid")
    await who.select_option(responder)
    await console.click("#dispatch-go")
    await expect(console.locator("#field-panel .field-order").first).to_contain_text(name)

    # Pushed to the phone by the order stream: no reload.
    item = phone.locator(".order-item.st-dispatched")
    await expect(item).to_be_visible(timeout=3000)
    await expect(item).to_contain_text("张秀英")
    await expect(item).to_contain_text(words["sos"])
    await expect(item.locator(".state")).to_have_text(words["waiting"])
    if first:
        await screenshot(phone, f"field-{lang}-list")
    await item.click()
    card = phone.locator("#order-view")
    await expect(card.locator("a.tel").first).to_have_attribute("href", "tel:13800000001")
    await expect(card.locator("#map-link")).to_have_attribute(
        "href", re.compile(r"^geo:37\.38,117\.97")
    )
    await expect(card).to_contain_text(words["pressed"])
    await expect(card).to_contain_text(words["flag"])
    await expect(card).to_contain_text("13900000002")  # the daughter
    await screenshot(phone, f"field-{lang}-card")

    await phone.click("#btn-accept")
    await expect(card.locator("h2").first).to_contain_text(words["accepted"])
    await phone.click("#btn-on-the-way")
    await expect(card.locator("h2").first).to_contain_text(words["on_the_way"])
    await expect(family.locator("#helper")).to_contain_text(words["fam_on_the_way"])
    await expect(family.locator("#helper")).to_contain_text(name)
    await phone.click("#btn-arrive")
    await expect(card.locator("h2").first).to_contain_text(words["arrived"])
    orders = await plat.gateway.app.state.field.store.list_orders(responder=responder)
    arrived_at = orders[0].arrived_at
    assert arrived_at is not None
    await expect(family.locator("#helper")).to_contain_text(
        words["fam_arrived"].format(t=_hhmm(arrived_at))
    )
    await screenshot(family, f"field-{lang}-family-arrived")
    await phone.select_option("#outcome", "assisted_on_site")
    await phone.fill("#outcome-note", "扶起，无外伤" if lang == "zh-CN" else "helped up, unhurt")
    await phone.click("#btn-done")
    await expect(card.locator("h2").first).to_contain_text(words["done"])
    await expect(family.locator("#helper")).to_contain_text(words["fam_done"])
    await expect(console.locator("#field-panel .field-order").first).to_contain_text(words["done"])
    await screenshot(console, f"field-{lang}-console")
    await phone.click("#back")
    await expect(phone.locator("#closed-orders .order-item").first).to_contain_text(words["done"])
    for page in (phone, family, console):
        await page.context.close()


async def test_dispatch_to_the_door_on_a_phone_in_both_languages(
    platform: Platform,
    browser: Any,
) -> None:
    import time

    await add_responders(platform.gateway.sessions, time.time())
    await platform.raise_sos("hh-401", "zhang-xiuying")
    await _round(platform, browser, "zh-CN", "wang-grid", "王强", first=True)
    # The same alert, a second helper, everyone reading English.
    await _round(platform, browser, "en", "li-volunteer", "李芳", first=False)


async def test_visits_logged_on_the_phone_show_in_coverage_and_on_the_family_portal(
    platform: Platform,
    browser: Any,
) -> None:
    import time

    from playwright.async_api import expect

    from field_service.visit_store import put_category
    from field_service.visits import VisitCategory, VisitPeriod

    sessions = platform.gateway.sessions
    await add_responders(sessions, time.time())
    await put_category(
        sessions,
        VisitCategory("dementia", ("滨州市",), VisitPeriod.MONTH, flag="dementia",
                      name_zh="认知障碍老人", name_en="Living with dementia"),
        time.time(),
    )  # fmt: skip
    phone = await open_page(browser, platform.url, "wang-grid", "zh-CN", **PHONE)
    await phone.wait_for_url("**/field")
    item = phone.locator(".visit-item[data-resident=zhang-xiuying]")
    await expect(item.locator(".state")).to_have_text("已逾期")
    await expect(item).to_contain_text("认知障碍老人")
    await item.locator(".visit-open").click()
    await item.locator(".visit-mode").select_option("phone")
    await item.locator(".visit-note").fill("电话问候，一切正常")
    await item.locator(".visit-save").click()
    await expect(phone.locator("#owed")).to_contain_text("本期探访均已完成")
    await screenshot(phone, "field-zh-CN-visits")

    supervisor = await open_page(browser, platform.url, "sup-bincheng", "en", **DESK)
    await supervisor.wait_for_url("**/console")  # signed in
    await supervisor.goto("/console/coverage")
    table = supervisor.locator("#coverage-table")
    total = table.locator("tr.total")
    await expect(total).to_contain_text("Total")
    # Only 张秀英 lives with dementia in this subtree: one needed, one visited.
    await expect(total.locator("td").nth(1)).to_have_text("1")
    await expect(total.locator("td").nth(2)).to_have_text("1")
    await expect(total.locator("td").nth(5)).to_have_text("100.0%")
    href = await supervisor.locator("#csv").get_attribute("href")
    assert href is not None and href.startswith("/api/field/coverage.csv?month=")
    await screenshot(supervisor, "coverage-en")

    family = await open_page(browser, platform.url, "family-zhang", "zh-CN", **PHONE)
    await family.wait_for_url("**/family")
    await expect(family.locator("#last-visit")).to_contain_text("王强（电话）")


async def test_a_family_asks_for_a_meal_and_sees_it_done(
    platform: Platform,
    browser: Any,
) -> None:
    import time

    from playwright.async_api import expect

    await add_responders(platform.gateway.sessions, time.time())
    family = await open_page(browser, platform.url, "family-zhang", "en", **PHONE)
    await family.wait_for_url("**/family")
    await family.select_option("#request-kind", "meal")
    await family.fill("#request-note", "lunch today, soft food")
    await family.click("#request-send")
    await expect(family.locator("#helper")).to_contain_text("“Meal” requested")

    board = await open_page(browser, platform.url, "op-bincheng", "zh-CN", **DESK)
    await board.wait_for_url("**/console")
    await board.goto("/console/field")
    row = board.locator("#board-table .board-row.st-requested")
    await expect(row).to_contain_text("助餐")
    await expect(row).to_contain_text("lunch today, soft food")
    await row.locator(".board-who").select_option("wang-grid")
    await row.locator(".board-dispatch").click()
    await expect(board.locator("#board-table .board-row.st-dispatched")).to_contain_text("王强")
    await screenshot(board, "field-zh-CN-board")

    phone = await open_page(browser, platform.url, "wang-grid", "zh-CN", **PHONE)
    await phone.wait_for_url("**/field")
    item = phone.locator(".order-item.st-dispatched")
    await expect(item).to_contain_text("助餐")
    await item.click()
    await phone.click("#btn-accept")
    await phone.click("#btn-arrive")
    await phone.select_option("#outcome", "assisted_on_site")
    await phone.click("#btn-done")
    await expect(family.locator("#helper")).to_contain_text("came and handled it: assisted on site")
    await expect(board.locator("#board-table")).to_have_count(0)  # nothing open any more
    await screenshot(family, "field-en-family-request")


async def test_a_responder_tests_the_sos_button_and_the_device_page_shows_it(
    platform: Platform,
    browser: Any,
) -> None:
    import time

    from playwright.async_api import expect

    await add_responders(platform.gateway.sessions, time.time())
    await platform.raise_sos("hh-401", "zhang-xiuying")
    console = await open_page(browser, platform.url, "op-bincheng", "zh-CN", **DESK)
    await console.wait_for_url("**/console")
    await console.click("#dispatch-go")
    phone = await open_page(browser, platform.url, "wang-grid", "zh-CN", **PHONE)
    await phone.wait_for_url("**/field")
    await phone.locator(".order-item.st-dispatched").click()
    button = phone.locator(".device-test[data-device=hh401-sos]")
    await expect(button).to_contain_text("从未测试")
    await button.locator(".test-fail").click()
    await expect(button).to_contain_text("起故障")
    await console.goto("/console/devices")
    table = console.locator("#device-tests-table")
    await expect(table).to_contain_text("hh401-sos")
    await expect(table).to_contain_text("起故障，待修复")
    await screenshot(console, "field-zh-CN-device-tests")


async def test_the_link_in_a_new_orders_sms_opens_its_card_and_device_faults_show(
    platform: Platform,
    browser: Any,
) -> None:
    """The link a responder is sent (`/field#order=<id>`) opens the order's card, on a
    fresh page and on the open one; a device_fault notice reads in both languages."""
    import time

    from playwright.async_api import expect

    from field_service.device_faults import DeviceFaultWatch
    from field_service.device_tests import record_test
    from field_service.orders import OrderStore
    from tests.helpers.gateway import current_index

    sessions = platform.gateway.sessions
    await add_responders(sessions, time.time())
    await platform.raise_sos("hh-401", "zhang-xiuying")
    console = await open_page(browser, platform.url, "op-bincheng", "zh-CN", **DESK)
    await console.wait_for_url("**/console")
    await console.click("#dispatch-go")
    await expect(console.locator("#field-panel .field-order").first).to_contain_text("王强")
    [order] = await OrderStore(sessions).list_orders()

    phone = await open_page(browser, platform.url, "wang-grid", "zh-CN", **PHONE)
    await phone.wait_for_url("**/field")
    linked = await phone.context.new_page()
    await linked.goto(f"/field#order={order.id}")  # a fresh page, as from the SMS
    await expect(linked.locator("#order-view")).to_be_visible()
    await expect(linked.locator("#order-view")).to_contain_text("张秀英")
    await phone.evaluate(f"location.hash = '#order={order.id}'")  # the page already open
    await expect(phone.locator("#order-view")).to_be_visible()
    await screenshot(linked, "field-zh-CN-sms-link")

    # The SOS button's weekly test became overdue a minute ago: the centre's notice.
    now = time.time()
    await record_test(
        sessions, site_id="hh-401", device_id="hh401-sos", at=now - 7 * 86400 - 60, passed=True,
        source="responder", by="wang-grid", note=None,
    )  # fmt: skip
    index = platform.gateway.index
    watch = DeviceFaultWatch(sessions, lambda: current_index(index), platform.pipeline, time.time)
    raised = await watch.tick(now)
    assert any(t.device_id == "hh401-sos" for t in raised)
    await expect(console.locator("#queue")).to_contain_text("设备故障（待检测或维修）")
    await screenshot(console, "console-zh-CN-device-fault")
    english = await open_page(browser, platform.url, "op-bincheng", "en", **DESK)
    await english.wait_for_url("**/console")
    await expect(english.locator("#queue")).to_contain_text("Device fault (test or repair due)")
