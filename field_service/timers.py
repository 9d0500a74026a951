"""The field deadlines' heartbeat: advance the order timers and deliver notices.

`tick()` is the whole of it, so a test drives it with a fake clock; `start()` runs
it every `every_s` seconds of the live process.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Protocol

from eldercare.clock import Clock
from eldercare.logs import get_logger
from field_service.notices import NoticeSink, deliver_pending
from field_service.orders import Notice, OrderStore

log = get_logger(__name__)


class PeriodicJob(Protocol):
    async def maybe_run(self, now: float) -> None:
        """Run if its own interval has passed since its last run."""
        ...


class FieldTimers:
    def __init__(
        self,
        store: OrderStore,
        sink: NoticeSink,
        clock: Clock,
        every_s: float = 5.0,
        jobs: Sequence[PeriodicJob] = (),
    ) -> None:
        self.jobs = tuple(jobs)
        self._store = store
        self._sink = sink
        self._clock = clock
        self._every_s = every_s
        self._task: asyncio.Task[None] | None = None

    async def tick(self) -> list[Notice]:
        fired = await self._store.advance(self._clock.now())
        await deliver_pending(self._store, self._sink, self._clock.now())
        for job in self.jobs:  # figures to InfluxDB: coverage, response
            await job.maybe_run(self._clock.now())
        return fired

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="field-timers")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:  # a store hiccup must not end the timers
                log.exception("field timers tick failed")
            await asyncio.sleep(self._every_s)
