"""Human actions on an alert: acknowledge, assign, note, resolve."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from alerts import decisions
from alerts.models import AlertRow
from alerts.records import AlertRecord
from alerts.store_base import AlertNotFound, AlertStateError, StoreBase
from alerts.store_escalation import stop_escalation
from alerts.terms import Outcome


class HumanActions(StoreBase):
    async def _load_for_update(self, s: AsyncSession, alert_id: int) -> AlertRow:
        row = await s.get(AlertRow, alert_id, with_for_update=True)
        if row is None:
            raise AlertNotFound(f"no alert {alert_id}")
        return row

    async def acknowledge(self, alert_id: int, by: str, wall_now: float) -> AlertRecord:
        async with self._write_lock, self.sessions.begin() as s:
            row = await self._load_for_update(s, alert_id)
            if row.status == "resolved":
                raise AlertStateError(f"alert {alert_id} is already resolved")
            if row.status == "open":
                row.status = "acknowledged"
                row.acknowledged_at = wall_now
                row.acknowledged_by = by
                await stop_escalation(s, alert_id, wall_now)
                self._history(
                    s,
                    alert_id,
                    "acknowledged",
                    by,
                    wall_now,
                    wall_now,
                    {"ack_seconds": wall_now - decisions.waiting_since(AlertRecord.of(row))},
                )
            record = AlertRecord.of(row)
        await self._notify_changed()
        return record

    async def assign(self, alert_id: int, to: str, by: str, wall_now: float) -> AlertRecord:
        async with self._write_lock, self.sessions.begin() as s:
            row = await self._load_for_update(s, alert_id)
            if row.status == "resolved":
                raise AlertStateError(f"alert {alert_id} is already resolved")
            previous = row.assigned_to
            row.assigned_to = to
            self._history(
                s, alert_id, "assigned", by, wall_now, wall_now, {"to": to, "previous": previous}
            )
            record = AlertRecord.of(row)
        await self._notify_changed()
        return record

    async def add_note(self, alert_id: int, text: str, by: str, wall_now: float) -> AlertRecord:
        if not text.strip():
            raise AlertStateError("a note needs some text")
        async with self._write_lock, self.sessions.begin() as s:
            row = await self._load_for_update(s, alert_id)
            self._history(s, alert_id, "note", by, wall_now, wall_now, {"text": text})
            record = AlertRecord.of(row)
        await self._notify_changed()
        return record

    async def resolve(
        self, alert_id: int, outcome: Outcome, note: str | None, by: str, wall_now: float
    ) -> AlertRecord:
        async with self._write_lock, self.sessions.begin() as s:
            row = await self._load_for_update(s, alert_id)
            if row.status == "resolved":
                raise AlertStateError(f"alert {alert_id} is already resolved")
            if row.status == "open":
                # Resolving answers the alarm: it counts as the acknowledgement.
                row.acknowledged_at = wall_now
                row.acknowledged_by = by
                self._history(
                    s,
                    alert_id,
                    "acknowledged",
                    by,
                    wall_now,
                    wall_now,
                    {
                        "ack_seconds": wall_now - decisions.waiting_since(AlertRecord.of(row)),
                        "implied_by": "resolve",
                    },
                )
            row.status = "resolved"
            row.resolved_at = wall_now
            row.resolved_by = by
            row.outcome = outcome.value
            row.note = note
            await stop_escalation(s, alert_id, wall_now)
            self._history(
                s,
                alert_id,
                "resolved",
                by,
                wall_now,
                wall_now,
                {
                    "outcome": outcome.value,
                    "note": note,
                    "resolve_seconds": wall_now - row.created_at,
                },
            )
            record = AlertRecord.of(row)
        await self._notify_changed()
        return record
