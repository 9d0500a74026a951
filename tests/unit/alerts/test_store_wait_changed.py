"""`AlertStore.wait_changed` must not lose a cancellation that arrives as a write wakes
it: the live stream's waker loop is stopped that way, and on Python 3.11 a
`wait_for`-based wait returned normally instead, so the loop went on and the
platform's stop never returned."""

from __future__ import annotations

import asyncio

from alerts.store import AlertStore
from eldercare.db import create_engine


async def turns(n: int) -> None:
    """Let the event loop run `n` turns (no time passes)."""
    for _ in range(n):
        await asyncio.sleep(0)


async def test_a_cancellation_as_a_write_wakes_the_waiter_is_not_lost() -> None:
    engine = create_engine("sqlite+aiosqlite:///:memory:")
    store = AlertStore(engine)
    lost = cancelled = 0
    try:
        # Every interleaving of "a write notifies" and "the waiter is cancelled" that the
        # event loop can produce within a few turns.
        for before_notify in range(5):
            for before_cancel in range(8):
                waiter = asyncio.create_task(store.wait_changed(60.0))
                await turns(2)
                assert store._changed._waiters, "the waiter waits on the condition"
                await turns(before_notify)
                write = asyncio.create_task(store._notify_changed())
                await turns(before_cancel)
                if not waiter.done():
                    waiter.cancel()
                    cancelled += 1
                    try:
                        await waiter
                        lost += 1
                    except asyncio.CancelledError:
                        pass
                await write
    finally:
        await engine.dispose()
    assert cancelled > 0, "no interleaving cancelled a waiting waiter"
    assert lost == 0, f"{lost} of {cancelled} cancellations were lost"
