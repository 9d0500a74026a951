"""Fixtures of the browser tests: Debian's Chromium, and the gateway it drives (the real
app under uvicorn, the real alert pipeline and store, a real InfluxDB with a recent day
of readings). A test module with a `platform` fixture of its own uses that one."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from alerts.pipeline import AlertPipeline
from eldercare.clock import WallClock
from eldercare.influx import InfluxClient, point_for_reading
from eldercare.settings import Settings
from tests.helpers.browser import ARGS, CHROMIUM, Platform, recent_day
from tests.helpers.gateway import build_gateway, current_index, db_url, serve


@pytest.fixture
async def platform(tmp_path: Path, influx_url: str) -> AsyncIterator[Platform]:
    db = f"gw_{secrets.token_hex(4)}"
    influx = InfluxClient(influx_url)
    await influx.query(f'CREATE DATABASE "{db}"')
    await influx.write([point_for_reading(x) for x in recent_day(time.time())], db)
    clock = WallClock()
    settings = Settings(
        run_dir=tmp_path / "run",
        database_url=db_url(tmp_path),
        influx_url=influx_url,
        influx_db=db,
    )
    gateway = await build_gateway(settings, clock, influx=influx)
    pipeline = AlertPipeline(
        gateway.store, lambda: current_index(gateway.index), clock, public_url="http://x"
    )
    async with serve(gateway.app) as url:
        yield Platform(url, gateway, pipeline)
    await influx.query(f'DROP DATABASE "{db}"')
    await influx.aclose()
    await gateway.engine.dispose()


@pytest.fixture(scope="package")
async def chromium() -> AsyncIterator[Any]:
    """One Chromium for the e2e tests (closed when they are done, before the other
    folders run): starting Playwright's driver and the browser cost 2 to 4 s a test on a
    loaded machine. Tests never share pages: see `browser`."""
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        await b.close()


@pytest.fixture
async def browser(chromium: Any) -> AsyncIterator[Any]:
    """The session's Chromium for one test. Each test opens browser contexts of its own
    (no cookie, storage or page is shared) and they are closed when it ends, as closing
    a browser of its own would: no page of a finished test keeps polling or streaming."""
    yield chromium
    for context in list(chromium.contexts):
        await context.close()
