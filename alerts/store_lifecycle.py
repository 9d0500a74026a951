"""Alert lifecycle: detector transitions merged into alerts (the rule is
`alerts.alert_merge`), inhibition, silencing and automatic resolution."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, update

from alerts.alert_merge import Merged, merge_transition
from alerts.models import AlertHistoryRow, AlertRow
from alerts.records import AlertChange, AlertRecord
from alerts.store_base import SYSTEM, AlertNotFound, StoreBase, chunks
from alerts.store_escalation import stop_escalation
from alerts.terms import Outcome
from eldercare.domain import AlertChangeKind, Severity, Transition
from eldercare.logs import get_logger

log = get_logger(__name__)


class AlertLifecycle(StoreBase):
    async def apply_transitions(
        self, transitions: Sequence[Transition], wall_now: float
    ) -> list[AlertChange]:
        """Merge detector transitions into alerts by identity (site, resident, kind).

        One transaction for the batch; new alerts are inserted together. A change's
        record shows the alert as it stands after the whole batch."""
        if not transitions:
            return []
        applied: list[Merged] = []
        async with self._write_lock, self.sessions.begin() as s:
            sites = sorted({t.site_id for t in transitions})
            open_rows: dict[tuple[str, str | None, str], AlertRow] = {}
            for chunk in chunks(sites):
                q = select(AlertRow).where(AlertRow.status != "resolved", AlertRow.site.in_(chunk))
                for row in (await s.scalars(q)).all():
                    open_rows[(row.site, row.resident, row.kind)] = row
            for t in sorted(transitions, key=lambda t: t.ts):
                key = (t.site_id, t.resident_id, t.kind.value)
                merged = merge_transition(open_rows.get(key), t, wall_now)
                if merged is None:
                    self._count_orphan_clear(t)
                    continue
                if merged.is_new:
                    s.add(merged.row)
                    open_rows[key] = merged.row
                applied.append(merged)
            await s.flush()  # assigns ids to new alerts, in one multi-row insert
            s.add_all(
                AlertHistoryRow(
                    alert_id=d.row.id,
                    action=d.action,
                    actor=SYSTEM,
                    event_time=d.event_time,
                    wall_time=wall_now,
                    data=d.data,
                )
                for d in applied
            )
            changes = [
                AlertChange(
                    AlertRecord.of(d.row),
                    AlertChangeKind(d.change),
                    None if d.previous_severity is None else Severity(d.previous_severity),
                )
                for d in applied
            ]
        await self._notify_changed()
        return changes

    def _count_orphan_clear(self, t: Transition) -> None:
        # A clear for an alert already resolved (or never seen, e.g. after a
        # restore) changes nothing a person needs; counted and logged.
        self.orphan_clears += 1
        log.info(
            "clear without an active alert",
            extra={"site": t.site_id, "resident": t.resident_id, "kind": t.kind.value},
        )

    async def active_alerts(self, sites: Sequence[str]) -> list[AlertRecord]:
        """Unresolved alerts whose condition is active, at these sites (inhibition sources)."""
        out: list[AlertRecord] = []
        async with self.sessions() as s:
            for chunk in chunks(sorted(set(sites))):
                q = select(AlertRow).where(
                    AlertRow.status != "resolved",
                    AlertRow.condition == "active",
                    AlertRow.site.in_(chunk),
                )
                out.extend(AlertRecord.of(r) for r in (await s.scalars(q)).all())
        return out

    async def mark_inhibited(
        self, marks: Sequence[tuple[int, int, str]], event_time: float, wall_now: float
    ) -> None:
        """Record (alert id, inhibiting alert id, rule name) for each inhibited alert."""
        if not marks:
            return
        async with self._write_lock, self.sessions.begin() as s:
            for alert_id, by_id, rule in marks:
                await s.execute(
                    update(AlertRow).where(AlertRow.id == alert_id).values(inhibited_by=by_id)
                )
                self._history(
                    s,
                    alert_id,
                    "inhibited",
                    SYSTEM,
                    event_time,
                    wall_now,
                    {"inhibited_by": by_id, "rule": rule},
                )
        await self._notify_changed()

    async def inhibited_alerts(self) -> list[tuple[AlertRecord, AlertRecord | None]]:
        """Open, active, inhibited alerts with their inhibitor (None if it vanished)."""
        async with self.sessions() as s:
            q = select(AlertRow).where(
                AlertRow.inhibited_by.is_not(None),
                AlertRow.status == "open",
                AlertRow.condition == "active",
            )
            rows = (await s.scalars(q)).all()
            by_ids = sorted({r.inhibited_by for r in rows if r.inhibited_by is not None})
            sources: dict[int, AlertRecord] = {}
            for chunk in chunks(by_ids):
                for src in (await s.scalars(select(AlertRow).where(AlertRow.id.in_(chunk)))).all():
                    sources[src.id] = AlertRecord.of(src)
            return [(AlertRecord.of(r), sources.get(r.inhibited_by or -1)) for r in rows]

    async def release_inhibited(self, releases: Sequence[tuple[int, int]], wall_now: float) -> None:
        """The inhibitor ended while the target is still active: it escalates normally now."""
        if not releases:
            return
        async with self._write_lock, self.sessions.begin() as s:
            for alert_id, by_id in releases:
                await s.execute(
                    update(AlertRow).where(AlertRow.id == alert_id).values(inhibited_by=None)
                )
                self._history(
                    s, alert_id, "released", SYSTEM, wall_now, wall_now, {"inhibited_by": by_id}
                )
        await self._notify_changed()

    async def mark_silenced(
        self, marks: Sequence[tuple[int, str]], event_time: float, wall_now: float
    ) -> None:
        if not marks:
            return
        async with self._write_lock, self.sessions.begin() as s:
            for alert_id, reason in marks:
                await s.execute(
                    update(AlertRow).where(AlertRow.id == alert_id).values(silenced_by=reason)
                )
                self._history(
                    s, alert_id, "silenced", SYSTEM, event_time, wall_now, {"reason": reason}
                )
        await self._notify_changed()

    async def auto_resolve(self, alert_id: int, event_time: float, wall_now: float) -> AlertRecord:
        async with self._write_lock, self.sessions.begin() as s:
            row = await s.get(AlertRow, alert_id, with_for_update=True)
            if row is None:
                raise AlertNotFound(alert_id)
            row.status = "resolved"
            row.resolved_at = wall_now
            row.resolved_by = SYSTEM
            row.outcome = Outcome.AUTO_CLEARED.value
            await stop_escalation(s, alert_id, wall_now)
            self._history(
                s,
                alert_id,
                "resolved",
                SYSTEM,
                event_time,
                wall_now,
                {"outcome": row.outcome, "automatic": True},
            )
            record = AlertRecord.of(row)
        await self._notify_changed()
        return record
