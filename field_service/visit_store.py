"""Logged visits and the organisations' visit categories, in the relational store."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from field_service.models import VisitCategoryRow, VisitRow
from field_service.visits import (
    DEFAULT_CATEGORIES,
    VisitCategory,
    VisitMark,
    VisitMode,
    VisitOutcome,
    VisitPeriod,
)

Sessions = async_sessionmaker[AsyncSession]


@dataclass(frozen=True, slots=True)
class Visit:
    id: int
    site_id: str
    resident_id: str
    responder: str
    mode: VisitMode
    outcome: VisitOutcome
    note: str | None
    visited_at: float
    logged_at: float

    @classmethod
    def from_row(cls, r: VisitRow) -> Visit:
        return cls(
            r.id, r.site_id, r.resident_id, r.responder, VisitMode(r.mode),
            VisitOutcome(r.outcome), r.note, r.visited_at, r.logged_at,
        )  # fmt: skip

    @property
    def mark(self) -> VisitMark:
        return VisitMark(
            self.site_id, self.resident_id, self.visited_at,
            counts=self.outcome is not VisitOutcome.NOT_REACHED,
        )  # fmt: skip


async def log_visit(
    sessions: Sessions,
    *,
    site_id: str,
    resident_id: str,
    responder: str,
    mode: VisitMode,
    outcome: VisitOutcome,
    note: str | None,
    visited_at: float,
    logged_at: float,
) -> Visit:
    row = VisitRow(
        site_id=site_id, resident_id=resident_id, responder=responder, mode=mode.value,
        outcome=outcome.value, note=(note or "").strip()[:2000] or None,
        visited_at=visited_at, logged_at=logged_at,
    )  # fmt: skip
    async with sessions() as session:
        session.add(row)
        await session.commit()
        return Visit.from_row(row)


async def list_visits(
    sessions: Sessions,
    *,
    site_ids: Sequence[str] | None = None,
    resident: tuple[str, str] | None = None,
    since: float | None = None,
    until: float | None = None,
    limit: int = 10000,
) -> list[Visit]:
    stmt = select(VisitRow).order_by(VisitRow.visited_at.desc()).limit(limit)
    if site_ids is not None:
        stmt = stmt.where(VisitRow.site_id.in_(list(site_ids)))
    if resident is not None:
        stmt = stmt.where(VisitRow.site_id == resident[0], VisitRow.resident_id == resident[1])
    if since is not None:
        stmt = stmt.where(VisitRow.visited_at >= since)
    if until is not None:
        stmt = stmt.where(VisitRow.visited_at < until)
    async with sessions() as session:
        rows = (await session.scalars(stmt)).all()
    return [Visit.from_row(r) for r in rows]


def _category(r: VisitCategoryRow) -> VisitCategory:
    org = tuple(p for p in r.organisation.strip("/").split("/") if p)
    return VisitCategory(r.id, org, VisitPeriod(r.period), r.flag, r.min_age, r.name_zh, r.name_en)


async def visit_categories(sessions: Sessions) -> list[VisitCategory]:
    """The categories set as data; the defaults while none is set."""
    async with sessions() as session:
        rows = (await session.scalars(select(VisitCategoryRow).order_by(VisitCategoryRow.id))).all()
    return [_category(r) for r in rows] if rows else list(DEFAULT_CATEGORIES)


async def put_category(sessions: Sessions, category: VisitCategory, now: float) -> None:
    async with sessions() as session:
        row = await session.get(VisitCategoryRow, category.id)
        if row is None:
            row = VisitCategoryRow(id=category.id)
            session.add(row)
        row.organisation = "/".join(category.organisation)
        row.period, row.flag, row.min_age = category.period.value, category.flag, category.min_age
        row.name_zh, row.name_en, row.updated_at = category.name_zh, category.name_en, now
        await session.commit()
