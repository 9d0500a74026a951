"""The notification log: every message planned, sent, retried, failed, deferred or
folded into a digest, with what the provider reported of it afterwards."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from alerts.models import NotificationLogRow
from alerts.outcomes import UNANSWERED_CALL, Receipt
from alerts.records import NotificationRecord, PlannedNotification
from alerts.store_base import SYSTEM, StoreBase, chunks


async def existing_keys(s: AsyncSession, keys: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for chunk in chunks(list(keys)):
        q = select(NotificationLogRow.idempotency_key).where(
            NotificationLogRow.idempotency_key.in_(chunk)
        )
        found.update((await s.scalars(q)).all())
    return found


def add_planned(
    s: AsyncSession,
    planned: Sequence[PlannedNotification],
    existing: set[str],
    wall_now: float,
) -> int:
    added = 0
    for p in planned:
        if p.idempotency_key in existing:
            continue
        existing.add(p.idempotency_key)
        s.add(
            NotificationLogRow(
                idempotency_key=p.idempotency_key,
                alert_id=p.alert_id,
                purpose=p.purpose,
                step=p.step,
                round=p.round,
                site=p.site,
                recipient=p.recipient,
                role=p.role,
                language=p.language,
                channel_hash=p.channel_hash,
                channel_kind=p.channel_kind,
                params=p.params,
                title=p.title,
                body=p.body,
                state="pending",
                attempts=0,
                created_at=wall_now,
                updated_at=wall_now,
                next_attempt_at=wall_now,
            )
        )
        added += 1
    return added


async def round_unanswered(s: AsyncSession, alert_id: int, round_: int) -> bool:
    """Every message of the round failed, or it called people and every call ended
    unanswered (a delivered SMS does not answer a call nobody picked up)."""
    q = select(NotificationLogRow.state, NotificationLogRow.channel_kind).where(
        NotificationLogRow.alert_id == alert_id,
        NotificationLogRow.purpose == "alert",
        NotificationLogRow.round == round_,
    )
    rows = (await s.execute(q)).all()
    calls = [state for state, kind in rows if kind == "voice"]
    if calls and all(state == "failed" for state in calls):
        return True
    return all(state == "failed" for state, _ in rows)


class NotificationLog(StoreBase):
    async def add_notifications(
        self, planned: Sequence[PlannedNotification], wall_now: float
    ) -> int:
        """Write messages as pending unless their idempotency key is already logged."""
        if not planned:
            return 0
        async with self._write_lock, self.sessions.begin() as s:
            existing = await existing_keys(s, [p.idempotency_key for p in planned])
            return add_planned(s, planned, existing, wall_now)

    async def due_notifications(self, now: float, limit: int = 2000) -> list[NotificationRecord]:
        async with self.sessions() as s:
            q = (
                select(NotificationLogRow)
                .where(
                    NotificationLogRow.state == "pending",
                    NotificationLogRow.next_attempt_at <= now,
                )
                .order_by(NotificationLogRow.id)
                .limit(limit)
            )
            return [NotificationRecord.of(r) for r in (await s.scalars(q)).all()]

    async def notifications(
        self, alert_id: int | None = None, purpose: str | None = None
    ) -> list[NotificationRecord]:
        async with self.sessions() as s:
            q = select(NotificationLogRow).order_by(NotificationLogRow.id)
            if alert_id is not None:
                q = q.where(NotificationLogRow.alert_id == alert_id)
            if purpose is not None:
                q = q.where(NotificationLogRow.purpose == purpose)
            return [NotificationRecord.of(r) for r in (await s.scalars(q)).all()]

    async def notification_key_exists(self, key: str) -> bool:
        async with self.sessions() as s:
            return bool(await existing_keys(s, [key]))

    async def existing_notification_prefixes(self, prefixes: Sequence[str]) -> set[str]:
        """Which of these key prefixes ("summary/site/contact/resident/date") already
        have a logged message (any channel)."""
        found: set[str] = set()
        async with self.sessions() as s:
            for p in prefixes:
                q = select(NotificationLogRow.id).where(
                    NotificationLogRow.idempotency_key.startswith(p + "/", autoescape=True)
                )
                if (await s.scalar(q.limit(1))) is not None:
                    found.add(p)
        return found

    async def record_deliveries(
        self,
        results: Sequence[tuple[NotificationRecord, str | None, float | None]],
        wall_now: float,
        receipts: Mapping[int, Receipt] | None = None,
        throttled: Collection[int] = (),
    ) -> list[tuple[int, int]]:
        """Log send attempts: (message, error or None if sent, next attempt or None);
        `receipts` what the channel said of a sent message (by log id), `throttled`
        the failed ones the platform's limits held back.

        Returns the (alert id, round) pairs whose every message has now definitively
        failed: those steps went unanswered."""
        receipts = receipts or {}
        if not results:
            return []
        touched: set[tuple[int, int]] = set()
        async with self._write_lock, self.sessions.begin() as s:
            ids = [n.id for n, _, _ in results]
            rows: dict[int, NotificationLogRow] = {}
            for chunk in chunks(ids):
                q = select(NotificationLogRow).where(NotificationLogRow.id.in_(chunk))
                rows.update({r.id: r for r in (await s.scalars(q)).all()})
            for n, error, next_attempt_at in results:
                row = rows.get(n.id)
                if row is None or row.state != "pending":
                    continue
                row.attempts += 1
                row.updated_at = wall_now
                data = {
                    "recipient": row.recipient,
                    "role": row.role,
                    "channel": row.channel_hash,
                    "step": row.step,
                    "round": row.round,
                    "purpose": row.purpose,
                    "attempts": row.attempts,
                }
                if error is None:
                    row.state = "sent"
                    row.sent_at = wall_now
                    row.next_attempt_at = None
                    row.last_error = None
                    receipt = receipts.get(row.id)
                    row.outcome = receipt.outcome if receipt else "sent"
                    row.provider_ref = receipt.ref if receipt else None
                    if row.alert_id is not None:
                        self._history(s, row.alert_id, "notified", SYSTEM, wall_now, wall_now, data)
                elif next_attempt_at is not None:
                    row.last_error = error
                    row.next_attempt_at = next_attempt_at
                else:
                    row.state = "failed"
                    row.last_error = error
                    row.next_attempt_at = None
                    row.outcome = "throttled" if row.id in throttled else "failed"
                    if row.alert_id is not None:
                        self._history(
                            s,
                            row.alert_id,
                            "notification_failed",
                            SYSTEM,
                            wall_now,
                            wall_now,
                            {**data, "error": error},
                        )
                        if row.purpose == "alert":
                            touched.add((row.alert_id, row.round))
            await s.flush()
            unanswered = [t for t in sorted(touched) if await round_unanswered(s, *t)]
        await self._notify_changed()
        return unanswered

    async def defer_notifications(
        self, deferrals: Sequence[tuple[int, float]], wall_now: float
    ) -> None:
        """Hold pending messages until their destination may take them (a limit)."""
        if not deferrals:
            return
        async with self._write_lock, self.sessions.begin() as s:
            for notification_id, until in deferrals:
                row = await s.get(NotificationLogRow, notification_id)
                if row is None or row.state != "pending":
                    continue
                row.next_attempt_at = until
                row.outcome = "throttled"
                row.updated_at = wall_now

    async def fold_into_digest(
        self, ids: Sequence[int], digest: PlannedNotification, wall_now: float
    ) -> NotificationRecord | None:
        """Write `digest` as a pending message and mark the pending messages `ids` as
        folded into it (state and outcome `digested`, `digest_id` its id)."""
        async with self._write_lock, self.sessions.begin() as s:
            if await existing_keys(s, [digest.idempotency_key]):
                return None
            row = NotificationLogRow(
                idempotency_key=digest.idempotency_key,
                alert_id=None,
                purpose=digest.purpose,
                step=0,
                round=0,
                site=digest.site,
                recipient=digest.recipient,
                role=digest.role,
                language=digest.language,
                channel_hash=digest.channel_hash,
                channel_kind=digest.channel_kind,
                title=digest.title,
                body=digest.body,
                state="pending",
                attempts=0,
                created_at=wall_now,
                updated_at=wall_now,
                next_attempt_at=wall_now,
            )
            s.add(row)
            await s.flush()
            for chunk in chunks(list(ids)):
                q = select(NotificationLogRow).where(
                    NotificationLogRow.id.in_(chunk), NotificationLogRow.state == "pending"
                )
                for folded in (await s.scalars(q)).all():
                    folded.state = "digested"
                    folded.outcome = "digested"
                    folded.digest_id = row.id
                    folded.next_attempt_at = None
                    folded.updated_at = wall_now
                    if folded.alert_id is not None:
                        self._history(
                            s,
                            folded.alert_id,
                            "notification_digested",
                            SYSTEM,
                            wall_now,
                            wall_now,
                            {"recipient": folded.recipient, "digest": row.id},
                        )
            record = NotificationRecord.of(row)
        await self._notify_changed()
        return record

    async def awaiting_receipts(self, since: float, limit: int = 500) -> list[NotificationRecord]:
        """Sent messages a provider may still report on: calls not yet known to be
        answered, SMS without a delivery receipt (sent after `since`)."""
        async with self.sessions() as s:
            q = (
                select(NotificationLogRow)
                .where(
                    NotificationLogRow.state == "sent",
                    NotificationLogRow.provider_ref.is_not(None),
                    NotificationLogRow.outcome.in_(["calling", "sent"]),
                    NotificationLogRow.sent_at >= since,
                )
                .order_by(NotificationLogRow.id)
                .limit(limit)
            )
            return [NotificationRecord.of(r) for r in (await s.scalars(q)).all()]

    async def settle_receipts(
        self, updates: Sequence[tuple[int, str]], wall_now: float
    ) -> list[tuple[int, int]]:
        """Record what providers reported: (log id, outcome). A call that ended without
        an answer fails its message. Returns the (alert id, round) pairs now unanswered:
        every call of the round ended unanswered, or every message failed."""
        touched: set[tuple[int, int]] = set()
        async with self._write_lock, self.sessions.begin() as s:
            for notification_id, outcome in updates:
                row = await s.get(NotificationLogRow, notification_id)
                if row is None or row.state != "sent" or row.outcome not in ("calling", "sent"):
                    continue
                row.outcome = outcome
                row.updated_at = wall_now
                unanswered_call = row.outcome in UNANSWERED_CALL and row.channel_kind == "voice"
                if unanswered_call:
                    row.state = "failed"
                    row.last_error = f"call {outcome.replace('_', ' ')}"
                if row.alert_id is None:
                    continue
                action = "call_" + outcome if row.channel_kind == "voice" else "sms_" + outcome
                data = {"recipient": row.recipient, "channel": row.channel_hash, "round": row.round}
                self._history(s, row.alert_id, action, SYSTEM, wall_now, wall_now, data)
                if unanswered_call and row.purpose == "alert":
                    touched.add((row.alert_id, row.round))
            await s.flush()
            unanswered = [t for t in sorted(touched) if await round_unanswered(s, *t)]
        await self._notify_changed()
        return unanswered

    async def calls_by_ref(self, refs: Sequence[str]) -> dict[str, int]:
        """Log ids of the calls still ringing with these provider call ids."""
        async with self.sessions() as s:
            q = select(NotificationLogRow.provider_ref, NotificationLogRow.id).where(
                NotificationLogRow.provider_ref.in_(list(refs)),
                NotificationLogRow.outcome == "calling",
            )
            return {str(ref): int(i) for ref, i in (await s.execute(q)).all()}
