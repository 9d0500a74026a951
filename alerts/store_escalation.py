"""Escalation state: which step of which round each open alert is at, and when
its next step is due."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from alerts.models import AlertRow, EscalationStateRow
from alerts.records import AlertRecord, EscalationState, PlannedNotification
from alerts.store_base import SYSTEM, StoreBase, chunks
from alerts.store_notifications import add_planned, existing_keys


async def stop_escalation(s: AsyncSession, alert_id: int, wall_now: float) -> None:
    await s.execute(
        update(EscalationStateRow)
        .where(EscalationStateRow.alert_id == alert_id)
        .values(active=False, next_due=None, updated_at=wall_now)
    )


class EscalationStates(StoreBase):
    async def start_escalations(
        self, starts: Sequence[tuple[int, str]], due: float, wall_now: float
    ) -> None:
        """(Re)start escalation at step 0 for (alert id, severity); rounds keep counting."""
        if not starts:
            return
        async with self._write_lock, self.sessions.begin() as s:
            ids = [a for a, _ in starts]
            existing: dict[int, EscalationStateRow] = {}
            for chunk in chunks(ids):
                q = select(EscalationStateRow).where(EscalationStateRow.alert_id.in_(chunk))
                existing.update({r.alert_id: r for r in (await s.scalars(q)).all()})
            for alert_id, severity in starts:
                row = existing.get(alert_id)
                if row is None:
                    s.add(
                        EscalationStateRow(
                            alert_id=alert_id,
                            severity=severity,
                            step=0,
                            round=0,
                            next_due=due,
                            active=True,
                            updated_at=wall_now,
                        )
                    )
                else:
                    row.severity = severity
                    row.step = 0
                    row.next_due = due
                    row.active = True
                    row.updated_at = wall_now

    async def unscheduled_alerts(self) -> list[AlertRecord]:
        """Open alerts that are neither inhibited, silenced nor escalating: only left by
        a batch whose stages failed after it was stored."""
        async with self.sessions() as s:
            q = (
                select(AlertRow)
                .outerjoin(EscalationStateRow, EscalationStateRow.alert_id == AlertRow.id)
                .where(
                    EscalationStateRow.alert_id.is_(None),
                    AlertRow.status == "open",
                    AlertRow.inhibited_by.is_(None),
                    AlertRow.silenced_by.is_(None),
                )
            )
            return [AlertRecord.of(r) for r in (await s.scalars(q)).all()]

    async def due_escalations(self, now: float) -> list[tuple[AlertRecord, EscalationState]]:
        """Active escalations of open (unacknowledged) alerts whose next step is due."""
        async with self.sessions() as s:
            q = (
                select(AlertRow, EscalationStateRow)
                .join(EscalationStateRow, EscalationStateRow.alert_id == AlertRow.id)
                .where(
                    EscalationStateRow.active.is_(True),
                    EscalationStateRow.next_due.is_not(None),
                    EscalationStateRow.next_due <= now,
                    AlertRow.status == "open",
                )
                .order_by(EscalationStateRow.next_due, AlertRow.id)
            )
            rows = (await s.execute(q)).all()
            return [(AlertRecord.of(a), EscalationState.of(e)) for a, e in rows]

    async def escalation_state(self, alert_id: int) -> EscalationState | None:
        async with self.sessions() as s:
            row = await s.get(EscalationStateRow, alert_id)
            return EscalationState.of(row) if row else None

    async def fire_escalations(
        self,
        firings: Sequence[tuple[EscalationState, list[PlannedNotification], dict[str, Any] | None]],
        wall_now: float,
    ) -> None:
        """Advance each escalation to its new state and write its messages as pending,
        in one transaction: after a crash either both happened or neither did."""
        if not firings:
            return
        async with self._write_lock, self.sessions.begin() as s:
            keys = [p.idempotency_key for _, planned, _ in firings for p in planned]
            existing = await existing_keys(s, keys)
            # ORM bulk UPDATE by primary key: one executemany for the whole batch.
            await s.execute(
                update(EscalationStateRow),
                [
                    {
                        "alert_id": state.alert_id,
                        "step": state.step,
                        "round": state.round,
                        "next_due": state.next_due,
                        "last_fired_at": state.last_fired_at,
                        "active": state.active,
                        "updated_at": wall_now,
                    }
                    for state, _, _ in firings
                ],
            )
            for state, planned, data in firings:
                add_planned(s, planned, existing, wall_now)
                if data is not None:
                    self._history(s, state.alert_id, "escalated", SYSTEM, wall_now, wall_now, data)
        await self._notify_changed()

    async def pull_forward(self, alert_id: int, round_: int, due: float, wall_now: float) -> bool:
        """Every message of this round failed: the next step is due now (unanswered)."""
        async with self._write_lock, self.sessions.begin() as s:
            row = await s.get(EscalationStateRow, alert_id, with_for_update=True)
            if row is None or not row.active or row.round != round_ or row.next_due is None:
                return False
            if row.next_due > due:
                row.next_due = due
                row.updated_at = wall_now
            self._history(s, alert_id, "unanswered", SYSTEM, wall_now, wall_now, {"round": round_})
        await self._notify_changed()
        return True
