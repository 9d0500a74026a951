"""What every part of the alert store shares: the engine and sessions, the one
write lock, the change notification, the history writer, and the store's errors.

Every store method runs in a transaction of its own and returns plain records
(`alerts.records`). Writes go through one in-process lock: with SQLite that avoids
writer contention, and it keeps history ids (the change feed's sequence numbers)
in commit order for readers of this process. Across processes on PostgreSQL a
reader may briefly see a later sequence number commit before an earlier one;
`changes_since` readers re-reading from their last seen seq are unaffected in
practice because a single pipeline process is the only bulk writer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from alerts.models import AlertHistoryRow, AlertRow, EscalationStateRow, NotificationLogRow
from eldercare.db import Base, session_factory
from eldercare.errors import EldercareError

if TYPE_CHECKING:
    Sessions = async_sessionmaker[AsyncSession]
else:
    Sessions = async_sessionmaker

SYSTEM = "system"
_CHUNK = 500  # bound IN (...) lists


ALERT_TABLES: list[Table] = [
    AlertRow.__table__,  # type: ignore[list-item]
    AlertHistoryRow.__table__,  # type: ignore[list-item]
    NotificationLogRow.__table__,  # type: ignore[list-item]
    EscalationStateRow.__table__,  # type: ignore[list-item]
]


class AlertNotFound(EldercareError, LookupError):
    pass


class AlertStateError(EldercareError, ValueError):
    """A human action that the alert's state does not allow (e.g. resolving twice)."""


async def init_store(engine: AsyncEngine) -> None:
    """Create the alert tables (tests and first start; migrations come later)."""
    import alerts.models  # noqa: F401  (registers the tables on Base)

    async with engine.begin() as conn:
        await conn.run_sync(
            Base.metadata.create_all,
            tables=ALERT_TABLES,
        )


def chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for i in range(0, len(values), _CHUNK):
        yield values[i : i + _CHUNK]


class StoreBase:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessions: Sessions = session_factory(engine)
        self._write_lock = asyncio.Lock()
        # Woken after every committed write, so subscribers of this process need not poll.
        self._changed = asyncio.Condition()
        self.orphan_clears = 0
        self.version = 0  # bumped after every committed write of this process

    async def _notify_changed(self) -> None:
        async with self._changed:
            self.version += 1
            self._changed.notify_all()

    async def wait_changed(self, max_wait_s: float, seen_version: int | None = None) -> None:
        """Return after the next write of this process (at once if one happened since
        `seen_version`), or after `max_wait_s` seconds: writes of other processes are
        only seen by polling."""
        async with self._changed:
            if seen_version is not None and self.version != seen_version:
                return
            # `asyncio.timeout`, not `wait_for`: on Python 3.11 `wait_for` swallows a
            # cancellation that arrives as the write wakes it, and the loop that was
            # being stopped (the live stream's waker) would go on for ever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max_wait_s):
                    await self._changed.wait()

    @staticmethod
    def _history(
        s: AsyncSession,
        alert_id: int,
        action: str,
        actor: str,
        event_time: float,
        wall_time: float,
        data: dict[str, Any] | None = None,
    ) -> None:
        s.add(
            AlertHistoryRow(
                alert_id=alert_id,
                action=action,
                actor=actor,
                event_time=event_time,
                wall_time=wall_time,
                data=data or {},
            )
        )
