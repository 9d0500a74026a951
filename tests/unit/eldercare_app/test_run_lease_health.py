"""The run lease's renewal is a `Periodic` watched by health: renewed every `ttl_s / 3`,
overdue once it has failed for a whole `ttl_s`; a lease taken over is a health problem
until it is released. Real SQLite; the lease's own clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from eldercare.db import create_all, create_engine, session_factory
from eldercare.health import HEALTH
from eldercare_app.run_lease import LEASE_PART, RunLease, Sessions


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[Sessions]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/store.db")
    await create_all(engine)
    yield session_factory(engine)
    await engine.dispose()


def lease_problems() -> list[str]:
    return [p.reason for p in HEALTH.problems() if p.part == LEASE_PART]


async def test_the_renewal_loop_is_bounded_by_the_ttl(sessions: Sessions) -> None:
    lease = RunLease(sessions, ttl_s=30)
    loop = lease.renewal()
    assert (loop.name, loop.every_s, loop.overdue_after_s) == ("run-lease", 10.0, 30.0)


async def test_a_lease_taken_over_is_a_health_problem_until_released(sessions: Sessions) -> None:
    clock = Clock(1_770_000_000.0)
    first = RunLease(sessions, ttl_s=30, now=clock)
    second = RunLease(sessions, ttl_s=30, now=clock)
    await first.acquire()
    loop = first.renewal()
    await loop.tick_now()
    assert lease_problems() == [] and not first.lost.is_set()
    clock.t += 31  # the first was paused past its expiry: the second takes over
    await second.acquire()
    await loop.tick_now()
    assert first.lost.is_set()
    assert lease_problems() == ["run lease taken over by another process"]
    await loop.tick_now()  # lost: nothing more to renew, and no error
    assert loop.failing == 0
    await first.release()
    assert lease_problems() == []
    await second.release()
