"""The responder's phone loads its whole list of orders when the order stream
(re)connects. An order dispatched while that list is on its way must stay on the phone
when the list, read before it, arrives (it vanished until the next change). Chromium
holds the list loaded on the stream's hello until the phone has received the dispatch on
its stream (DevTools' EventSource messages), then hands it over."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tests.helpers.browser import (
    Platform,
    hold_response_until_streamed,
    log_in,
    new_page,
    open_page,
)
from tests.helpers.field import add_responders

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.asyncio(loop_scope="session"),
]


async def test_an_order_dispatched_while_the_list_loads_stays_on_the_phone(
    platform: Platform, browser: Any
) -> None:
    from playwright.async_api import expect

    await add_responders(platform.gateway.sessions, time.time())
    await platform.raise_sos("hh-401", "zhang-xiuying")
    console = await open_page(browser, platform.url, "op-bincheng", "en")
    await console.wait_for_url("**/console")
    await expect(console.locator("#queue .row")).to_have_count(1)

    phone = await new_page(browser, platform.url, "en", viewport={"width": 360, "height": 740})
    # The page loads its list, connects its stream, and loads the list again when the
    # stream says hello: that second list, read before the dispatch, is held.
    held = await hold_response_until_streamed(phone, "**/api/field/orders?*", "dispatched", 2)
    await log_in(phone, "wang-grid")
    await asyncio.wait_for(held.read.wait(), 15)

    who = console.locator("#dispatch-who")
    await expect(who.locator("option").first).to_have_attribute("value", "wang-grid")
    await who.select_option("wang-grid")
    await console.click("#dispatch-go")
    await expect(console.locator("#field-panel .field-order")).to_have_count(1)
    await asyncio.wait_for(held.handed.wait(), 15)
    for _ in range(3):  # the page's own turns: the list read, parsed and applied
        await phone.evaluate("() => new Promise((r) => setTimeout(r, 0))")
    await expect(phone.locator(".order-item.st-dispatched")).to_have_count(1, timeout=1)
    await expect(phone.locator("#no-orders")).to_be_hidden()
