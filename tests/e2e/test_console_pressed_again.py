"""A second press is news on the console, in Debian's Chromium: the operator
acknowledges an SOS, the resident presses again, and the row comes back open,
flashing, sounding, marked "再次按下" (the real app under uvicorn, the real alert
pipeline and store)."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pytest

from eldercare.domain import TransitionAction
from tests.helpers.browser import Platform, open_page
from tests.helpers.gateway import sos

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.asyncio(loop_scope="session"),
]

# Counts the console's beeps: each is three oscillator tones.
COUNT_TONES = """
window.__tones = 0;
const Ctx = window.AudioContext || window.webkitAudioContext;
if (Ctx) {
  const make = Ctx.prototype.createOscillator;
  Ctx.prototype.createOscillator = function () {
    window.__tones++;
    return make.apply(this, arguments);
  };
}
"""


async def test_a_second_press_comes_back_open_flashing_sounding_and_marked(
    platform: Platform, browser: Any
) -> None:
    from playwright.async_api import expect

    console = await open_page(
        browser, platform.url, "op-bincheng", "zh-CN", viewport={"width": 1440, "height": 900}
    )
    await console.context.add_init_script(COUNT_TONES)
    await console.wait_for_url("**/console")
    await console.reload()  # with the tone counter in place
    await expect(console.locator("#conn")).to_have_class("conn live")

    first = sos("hh-401", "zhang-xiuying", time.time())
    await platform.pipeline.handle_transitions([first])
    row = console.locator("#queue .row").first
    await expect(row).to_have_class("row sev-critical selected flash", timeout=2000)
    await expect(row.locator(".again")).to_have_count(0)
    await console.keyboard.press("a")  # acknowledge (a gesture: sound may play now)
    await expect(row.locator(".timer")).to_have_text("已接警")
    await expect(row).not_to_have_class("row sev-critical selected flash")
    quiet = await console.evaluate("window.__tones")

    again = dataclasses.replace(first, action=TransitionAction.UPDATE, ts=first.ts + 5)
    await platform.pipeline.handle_transitions([again])
    await expect(row).to_have_class("row sev-critical selected flash", timeout=2000)
    await expect(row.locator(".again")).to_have_text("再次按下")
    await expect(console.locator(".detail-head .again")).to_have_text("再次按下")
    await expect(console.locator(".history")).to_contain_text("再次发生")
    # Sounded: the re-raise beeps at once (three tones per beep), not only at the 3 s repeat.
    await console.wait_for_function(f"window.__tones > {quiet}", timeout=2000)
    await console.context.close()
