"""Driving Debian's Chromium in the end-to-end tests: launch arguments, a day of
readings for the activity views, a logged-in page in one language, screenshots to
test-artifacts/ for a person to look at. The `browser` fixture is in e2e/conftest.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eldercare.domain import Reading, Stream
from tests.helpers.gateway import PASSWORD

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
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


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
    """A new page of `base` logged in as `username`, first shown in `lang`."""
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
    await page.goto("/login")
    await page.fill("#username", username)
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    return page


async def screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=False)
