"""The console loads its whole queue when the live stream (re)connects. An SOS streamed
while that list is on its way must stay in the queue when the list, read before the SOS,
arrives (it vanished: seen in CI as an empty queue under "2 open alerts"). Chromium holds
the list until the page has received the SOS on its stream (DevTools' EventSource
messages), then hands it over."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.helpers.browser import Platform, hold_response_until_streamed, log_in, new_page

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.asyncio(loop_scope="session"),
]


async def test_an_sos_streamed_while_the_queue_loads_stays_in_the_queue(
    platform: Platform, browser: Any
) -> None:
    from playwright.async_api import expect

    console = await new_page(browser, platform.url, "en")
    # The queue's list, read before the SOS, handed over once the page has the SOS.
    held = await hold_response_until_streamed(console, "**/api/alerts?handling=open*", "alert")
    await log_in(console, "op-bincheng")
    await asyncio.wait_for(held.read.wait(), 15)
    await expect(console.locator("#queue .row")).to_have_count(0)
    async with console.expect_request("**/api/overview*"):  # the list applied, then this
        await platform.raise_sos("hh-401", "zhang-xiuying")
        await asyncio.wait_for(held.handed.wait(), 15)
    await expect(console.locator("#queue .row")).to_have_count(1, timeout=1)
    await expect(console.locator("#queue .row .kind")).to_have_text("SOS call")
    await expect(console.locator("#queue-empty")).to_be_hidden()
