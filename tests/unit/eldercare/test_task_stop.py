"""`cancel_and_wait`: a task that swallows its cancellation (as nats-py's fetch can on
Python 3.11) is cancelled again until it ends, instead of being awaited for ever."""

from __future__ import annotations

import asyncio

import pytest

from eldercare.task_stop import cancel_and_wait


async def test_a_task_that_swallows_its_cancellation_is_cancelled_again() -> None:
    swallowed = 0
    ticks = asyncio.Event()

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                ticks.set()
                await asyncio.Event().wait()  # never set: only a cancellation ends this
            except asyncio.CancelledError:
                if swallowed < 2:
                    swallowed += 1  # as a fetch whose message arrived at the same moment
                    continue
                raise

    task = asyncio.create_task(stubborn())
    await ticks.wait()
    async with asyncio.timeout(5):  # one cancel and `await task` would never return
        await cancel_and_wait(task, every_s=0.01)
    assert task.cancelled() and swallowed == 2


async def test_an_error_the_task_ended_with_is_raised() -> None:
    async def failing() -> None:
        raise ValueError("boom")

    task = asyncio.create_task(failing())
    await asyncio.wait({task})
    with pytest.raises(ValueError, match="boom"):
        await cancel_and_wait(task)
