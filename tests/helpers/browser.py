"""Shared parts of the browser tests (Debian's Chromium through Playwright): how the
browser is launched, the gateway platform they drive, an operator's or a family's page
logged in, and a recent day of readings for the family portal."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alerts.pipeline import AlertPipeline
from eldercare.domain import Reading, Stream
from tests.helpers.gateway import PASSWORD, Gateway, sos

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@dataclass
class Platform:
    url: str
    gateway: Gateway
    pipeline: AlertPipeline

    async def raise_sos(self, site: str, resident: str, room: str = "bedroom") -> None:
        await self.pipeline.handle_transitions([sos(site, resident, time.time(), room)])


def recent_day(now: float) -> list[Reading]:
    def r(device: str, stream: Stream, ago_min: float, room: str, **fields: Any) -> Reading:
        return Reading("hh-401", device, stream, now - ago_min * 60, fields, room_id=room)

    readings = [
        r("hh401-bed", Stream.OCCUPANCY, 600, "bedroom", occupied=False),
        r("hh401-door", Stream.CONTACT, 300, "entrance", open=True),
        r("hh401-door", Stream.CONTACT, 200, "entrance", open=True),
    ]
    for ago in (590, 560, 480, 240, 200, 150, 60, 12):
        readings.append(r("hh401-pir-k", Stream.MOTION, ago, "kitchen", motion=True))
    for ago in (650, 540, 190, 90, 30):
        readings.append(r("hh401-pir-bed", Stream.MOTION, ago, "bedroom", motion=True))
    readings.append(r("hh401-pir-b", Stream.MOTION, 100, "bathroom", motion=True))
    return readings


async def open_page(browser: Any, base: str, username: str, lang: str, **ctx: Any) -> Any:
    """A new browser context logged in as `username`, its first visit in `lang`."""
    page = await new_page(browser, base, lang, **ctx)
    await log_in(page, username)
    return page


async def new_page(browser: Any, base: str, lang: str, **ctx: Any) -> Any:
    """A page in a new browser context, not yet visited (routes may be set on it first);
    its first visit will be in `lang`."""
    context = await browser.new_context(
        locale=lang, base_url=base, timezone_id="Asia/Shanghai", **ctx
    )
    # The first visit's language; a switch on the page is then remembered.
    await context.add_init_script(
        "if (!localStorage.getItem('eldercare.lang')) "
        f"localStorage.setItem('eldercare.lang', '{lang}')"
    )
    page = await context.new_page()
    page.set_default_timeout(5000)
    page.on("pageerror", lambda exc: print("page error:", exc))
    page.on("console", lambda msg: print("console:", msg.text) if msg.type == "error" else None)
    return page


async def log_in(page: Any, username: str) -> None:
    await page.goto("/login")
    await page.fill("#username", username)
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")


@dataclass
class HeldResponse:
    """One response held back from a page: read from the server (`read`), handed to the
    page only once the page has received `event` on its server-sent stream (`handed`).
    For a test of what a page does when a stream event overtakes a response read before
    it (DevTools reports EventSource messages, so no waiting on a clock)."""

    read: asyncio.Event
    handed: asyncio.Event


async def hold_response_until_streamed(
    page: Any, url: str, event: str, nth: int = 1
) -> HeldResponse:
    """Hold the `nth` request to `url` (a glob) as `HeldResponse` says; others pass."""
    held = HeldResponse(asyncio.Event(), asyncio.Event())
    streamed = asyncio.Event()
    seen = 0

    async def route_handler(route: Any) -> None:
        nonlocal seen
        seen += 1
        if seen != nth:
            await route.continue_()
            return
        response = await route.fetch()
        held.read.set()
        await streamed.wait()
        await route.fulfill(response=response)
        held.handed.set()

    await page.route(url, route_handler)
    devtools = await page.context.new_cdp_session(page)
    await devtools.send("Network.enable")
    devtools.on(
        "Network.eventSourceMessageReceived",
        lambda msg: streamed.set() if msg.get("eventName") == event else None,
    )
    return held


ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


async def screenshot(page: Any, name: str) -> None:
    """A screenshot in test-artifacts/, for a person to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=False)
