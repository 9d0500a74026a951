"""The alert store: lifecycle writes, human actions, escalation state, notification
log and queries, over SQLAlchemy 2 async (SQLite by default, PostgreSQL by URL).

Every method runs in a transaction of its own and returns plain records
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
import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Table, and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from alerts import decisions
from alerts.models import AlertHistoryRow, AlertRow, EscalationStateRow, NotificationLogRow
from alerts.outcomes import UNANSWERED_CALL, Receipt
from alerts.records import (
    AlertChange,
    AlertRecord,
    EscalationState,
    FeedItem,
    HistoryEntry,
    NotificationRecord,
    PlannedNotification,
)
from alerts.terms import Outcome
from eldercare.db import Base, session_factory
from eldercare.domain import (
    AlertChangeKind,
    AlertCondition,
    AlertKind,
    AlertStatus,
    Evidence,
    Severity,
    Transition,
    TransitionAction,
)
from eldercare.errors import EldercareError
from eldercare.logs import get_logger

if TYPE_CHECKING:
    Sessions = async_sessionmaker[AsyncSession]
else:
    Sessions = async_sessionmaker

log = get_logger(__name__)

SYSTEM = "system"
MAX_EVIDENCE = 50  # per alert; a long-running condition keeps only its latest evidence
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


@dataclass(slots=True)
class _Applied:
    row: AlertRow
    change: str  # raised | updated | severity_raised | reactivated | cleared | re_raised
    action: str  # the history action
    event_time: float
    data: dict[str, Any]
    previous_severity: str | None = None


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


async def init_store(engine: AsyncEngine) -> None:
    """Create the alert tables (tests and first start; migrations come later)."""
    import alerts.models  # noqa: F401  (registers the tables on Base)

    async with engine.begin() as conn:
        await conn.run_sync(
            Base.metadata.create_all,
            tables=ALERT_TABLES,
        )


def _evidence_doc(e: Evidence) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "ts": e.ts,
        "device_id": e.device_id,
        "stream": e.stream,
        "summary": e.summary,
        "room_id": e.room_id,
    }
    if e.observations:  # what was seen as codes: the gateway renders them per language
        doc["observations"] = [
            {"code": o.code.value, "params": dict(o.params)} for o in e.observations
        ]
    return doc


def _jsonable(details: Any) -> dict[str, Any]:
    """Details as JSON can store them: a detector's odd value (a datetime, a numpy
    number) is kept as text rather than failing the whole batch."""
    try:
        text = json.dumps(dict(details), default=str, allow_nan=False)
    except ValueError:  # NaN or infinity: no JSON for it, and PostgreSQL would refuse it
        text = json.dumps({str(k): str(v) for k, v in dict(details).items()})
    doc: dict[str, Any] = json.loads(text)
    return doc


def _rank(severity: str) -> int:
    return Severity(severity).rank


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for i in range(0, len(values), _CHUNK):
        yield values[i : i + _CHUNK]


class AlertStore:
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

    # ---- lifecycle -------------------------------------------------------------------

    async def apply_transitions(
        self, transitions: Sequence[Transition], wall_now: float
    ) -> list[AlertChange]:
        """Merge detector transitions into alerts by identity (site, resident, kind).

        One transaction for the batch; new alerts are inserted together. A change's
        record shows the alert as it stands after the whole batch."""
        if not transitions:
            return []
        applied: list[_Applied] = []
        async with self._write_lock, self.sessions.begin() as s:
            sites = sorted({t.site_id for t in transitions})
            open_rows: dict[tuple[str, str | None, str], AlertRow] = {}
            for chunk in _chunks(sites):
                q = select(AlertRow).where(AlertRow.status != "resolved", AlertRow.site.in_(chunk))
                for row in (await s.scalars(q)).all():
                    open_rows[(row.site, row.resident, row.kind)] = row
            for t in sorted(transitions, key=lambda t: t.ts):
                done = self._apply_one(s, t, open_rows, wall_now)
                if done is not None:
                    applied.append(done)
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

    def _apply_one(
        self,
        s: AsyncSession,
        t: Transition,
        open_rows: dict[tuple[str, str | None, str], AlertRow],
        wall_now: float,
    ) -> _Applied | None:
        key = (t.site_id, t.resident_id, t.kind.value)
        row = open_rows.get(key)
        evidence = [_evidence_doc(e) for e in t.evidence]
        if t.action is TransitionAction.CLEAR:
            if row is None or row.condition == "cleared":
                # A clear for an alert already resolved (or never seen, e.g. after a
                # restore) changes nothing a person needs; counted and logged.
                self.orphan_clears += 1
                log.info(
                    "clear without an active alert",
                    extra={"site": t.site_id, "resident": t.resident_id, "kind": t.kind.value},
                )
                return None
            row.condition = "cleared"
            row.cleared_at = t.ts
            row.last_update = max(row.last_update, t.ts)
            row.evidence = (list(row.evidence or []) + evidence)[-MAX_EVIDENCE:]
            return _Applied(row, "cleared", "cleared", t.ts, {"details": _jsonable(t.details)})
        if row is None:
            row = AlertRow(
                site=t.site_id,
                resident=t.resident_id,
                room=t.room_id,
                device=t.device_id,
                kind=t.kind.value,
                severity=t.severity.value,
                condition="active",
                status="open",
                raised_at=t.ts,
                created_at=wall_now,
                last_update=t.ts,
                details=_jsonable(t.details),
                evidence=evidence[-MAX_EVIDENCE:],
            )
            s.add(row)
            open_rows[key] = row
            raised = {
                "severity": row.severity,
                "details": _jsonable(t.details),
                "via": t.action.value,
            }
            return _Applied(row, "raised", "raised", t.ts, raised)
        previous = row.severity
        change = "updated"
        again = decisions.re_raise_of(
            AlertKind(row.kind), AlertStatus(row.status), t.action, t.ts, row.last_update
        )
        if again is not None:
            return self._re_raise(row, t, again, evidence, wall_now)
        if _rank(t.severity.value) < _rank(previous):
            row.severity = t.severity.value
            change = "severity_raised"
        if row.condition == "cleared":
            row.condition = "active"
            row.cleared_at = None
            if change == "updated":
                change = "reactivated"
        row.last_update = max(row.last_update, t.ts)
        row.room = t.room_id or row.room
        row.device = t.device_id or row.device
        row.details = {**(row.details or {}), **_jsonable(t.details)}
        row.evidence = (list(row.evidence or []) + evidence)[-MAX_EVIDENCE:]
        data: dict[str, Any] = {"severity": row.severity, "details": _jsonable(t.details)}
        if change != "updated":
            data["change"] = change
            data["previous_severity"] = previous
        return _Applied(row, change, "updated", t.ts, data, previous)

    @staticmethod
    def _re_raise(
        row: AlertRow, t: Transition, what: str, evidence: list[dict[str, Any]], wall_now: float
    ) -> _Applied:
        """A new press or fall on an acknowledged alert: open again, to be escalated anew
        from the first step. `details.re_raised` tells the console what happened and
        when (wall time, so the next acknowledgement's response time counts from it)."""
        previous = row.severity
        if _rank(t.severity.value) < _rank(previous):
            row.severity = t.severity.value
        count = int((row.details or {}).get("re_raised", {}).get("count", 0)) + 1
        again = {"what": what, "count": count, "ts": t.ts, "at": wall_now}
        row.status = AlertStatus.OPEN.value
        row.condition = AlertCondition.ACTIVE.value
        row.cleared_at = None
        row.last_update = t.ts
        row.room = t.room_id or row.room
        row.device = t.device_id or row.device
        row.details = {**(row.details or {}), **_jsonable(t.details), "re_raised": again}
        row.evidence = (list(row.evidence or []) + evidence)[-MAX_EVIDENCE:]
        data = {
            "severity": row.severity,
            "details": _jsonable(t.details),
            "what": what,
            "count": count,
            # The history keeps the earlier acknowledgement; the alert waits for a new one.
            "acknowledged_by": row.acknowledged_by,
            "acknowledged_at": row.acknowledged_at,
        }
        row.acknowledged_at = None
        row.acknowledged_by = None
        change = AlertChangeKind.RE_RAISED.value
        return _Applied(row, change, change, t.ts, data, previous)

    async def active_alerts(self, sites: Sequence[str]) -> list[AlertRecord]:
        """Unresolved alerts whose condition is active, at these sites (inhibition sources)."""
        out: list[AlertRecord] = []
        async with self.sessions() as s:
            for chunk in _chunks(sorted(set(sites))):
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
            for chunk in _chunks(by_ids):
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
            await self._stop_escalation(s, alert_id, wall_now)
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

    # ---- human actions ---------------------------------------------------------------

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
                await self._stop_escalation(s, alert_id, wall_now)
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
            await self._stop_escalation(s, alert_id, wall_now)
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

    # ---- escalation ------------------------------------------------------------------

    @staticmethod
    async def _stop_escalation(s: AsyncSession, alert_id: int, wall_now: float) -> None:
        await s.execute(
            update(EscalationStateRow)
            .where(EscalationStateRow.alert_id == alert_id)
            .values(active=False, next_due=None, updated_at=wall_now)
        )

    async def start_escalations(
        self, starts: Sequence[tuple[int, str]], due: float, wall_now: float
    ) -> None:
        """(Re)start escalation at step 0 for (alert id, severity); rounds keep counting."""
        if not starts:
            return
        async with self._write_lock, self.sessions.begin() as s:
            ids = [a for a, _ in starts]
            existing: dict[int, EscalationStateRow] = {}
            for chunk in _chunks(ids):
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
            existing = await self._existing_keys(s, keys)
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
                self._add_planned(s, planned, existing, wall_now)
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

    # ---- notification log ------------------------------------------------------------

    @staticmethod
    async def _existing_keys(s: AsyncSession, keys: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for chunk in _chunks(list(keys)):
            q = select(NotificationLogRow.idempotency_key).where(
                NotificationLogRow.idempotency_key.in_(chunk)
            )
            found.update((await s.scalars(q)).all())
        return found

    @staticmethod
    def _add_planned(
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

    async def add_notifications(
        self, planned: Sequence[PlannedNotification], wall_now: float
    ) -> int:
        """Write messages as pending unless their idempotency key is already logged."""
        if not planned:
            return 0
        async with self._write_lock, self.sessions.begin() as s:
            existing = await self._existing_keys(s, [p.idempotency_key for p in planned])
            return self._add_planned(s, planned, existing, wall_now)

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
            return bool(await self._existing_keys(s, [key]))

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
            for chunk in _chunks(ids):
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
            unanswered = [t for t in sorted(touched) if await self._round_unanswered(s, *t)]
        await self._notify_changed()
        return unanswered

    @staticmethod
    async def _round_unanswered(s: AsyncSession, alert_id: int, round_: int) -> bool:
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
            if await self._existing_keys(s, [digest.idempotency_key]):
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
            for chunk in _chunks(list(ids)):
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
            unanswered = [t for t in sorted(touched) if await self._round_unanswered(s, *t)]
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

    # ---- queries ---------------------------------------------------------------------

    async def get(self, alert_id: int) -> AlertRecord | None:
        async with self.sessions() as s:
            row = await s.get(AlertRow, alert_id)
            return AlertRecord.of(row) if row else None

    async def get_many(self, alert_ids: Sequence[int]) -> dict[int, AlertRecord]:
        out: dict[int, AlertRecord] = {}
        async with self.sessions() as s:
            for chunk in _chunks(sorted(set(alert_ids))):
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
