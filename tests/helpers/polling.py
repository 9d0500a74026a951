"""Waiting for an outcome in a test: poll it until it holds, with a deadline (a bounded
wait for something to happen, never a sleep for time to pass). The one polling helper of
the tests."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def wait_for(
    check: Callable[[], Awaitable[Any]] | Callable[[], Any],
    within_s: float = 10.0,
    what: str = "condition",
    every_s: float = 0.05,
    *,
    detail: Callable[[], str] | None = None,
) -> Any:
    """Poll `check` (a plain or an async function) until its result is truthy and return
    that result; fail the test after `within_s` seconds, with `detail()` (a process's log
    tail, say) added to the message."""
    deadline = time.monotonic() + within_s
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            message = f"timed out after {within_s:g} s waiting for {what}"
            raise AssertionError(f"{message}\n{detail()}" if detail is not None else message)
        await asyncio.sleep(every_s)
