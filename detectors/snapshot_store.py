"""Detector snapshots in the relational store, so a restart resumes open conditions.

One row per (site, detector): the detector's `snapshot()` as JSON and when it was
taken (wall time). The runtime keeps its own per-site bookkeeping (site clock,
recently seen reading keys) under the reserved detector name `_runtime`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import JSON, Float, String, delete, select, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from eldercare.db import Base, session_factory

SiteStates = dict[str, dict[str, Any]]  # detector name → state

_SITES_PER_STATEMENT = 100  # ~1,500 (site, detector) pairs: within every database's limits


def _parts(values: list[str], size: int) -> list[list[str]]:
    return [values[i : i + size] for i in range(0, len(values), size)]


class DetectorSnapshot(Base):
    __tablename__ = "detector_snapshots"

    site_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    detector: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[float] = mapped_column(Float)


class SnapshotStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sessions = session_factory(engine)

    async def load_all(self) -> dict[str, SiteStates]:
        async with self._sessions() as session:
            rows = (await session.execute(select(DetectorSnapshot))).scalars().all()
        out: dict[str, SiteStates] = {}
        for row in rows:
            out.setdefault(row.site_id, {})[row.detector] = row.state
        return out

    async def load_sites(self, site_ids: Sequence[str]) -> dict[str, SiteStates]:
        """The states of the given sites only (a cluster worker restoring a partition)."""
        out: dict[str, SiteStates] = {}
        async with self._sessions() as session:
            for part in _parts(list(site_ids), _SITES_PER_STATEMENT):
                query = select(DetectorSnapshot).where(DetectorSnapshot.site_id.in_(part))
                for row in (await session.execute(query)).scalars():
                    out.setdefault(row.site_id, {})[row.detector] = row.state
        return out

    async def save(self, sites: Mapping[str, SiteStates], updated_at: float | None = None) -> None:
        """Write the given sites' states (replacing each site's rows) in one transaction."""
        if not sites:
            return
        stamp = time.time() if updated_at is None else updated_at
        rows = [
            {"site_id": site_id, "detector": name, "state": state, "updated_at": stamp}
            for site_id, states in sites.items()
            for name, state in states.items()
        ]
        dialect = self.engine.dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        upsert = insert(DetectorSnapshot)
        upsert = upsert.on_conflict_do_update(
            index_elements=["site_id", "detector"],
            set_={"state": upsert.excluded.state, "updated_at": upsert.excluded.updated_at},
        )
        # Few statements, each compiled once and cached: rendering one multi-row VALUES of
        # thousands of parameters (or one DELETE per site) cost seconds of the event loop.
        async with self._sessions() as session, session.begin():
            conn = await session.connection()
            for part in _parts(list(sites), _SITES_PER_STATEMENT):
                # Detectors no longer built for a site (rule disabled, device removed) go.
                kept = [(site_id, name) for site_id in part for name in sites[site_id]]
                stale = delete(DetectorSnapshot).where(DetectorSnapshot.site_id.in_(part))
                if kept:
                    pair = tuple_(DetectorSnapshot.site_id, DetectorSnapshot.detector)
                    stale = stale.where(pair.not_in(kept))
                await conn.execute(stale)
            if rows:
                await conn.execute(upsert, rows)

    async def delete_site(self, site_id: str) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(
                delete(DetectorSnapshot).where(DetectorSnapshot.site_id == site_id)
            )
