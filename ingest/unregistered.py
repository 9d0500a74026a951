"""Devices that send data but are not in the registry.

Operators register them from this list (the console's device-health page, the
`eldercare devices unregistered` command). Ingest notes each sighting in memory
(`note`, cheap, on the hot path) and upserts the accumulated sightings into the
relational store in one transaction every few seconds (`flush`), never per
message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import BigInteger, Float, String, Text, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from eldercare import metrics
from eldercare.db import Base
from ingest.decoded import DeviceIdentity, NativeIdentity

if TYPE_CHECKING:
    Sessions = async_sessionmaker[AsyncSession]
else:
    Sessions = async_sessionmaker

MAX_SAMPLE = 2048  # characters of a sample payload kept
# Devices remembered between flushes: a flood of made-up ids must not grow memory
# without bound (sightings past it are counted, not listed).
MAX_PENDING = 10_000
# Identities per statement: SQLite allows 32,766 bound variables, PostgreSQL 65,535.
FLUSH_CHUNK = 500

_UNREGISTERED = metrics.counter(
    "ingest_unregistered_total", "messages from devices not in the registry"
)
_UNTRACKED = metrics.counter(
    "ingest_unregistered_untracked_total",
    "sightings of unregistered devices not listed: too many new ones between flushes",
)


class UnregisteredDeviceRow(Base):
    __tablename__ = "ingest_unregistered_device"

    identity: Mapped[str] = mapped_column(String(512), primary_key=True)
    source: Mapped[str] = mapped_column(String(16))
    topic: Mapped[str] = mapped_column(String(512))
    first_seen: Mapped[float] = mapped_column(Float)
    last_seen: Mapped[float] = mapped_column(Float)
    count: Mapped[int] = mapped_column(BigInteger)
    sample_payload: Mapped[str] = mapped_column(Text)


def identity_text(identity: DeviceIdentity) -> str:
    """A stable printable key: `native:<site>/<device>` or `<vendor>:<part>/<part>…`."""
    if isinstance(identity, NativeIdentity):
        return f"native:{identity.site_id}/{identity.device_id}"
    vendor, *parts = identity.key
    return f"{vendor}:" + "/".join(parts)


@dataclass(slots=True)
class _Sighting:
    source: str
    topic: str
    first_seen: float
    last_seen: float
    count: int
    sample: str


@dataclass(frozen=True, slots=True)
class UnregisteredDevice:
    identity: str
    source: str
    topic: str
    first_seen: float
    last_seen: float
    count: int
    sample_payload: str

    def to_json(self) -> dict[str, object]:
        return {
            "identity": self.identity,
            "source": self.source,
            "topic": self.topic,
            "first_seen": _iso(self.first_seen),
            "last_seen": _iso(self.last_seen),
            "count": self.count,
            "sample_payload": self.sample_payload,
        }


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


async def init_unregistered_store(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(
            lambda c: Base.metadata.create_all(
                c,
                tables=[UnregisteredDeviceRow.__table__],  # type: ignore[list-item]
            )
        )


class UnregisteredDevices:
    """Accumulates sightings; `flush` writes them in one transaction."""

    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions
        self._pending: dict[str, _Sighting] = {}
        self.untracked = 0

    def note(
        self, identity: DeviceIdentity, source: str, topic: str, payload: bytes, at: float
    ) -> None:
        key = identity_text(identity)
        _UNREGISTERED.inc()
        seen = self._pending.get(key)
        if seen is None:
            if len(self._pending) >= MAX_PENDING:
                self.untracked += 1
                _UNTRACKED.inc()
                return
            sample = payload[:MAX_SAMPLE].decode("utf-8", "replace")
            self._pending[key] = _Sighting(source, topic, at, at, 1, sample)
            return
        seen.count += 1
        seen.first_seen = min(seen.first_seen, at)
        if at >= seen.last_seen:
            seen.last_seen = at
            seen.topic = topic

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def flush(self) -> int:
        """Upsert what was noted since the last flush, `FLUSH_CHUNK` devices per
        transaction; returns how many devices. A failed chunk and those after it are
        kept for the next flush (bounded like any noting)."""
        if not self._pending:
            return 0
        pending, self._pending = self._pending, {}
        items = list(pending.items())
        done = 0
        try:
            for start in range(0, len(items), FLUSH_CHUNK):
                await self._upsert(dict(items[start : start + FLUSH_CHUNK]))
                done = start + FLUSH_CHUNK
        except Exception:
            self._keep(items[done:])
            raise
        return len(items)

    def _keep(self, items: list[tuple[str, _Sighting]]) -> None:
        """Put unwritten sightings back, merged with what was noted meanwhile."""
        for key, s in items:
            merged = self._pending.get(key)
            if merged is None:
                if len(self._pending) >= MAX_PENDING:
                    self.untracked += s.count
                    _UNTRACKED.inc(s.count)
                    continue
                self._pending[key] = s
            else:
                merged.count += s.count
                merged.first_seen = min(merged.first_seen, s.first_seen)

    async def _upsert(self, pending: dict[str, _Sighting]) -> None:
        async with self.sessions() as session, session.begin():
            rows = await session.scalars(
                select(UnregisteredDeviceRow).where(
                    UnregisteredDeviceRow.identity.in_(list(pending))
                )
            )
            existing = {row.identity: row for row in rows}
            for key, s in pending.items():
                row = existing.get(key)
                if row is None:
                    session.add(
                        UnregisteredDeviceRow(
                            identity=key,
                            source=s.source,
                            topic=s.topic[:512],
                            first_seen=s.first_seen,
                            last_seen=s.last_seen,
                            count=s.count,
                            sample_payload=s.sample,
                        )
                    )
                    continue
                row.count += s.count
                row.first_seen = min(row.first_seen, s.first_seen)
                if s.last_seen >= row.last_seen:
                    row.last_seen = s.last_seen
                    row.topic = s.topic[:512]
                    row.sample_payload = s.sample


async def list_unregistered(sessions: Sessions) -> Sequence[UnregisteredDevice]:
    """Every unregistered device seen, most recently seen first."""
    async with sessions() as session:
        rows = await session.scalars(
            select(UnregisteredDeviceRow).order_by(UnregisteredDeviceRow.last_seen.desc())
        )
        return [
            UnregisteredDevice(
                r.identity, r.source, r.topic, r.first_seen, r.last_seen, r.count, r.sample_payload
            )
            for r in rows
        ]
