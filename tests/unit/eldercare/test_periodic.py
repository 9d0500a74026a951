"""The periodic-task helper and the health registry, on a fake clock: no test waits for
time to pass; each period is released by hand and the loop is seen back at its sleep."""

from __future__ import annotations

import asyncio
import logging

import pytest

from eldercare.clock import FakeClock
from eldercare.health import HealthRegistry
from eldercare.periodic import Periodic


class FakeSleeper:
    """An injected `sleep`: each call waits until the test releases it, advancing the clock."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.asked: asyncio.Queue[tuple[float, asyncio.Future[None]]] = asyncio.Queue()
        self._held: tuple[float, asyncio.Future[None]] | None = None

    async def __call__(self, seconds: float) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self.asked.put((seconds, done))
        await done

    async def _next(self) -> tuple[float, asyncio.Future[None]]:
        held, self._held = self._held, None
        if held is not None:
            return held
        return await asyncio.wait_for(self.asked.get(), 5)

    async def period(self) -> float:
        """Let the loop's current sleep end; return once it sleeps again (its tick done)."""
        seconds, done = await self._next()
        self.clock.advance(seconds)
        done.set_result(None)
        self._held = await asyncio.wait_for(self.asked.get(), 5)
        return seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def health(clock: FakeClock) -> HealthRegistry:
    return HealthRegistry(monotonic=clock.now, wall=clock.now)


async def test_ticks_every_period_and_reports_each_tick(
    clock: FakeClock, health: HealthRegistry
) -> None:
    calls: list[float] = []

    async def body() -> None:
        calls.append(clock.now())

    sleeper = FakeSleeper(clock)
    loop = Periodic("demo", body, 5.0, first_after_s=1.0, health=health, sleep=sleeper)
    loop.start()
    start = clock.now()
    assert await sleeper.period() == 1.0
    assert await sleeper.period() == 5.0
    assert calls == [start + 1.0, start + 6.0]
    (entry,) = health.loops()
    assert entry.name == "demo" and entry.last_tick_wall == start + 6.0
    assert health.loop_age(entry) == 0.0
    assert health.problems() == []
    await loop.stop()
    assert health.loops() == [], "a stopped loop is no longer watched"


async def test_a_failing_tick_is_recorded_and_the_loop_goes_on(
    clock: FakeClock, health: HealthRegistry
) -> None:
    outcomes = iter([RuntimeError("database locked"), None, None])
    ran = 0

    async def body() -> None:
        nonlocal ran
        ran += 1
        error = next(outcomes)
        if error is not None:
            raise error

    sleeper = FakeSleeper(clock)
    loop = Periodic("flaky", body, 2.0, health=health, sleep=sleeper)
    loop.start()
    await sleeper.period()
    (entry,) = health.loops()
    assert entry.last_error is not None and "database locked" in entry.last_error
    assert loop.running
    await sleeper.period()
    assert ran == 2
    assert health.loops()[0].last_error is None
    await loop.stop()


async def test_a_loop_failing_for_longer_than_its_bound_is_a_problem(
    clock: FakeClock, health: HealthRegistry
) -> None:
    async def body() -> None:
        raise OSError("too many SQL variables")

    sleeper = FakeSleeper(clock)
    loop = Periodic(
        "unregistered-flush", body, 5.0, overdue_after_s=15.0, health=health, sleep=sleeper
    )
    loop.start()
    for _ in range(4):  # fails at +5, +10, +15, +20: failing for 15 s, not more
        await sleeper.period()
    assert health.problems() == []
    await sleeper.period()
    (problem,) = health.problems()
    assert problem.part == "loop:unregistered-flush"
    assert "failing for 20 s" in problem.reason and "too many SQL variables" in problem.reason
    await loop.stop()


async def test_a_stuck_tick_makes_the_loop_overdue(
    clock: FakeClock, health: HealthRegistry
) -> None:
    release = asyncio.Event()
    entered = asyncio.Event()

    async def body() -> None:
        entered.set()
        await release.wait()  # e.g. a lock held by a hung write

    sleeper = FakeSleeper(clock)
    loop = Periodic("detector-ticks", body, 1.0, overdue_after_s=10.0, health=health, sleep=sleeper)
    loop.start()
    seconds, done = await sleeper._next()
    clock.advance(seconds)
    done.set_result(None)
    await asyncio.wait_for(entered.wait(), 5)
    clock.advance(9.0)
    assert health.problems() == [], "10 s since start: not yet overdue"
    clock.advance(2.0)
    (problem,) = health.problems()
    assert problem.part == "loop:detector-ticks"
    assert "has not ticked" in problem.reason
    release.set()
    await asyncio.wait_for(sleeper.asked.get(), 5)  # back at its sleep: ticked
    assert health.problems() == []
    await loop.stop()


