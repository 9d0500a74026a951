"""One periodic task: start, cancel, record each tick, survive a failed tick.

Every loop of the platform that must keep running (detector timers, snapshot
saves, the alert pipeline's timers, status reports, the registry watch, spool and
outbox drains, the unregistered-device flush) is a `Periodic`, so none can be
forgotten at start-up or die silently: each tick is reported to `eldercare.health`,
where a loop that has not ticked within `overdue_after_s` (by default three
periods, at least 30 s) turns `/healthz` unhealthy and shows in `/metrics`.

A tick that raises is counted and the loop goes on at its next period; the error is
kept on the loop's health entry. It is logged once per streak of failures (a locked
store fails every tick) and the recovery once, with how many ticks failed; a loop
whose errors need their own logging (short, rate-limited) passes `on_error`. `wake()`
runs the next tick at once (the alert pipeline wakes its timers when a transition
arrives).

`sleep` is injectable so unit tests drive the loop on a fake clock without waiting.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from eldercare import metrics
from eldercare.health import HEALTH, HealthRegistry
from eldercare.logs import get_logger
from eldercare.task_stop import cancel_and_wait

log = get_logger(__name__)

_failures = metrics.counter("loop_failures_total", "Ticks of a periodic loop that raised", ["loop"])

Sleep = Callable[[float], Awaitable[None]]


class Periodic:
    def __init__(
        self,
        name: str,
        body: Callable[[], Awaitable[object]],
        every_s: float,
        *,
        first_after_s: float | None = None,
        overdue_after_s: float | None = None,
        health: HealthRegistry = HEALTH,
        sleep: Sleep | None = None,
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        """`body` runs every `every_s` seconds, the first time after `first_after_s`
        (default: one period). `on_error`, when given, logs a failed tick instead of the
        loop (it is still counted and kept on the health entry)."""
        if every_s <= 0:
            raise ValueError(f"{name}: every_s must be positive, not {every_s}")
        self.name = name
        self.body = body
        self.every_s = every_s
        self.first_after_s = every_s if first_after_s is None else first_after_s
        self.overdue_after_s = (
            overdue_after_s if overdue_after_s is not None else max(3 * every_s, 30.0)
        )
        self.health = health
        self._sleep = sleep
        self.on_error = on_error
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.ticks = 0
        self.failing = 0  # consecutive ticks that raised
        self._stopping = False

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start the loop (idempotent)."""
        if self.running:
            return
        self.health.loop_started(self.name, self.every_s, self.overdue_after_s)
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name=self.name)
        self._task.add_done_callback(self._ended)

    async def stop(self) -> None:
        """Cancel the loop and wait for it to end. A body may swallow its cancellation
        (on Python 3.11 `asyncio.wait_for` does when what it waits for completes at the
        same moment), so the loop also ends at its next check of `_stopping`, and the
        cancellation is repeated until the task is done."""
        task, self._task = self._task, None
        self._stopping = True
        if task is not None:
            await cancel_and_wait(task)
        self.health.loop_stopped(self.name)

    def wake(self) -> None:
        """Run the next tick now instead of at the end of the period."""
        self._wake.set()

    async def tick_now(self) -> None:
        """One tick, as the loop runs it (recorded; an exception logged, not raised)."""
        try:
            await self.body()
        except Exception as exc:  # the loop outlives one bad tick; the error is visible
            _failures.inc(loop=self.name)
            self.failing += 1
            if self.on_error is not None:
                self.on_error(exc)
            elif self.failing == 1:  # once per streak
                log.exception(
                    "periodic task failed; retrying every %s s",
                    self.every_s,
                    extra={"loop": self.name},
                )
            self.health.loop_ticked(self.name, error=repr(exc)[:300])
        else:
            if self.failing:
                log.warning(
                    "periodic task works again", extra={"loop": self.name, "failed": self.failing}
                )
            self.failing = 0
            self.health.loop_ticked(self.name)
        self.ticks += 1

    async def _wait(self, seconds: float) -> None:
        if self._sleep is not None:
            await self._sleep(seconds)
            return
        # Not `wait_for`: on Python 3.11 it can swallow a cancellation (`stop`) that arrives
        # together with a wake.
        waiter = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({waiter}, timeout=seconds)
        finally:
            waiter.cancel()

    async def _run(self) -> None:
        delay = self.first_after_s
        while True:
            await self._wait(delay)
            if self._stopping:
                return
            self._wake.clear()
            await self.tick_now()
            if self._stopping:
                return
            delay = self.every_s

    def _ended(self, task: asyncio.Task[None]) -> None:
        # Only a bug (a BaseException out of the body) ends the loop other than `stop`.
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            log.error("periodic task ended", exc_info=error, extra={"loop": self.name})
            self.health.loop_died(self.name, repr(error)[:300])
