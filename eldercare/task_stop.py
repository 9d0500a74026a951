"""Stopping a task that may swallow its cancellation.

On Python 3.11 `asyncio.wait_for` returns the result instead of raising when what it
waits for completes at the moment it is cancelled, and a task awaiting another task
loses its own cancellation when the inner one swallows it. nats-py's `fetch` waits that
way, so a consumer that is cancelled while messages keep arriving can simply go on
fetching, and `await task` after one `cancel()` never returns: a detector worker's
partition hand-over hung like that at 10,000 homes. So the cancellation is repeated
until the task has ended.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

RECANCEL_S = 0.5  # how often a swallowed cancellation is repeated


async def cancel_and_wait(task: asyncio.Task[Any], every_s: float = RECANCEL_S) -> None:
    """Cancel `task` until it is done, then collect it (its CancelledError suppressed;
    any other exception it ended with is raised)."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=every_s)
    with contextlib.suppress(asyncio.CancelledError):
        await task
