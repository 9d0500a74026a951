"""Read-only queries: alerts by id or filter, their history, the change feed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, func, select

from alerts.models import AlertHistoryRow, AlertRow
from alerts.records import AlertRecord, FeedItem, HistoryEntry
from alerts.store_base import StoreBase, chunks


@dataclass(frozen=True, slots=True)
class AlertFilter:
    status: Sequence[str] | None = None  # e.g. ["open", "acknowledged"]
    sites: Sequence[str] | None = None
    kinds: Sequence[str] | None = None
    severities: Sequence[str] | None = None
    resident: str | None = None
    since: float | None = None  # raised_at >= since (event time)
    until: float | None = None
    limit: int = 500
    offset: int = 0


class AlertQueries(StoreBase):
    async def get(self, alert_id: int) -> AlertRecord | None:
        async with self.sessions() as s:
            row = await s.get(AlertRow, alert_id)
            return AlertRecord.of(row) if row else None

    async def get_many(self, alert_ids: Sequence[int]) -> dict[int, AlertRecord]:
        out: dict[int, AlertRecord] = {}
        async with self.sessions() as s:
            for chunk in chunks(sorted(set(alert_ids))):
                for r in (await s.scalars(select(AlertRow).where(AlertRow.id.in_(chunk)))).all():
                    out[r.id] = AlertRecord.of(r)
        return out

    async def history(self, alert_id: int) -> list[HistoryEntry]:
        async with self.sessions() as s:
            q = (
                select(AlertHistoryRow)
                .where(AlertHistoryRow.alert_id == alert_id)
                .order_by(AlertHistoryRow.id)
            )
            return [HistoryEntry.of(r) for r in (await s.scalars(q)).all()]

    async def find(self, f: AlertFilter) -> list[AlertRecord]:
        async with self.sessions() as s:
            q = select(AlertRow)
            conds: list[ColumnElement[bool]] = []
            if f.status:
                conds.append(AlertRow.status.in_(list(f.status)))
            if f.sites is not None:
                conds.append(AlertRow.site.in_(list(f.sites)))
            if f.kinds:
                conds.append(AlertRow.kind.in_(list(f.kinds)))
            if f.severities:
                conds.append(AlertRow.severity.in_(list(f.severities)))
            if f.resident is not None:
                conds.append(AlertRow.resident == f.resident)
            if f.since is not None:
                conds.append(AlertRow.raised_at >= f.since)
            if f.until is not None:
                conds.append(AlertRow.raised_at < f.until)
            if conds:
                q = q.where(and_(*conds))
            q = q.order_by(AlertRow.raised_at.desc(), AlertRow.id.desc())
            q = q.limit(f.limit).offset(f.offset)
            return [AlertRecord.of(r) for r in (await s.scalars(q)).all()]

    async def unresolved_by_site(self) -> dict[str, int]:
        """Open or acknowledged alerts per site (the map's open-alert counts)."""
        async with self.sessions() as s:
            q = (
                select(AlertRow.site, func.count())
                .where(AlertRow.status.in_(["open", "acknowledged"]))
                .group_by(AlertRow.site)
            )
            return {site: int(n) for site, n in (await s.execute(q)).all()}

    async def last_seq(self) -> int:
        async with self.sessions() as s:
            return int(await s.scalar(select(func.coalesce(func.max(AlertHistoryRow.id), 0))) or 0)

    async def changes_since(self, seq: int, limit: int = 1000) -> list[FeedItem]:
        async with self.sessions() as s:
            q = (
                select(AlertHistoryRow)
                .where(AlertHistoryRow.id > seq)
                .order_by(AlertHistoryRow.id)
                .limit(limit)
            )
            entries = [HistoryEntry.of(r) for r in (await s.scalars(q)).all()]
        alerts = await self.get_many([e.alert_id for e in entries])
        return [FeedItem(e.seq, e, alerts[e.alert_id]) for e in entries if e.alert_id in alerts]