async def test_a_loop_that_ends_by_a_bug_is_reported_dead(
    clock: FakeClock, health: HealthRegistry
) -> None:
    class Bug(BaseException):
        pass

    async def body() -> None:
        raise Bug("not an Exception: escapes the per-tick guard")

    sleeper = FakeSleeper(clock)
    loop = Periodic("buggy", body, 1.0, health=health, sleep=sleeper)
    loop.start()
    _, done = await sleeper._next()
    done.set_result(None)
    task = loop._task
    assert task is not None
    with pytest.raises(Bug):
        await task
    (problem,) = health.problems()
    assert problem.part == "loop:buggy" and "loop stopped" in problem.reason


async def test_wake_runs_the_next_tick_at_once(health: HealthRegistry) -> None:
    ticked = asyncio.Event()

    async def body() -> None:
        ticked.set()

    loop = Periodic("woken", body, 3600.0, health=health)  # the real wait, an hour long
    loop.start()
    loop.wake()
    await asyncio.wait_for(ticked.wait(), 5)
    assert loop.ticks == 1
    await loop.stop()


def test_impaired_parts_name_reason_and_since(clock: FakeClock, health: HealthRegistry) -> None:
    start = clock.now()
    health.impaired("influx", "write hung for 12 s")
    clock.advance(30)
    health.impaired("influx", "write hung for 42 s")  # the first report's time stays
    health.impaired("alert_store", "database is locked", since=start + 10)
    problems = health.problems()
    assert [(p.part, p.reason, p.since) for p in problems] == [
        ("influx", "write hung for 42 s", start),
        ("alert_store", "database is locked", start + 10),
    ]
    health.restored("influx")
    assert [p.part for p in health.problems()] == ["alert_store"]


async def test_a_failing_streak_is_logged_once_and_its_end_once(
    clock: FakeClock, health: HealthRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    """A locked store fails every tick: one line when the streak starts, one when it ends."""
    outcomes = iter([RuntimeError("database is locked")] * 3 + [None])

    async def body() -> None:
        error = next(outcomes)
        if error is not None:
            raise error

    sleeper = FakeSleeper(clock)
    loop = Periodic("alerts-timers", body, 1.0, health=health, sleep=sleeper)
    with caplog.at_level(logging.INFO, logger="eldercare.periodic"):
        loop.start()
        for _ in range(4):
            await sleeper.period()
        await loop.stop()
    lines = [r.getMessage() for r in caplog.records if r.name == "eldercare.periodic"]
    assert lines == ["periodic task failed; retrying every 1.0 s", "periodic task works again"]
    assert caplog.records[-1].__dict__["failed"] == 3


async def test_on_error_logs_instead_of_the_loop_and_the_failure_is_still_recorded(
    clock: FakeClock, health: HealthRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[Exception] = []

    async def body() -> None:
        raise OSError("x" * 5000)

    sleeper = FakeSleeper(clock)
    loop = Periodic("flush", body, 1.0, health=health, sleep=sleeper, on_error=seen.append)
    with caplog.at_level(logging.INFO, logger="eldercare.periodic"):
        loop.start()
        await sleeper.period()
        await sleeper.period()
        (entry,) = health.loops()
        await loop.stop()
    assert len(seen) == 2 and loop.failing == 2
    assert entry.last_error is not None and len(entry.last_error) == 300
    assert [r for r in caplog.records if r.name == "eldercare.periodic"] == []


async def test_a_watched_task_that_ends_impairs_its_part(health: HealthRegistry) -> None:
    async def consumer() -> None:
        raise ValueError("decoder bug")

    async def forever() -> None:
        await asyncio.Event().wait()

    ended = asyncio.create_task(consumer(), name="ingest-consume")
    cancelled = asyncio.create_task(forever(), name="ingest-emergencies")
    health.watch(ended, "ingest-consume")
    health.watch(cancelled, "ingest-emergencies")
    await asyncio.wait({ended})
    cancelled.cancel()
    await asyncio.wait({cancelled})
    await asyncio.sleep(0)  # done callbacks run on the next turn
    (problem,) = health.problems()
    assert problem.part == "ingest-consume"
    assert "task ingest-consume ended" in problem.reason and "decoder bug" in problem.reason


async def test_stop_ends_a_loop_whose_body_swallowed_its_cancellation(
    health: HealthRegistry,
) -> None:
    """On Python 3.11 `asyncio.wait_for` returns normally when it is cancelled just as
    what it awaits completes; a loop whose tick did so once went on for ever and its
    `stop()` never returned (a platform's stop hung in the test suite)."""
    waiting = asyncio.Event()
    swallowed = 0

    async def body() -> None:
        nonlocal swallowed
        waiting.set()
        try:
            await asyncio.Event().wait()  # a tick waiting for something that never comes
        except asyncio.CancelledError:
            if swallowed:
                raise
            swallowed += 1  # ...and its cancellation lost once, as `wait_for` can lose it

    loop = Periodic("swallower", body, 0.001, first_after_s=0.0, health=health)
    loop.start()
    task = loop._task
    assert task is not None
    await asyncio.wait_for(waiting.wait(), 5)
    await asyncio.wait_for(loop.stop(), 5)
    assert swallowed == 1
    assert task.done() and not task.cancelled(), "the loop ended by itself, at its check"
