"""The field loops are `Periodic`s: the deadline heartbeat and one loop per figures job,
a job running on its own interval of the platform's clock and reporting a failed write
until a later write succeeds."""

from __future__ import annotations

import pytest

from eldercare.clock import FakeClock
from eldercare.errors import EldercareError
from field_service.timers import FiguresNotWritten, JobGate

T0 = 1_795_000_000.0


class FlakyJob:
    name = "coverage"
    every_s = 900.0

    def __init__(self) -> None:
        self.runs: list[float] = []
        self.fail = False

    async def run(self, now: float) -> int:
        self.runs.append(now)
        if self.fail:
            raise ConnectionError("influx away")
        return 1


async def test_a_job_runs_once_per_interval_of_the_clock() -> None:
    clock, job = FakeClock(T0), FlakyJob()
    gate = JobGate(job, clock)
    await gate()
    clock.advance(899)
    await gate()
    clock.advance(1)
    await gate()
    assert job.runs == [T0, T0 + 900]


async def test_a_failed_write_is_reported_until_a_write_succeeds() -> None:
    clock, job = FakeClock(T0), FlakyJob()
    gate = JobGate(job, clock)
    job.fail = True
    with pytest.raises(ConnectionError):
        await gate()
    clock.advance(5)
    with pytest.raises(FiguresNotWritten, match="coverage not written"):
        await gate()  # not retried before its interval, but still failing
    assert issubclass(FiguresNotWritten, EldercareError)
    job.fail = False
    clock.advance(900)
    await gate()
    clock.advance(5)
    await gate()  # healthy again
    assert job.runs == [T0, T0 + 905]
