"""One `eldercare run` per store: a lease row that names its holder.

Two platforms on one store would take the MQTT session from each other and write
every alert twice. At start `eldercare run` takes the lease (`platform_lease`, one
row per role) or refuses, naming the holder's host, pid and start time. The holder
renews it every `ttl_s / 3`; a holder that was killed with `kill -9` stops renewing,
and its lease is free once `ttl_s` has passed, so a crash never blocks a restart
for long. A holder that finds its lease taken over (it was paused past the expiry)
is told so and must stop. Wall-clock time: the lease is between processes, perhaps
on different hosts, not about event time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Float, Integer, String, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from eldercare import health
from eldercare.db import Base
from eldercare.errors import EldercareError
from eldercare.logs import get_logger
from eldercare.periodic import Periodic

log = get_logger(__name__)

Sessions = async_sessionmaker[AsyncSession]
ROLE = "platform"  # the single role until the scale-out issue's cluster mode
TTL_S = 30.0
LEASE_PART = "run_lease"  # its part in `eldercare.health`


class LeaseRow(Base):
    __tablename__ = "platform_lease"

    role: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(128))
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[float] = mapped_column(Float)
    renewed_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)


@dataclass(frozen=True, slots=True)
class Holder:
    owner: str
    host: str
    pid: int
    started_at: float
    renewed_at: float
    expires_at: float

    def describe(self, now: float) -> str:
        started = datetime.fromtimestamp(self.started_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        return (
            f"host {self.host} pid {self.pid}, started {started}, renewed "
            f"{max(0.0, now - self.renewed_at):.0f} s ago, expires in "
            f"{max(0.0, self.expires_at - now):.0f} s unless renewed"
        )


class LeaseHeld(EldercareError, RuntimeError):
    """Another running platform holds the store."""

    def __init__(self, holder: Holder, now: float) -> None:
        self.holder = holder
        super().__init__(
            f"another `eldercare run` is using this store ({holder.describe(now)}); stop it "
            "first. If it was killed, its lease expires by itself."
        )


def _holder(row: LeaseRow) -> Holder:
    return Holder(row.owner, row.host, row.pid, row.started_at, row.renewed_at, row.expires_at)


class RunLease:
    """This process's claim on the store (`acquire`, then `keep` renewing, `release`)."""

    def __init__(
        self,
        sessions: Sessions,
        *,
        ttl_s: float = TTL_S,
        role: str = ROLE,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._sessions = sessions
        self.ttl_s = ttl_s
        self.role = role
        self._now = now
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lost = asyncio.Event()

    async def acquire(self) -> None:
        """Take the lease, or LeaseHeld naming the live holder."""
        now = self._now()
        values = {
            "owner": self.owner,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started_at": now,
            "renewed_at": now,
            "expires_at": now + self.ttl_s,
        }
        async with self._sessions() as session:
            # Compare-and-set: take an expired (or our own) row; else insert a new one.
            taken = await session.execute(
                update(LeaseRow)
                .where(
                    LeaseRow.role == self.role,
                    (LeaseRow.expires_at <= now) | (LeaseRow.owner == self.owner),
                )
                .values(**values)
            )
            if taken.rowcount:  # type: ignore[attr-defined]
                await session.commit()
                return
            session.add(LeaseRow(role=self.role, **values))
            try:
                await session.commit()
                return
            except IntegrityError:
                await session.rollback()
            row = await session.scalar(select(LeaseRow).where(LeaseRow.role == self.role))
        if row is None:  # released between our two statements: try once more
            return await self.acquire()
        raise LeaseHeld(_holder(row), now)

    async def renew(self) -> bool:
        """Extend the lease; False (and `lost` set) if another process took it."""
        now = self._now()
        async with self._sessions() as session:
            result = await session.execute(
                update(LeaseRow)
                .where(LeaseRow.role == self.role, LeaseRow.owner == self.owner)
                .values(renewed_at=now, expires_at=now + self.ttl_s)
            )
            await session.commit()
        if not result.rowcount:  # type: ignore[attr-defined]
            self.lost.set()
            return False
        return True

    def renewal(self) -> Periodic:
        """The loop renewing the lease every `ttl_s / 3` (start it; stop it before
        `release`). A failed renewal (store briefly unreachable) is retried at the next
        turn, while the lease still runs; failing for a whole `ttl_s` (the lease may have
        expired) makes the process unhealthy, as does a lease taken over."""
        return Periodic("run-lease", self._renew_once, self.ttl_s / 3, overdue_after_s=self.ttl_s)

    async def _renew_once(self) -> None:
        if self.lost.is_set():  # taken over: the platform is stopping, nothing to renew
            return
        if not await self.renew():
            log.error("the store's run lease was taken over; this platform must stop")
            health.impaired(LEASE_PART, "run lease taken over by another process")

    async def keep(self) -> None:
        """Renew (`renewal`) until cancelled or lost."""
        loop = self.renewal()
        loop.start()
        try:
            await self.lost.wait()
        finally:
            await loop.stop()

    async def release(self) -> None:
        health.restored(LEASE_PART)
        with contextlib.suppress(Exception):
            async with self._sessions() as session:
                await session.execute(
                    delete(LeaseRow).where(LeaseRow.role == self.role, LeaseRow.owner == self.owner)
                )
                await session.commit()
