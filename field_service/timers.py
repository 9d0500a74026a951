"""The field service's loops: the deadline heartbeat and the figures jobs.

`FieldTimers.tick()` advances the order timers, delivers notices and tells responders
of orders newly assigned to them (`responder_messages`); it is the whole
of the heartbeat, so a test drives it with a fake clock. `start()` runs it every
`every_s` seconds of the live process as an `eldercare.periodic.Periodic`
(`field-timers`), and each figures job (visit coverage, response figures to InfluxDB)
as a loop of its own (`field-<name>`), so a slow or failing InfluxDB write never holds
up a deadline and shows on `/healthz`.

A job runs once its own interval has passed on the platform's clock (event time in a
replay). A failed run is retried at its next interval; until then the job's loop
keeps reporting the failure, so health stays truthful while InfluxDB is away.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from eldercare.clock import Clock
from eldercare.errors import EldercareError
from eldercare.periodic import Periodic
from field_service.notices import NoticeSink, deliver_pending
from field_service.orders import Notice, OrderStore


class PeriodicJob(Protocol):
    """Figures written every `every_s` seconds of the platform's clock."""

    name: str
    every_s: float

    async def run(self, now: float) -> int:
        """Write the figures as of `now`; the number of points written."""
        ...


class FiguresNotWritten(EldercareError):
    """A figures job's last run failed; it is retried at its next interval."""


class JobGate:
    """Runs `job` when its interval has passed on `clock`; between runs, repeats the
    last run's failure (if any) so the loop stays failing until a run succeeds."""

    def __init__(self, job: PeriodicJob, clock: Clock) -> None:
        self.job = job
        self._clock = clock
        self._last_run: float | None = None
        self._failure: str | None = None

    async def __call__(self) -> None:
        now = self._clock.now()
        if self._last_run is not None and now - self._last_run < self.job.every_s:
            if self._failure is not None:
                raise FiguresNotWritten(self._failure)
            return
        self._last_run = now
        try:
            await self.job.run(now)
        except Exception as exc:  # InfluxDB away: the next interval tries again
            self._failure = f"{self.job.name} not written at {now:.0f}: {exc!r}"[:300]
            raise
        self._failure = None


class FieldTimers:
    def __init__(
        self,
        store: OrderStore,
        sink: NoticeSink,
        clock: Clock,
        every_s: float = 5.0,
        jobs: Sequence[PeriodicJob] = (),
        messenger: Callable[[float], Awaitable[int]] | None = None,
    ) -> None:
        self.jobs = tuple(jobs)
        self._messenger = messenger
        self._store = store
        self._sink = sink
        self._clock = clock
        self.loops = [
            Periodic("field-timers", self.tick, every_s, first_after_s=0),
            *(
                Periodic(
                    f"field-{job.name}",
                    JobGate(job, clock),
                    every_s,
                    first_after_s=0,
                    overdue_after_s=max(3 * job.every_s, 30.0),
                )
                for job in self.jobs
            ),
        ]

    async def tick(self) -> list[Notice]:
        fired = await self._store.advance(self._clock.now())
        await deliver_pending(self._store, self._sink, self._clock.now())
        if self._messenger is not None:
            # New orders to responders whose page is closed (SMS, Apprise).
            await self._messenger(self._clock.now())
        return fired

    async def start(self) -> None:
        for loop in self.loops:
            loop.start()

    async def stop(self) -> None:
        for loop in self.loops:
            await loop.stop()
