"""Password hashing off the event loop, a few at a time.

An argon2 check takes 0.15-0.3 s of CPU by design. Run on the event loop, each one
stalls everything else that loop carries (alerts, the live stream); so checks and
new hashes run on a small dedicated thread pool, and when more are already waiting
than the pool can work off quickly, a sign-in is told to come back (503) instead of
queueing without bound.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from eldercare.errors import EldercareError

T = TypeVar("T")

HASH_WORKERS = 2  # at most this many hashes at once: the rest of the process keeps a core
MAX_WAITING = 32  # queued beyond this, a sign-in gets 503 and Retry-After

_pool = ThreadPoolExecutor(max_workers=HASH_WORKERS, thread_name_prefix="password-hash")
_in_flight = 0


class HashingBusy(EldercareError, RuntimeError):
    """Too many password checks are already waiting."""


async def off_loop(fn: Callable[..., T], *args: object) -> T:
    """`fn(*args)` on the hashing pool; HashingBusy when the queue is full."""
    global _in_flight
    if _in_flight >= HASH_WORKERS + MAX_WAITING:
        raise HashingBusy("too many sign-ins at once; try again shortly")
    _in_flight += 1
    try:
        return await asyncio.get_running_loop().run_in_executor(_pool, functools.partial(fn, *args))
    finally:
        _in_flight -= 1
