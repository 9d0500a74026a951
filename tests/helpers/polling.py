"""Waiting for an outcome in a test: poll it until it holds, with a deadline (a bounded
wait for something to happen, never a sleep for time to pass)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def wait_for(
    check: Callable[[], Awaitable[Any]],
    within_s: float = 10.0,
    what: str = "condition",
    every_s: float = 0.05,
) -> Any:
    """Poll `check` until its result is truthy and return that result; fail the test
    after `within_s` seconds."""
    deadline = time.monotonic() + within_s
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within_s:g} s waiting for {what}")
        await asyncio.sleep(every_s)
