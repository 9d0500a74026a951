"""Plain, immutable views of stored alerts, handed out by the store so that no
caller ever holds a database session."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from alerts.models import AlertHistoryRow, AlertRow, EscalationStateRow, NotificationLogRow
from eldercare.domain import AlertChangeKind, AlertCondition, AlertKind, AlertStatus, Severity


def iso(ts: float | None) -> str | None:
    """Epoch seconds as ISO 8601 UTC with milliseconds, or None."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    seq: int  # the change feed's sequence number
    alert_id: int
    action: str
    actor: str
    event_time: float
    wall_time: float
    data: dict[str, Any]

    @classmethod
    def of(cls, row: AlertHistoryRow) -> HistoryEntry:
        return cls(
            seq=row.id,
            alert_id=row.alert_id,
            action=row.action,
            actor=row.actor,
            event_time=row.event_time,
            wall_time=row.wall_time,
            data=dict(row.data or {}),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "action": self.action,
            "actor": self.actor,
            "event_time": iso(self.event_time),
            "wall_time": iso(self.wall_time),
            "data": self.data,
        }


@dataclass(frozen=True, slots=True)
class AlertRecord:
    id: int
    site: str
    resident: str | None
    room: str | None
    device: str | None
    kind: AlertKind
    severity: Severity
    condition: AlertCondition
    status: AlertStatus
    raised_at: float
    created_at: float
    last_update: float
    cleared_at: float | None = None
    acknowledged_at: float | None = None
    acknowledged_by: str | None = None
    resolved_at: float | None = None
    resolved_by: str | None = None
    outcome: str | None = None
    note: str | None = None
    assigned_to: str | None = None
    inhibited_by: int | None = None
    silenced_by: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    evidence: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def of(cls, row: AlertRow) -> AlertRecord:
        return cls(
            id=row.id,
            site=row.site,
            resident=row.resident,
            room=row.room,
            device=row.device,
            kind=AlertKind(row.kind),
            severity=Severity(row.severity),
            condition=AlertCondition(row.condition),
            status=AlertStatus(row.status),
            raised_at=row.raised_at,
            created_at=row.created_at,
            last_update=row.last_update,
            cleared_at=row.cleared_at,
            acknowledged_at=row.acknowledged_at,
            acknowledged_by=row.acknowledged_by,
            resolved_at=row.resolved_at,
            resolved_by=row.resolved_by,
            outcome=row.outcome,
            note=row.note,
            assigned_to=row.assigned_to,
            inhibited_by=row.inhibited_by,
            silenced_by=row.silenced_by,
            details=dict(row.details or {}),
            evidence=list(row.evidence or []),
        )

    @property
    def identity(self) -> tuple[str, str | None, AlertKind]:
        return (self.site, self.resident, self.kind)

    @property
    def is_open(self) -> bool:
        """Not resolved yet (open or acknowledged): new triggers merge into it."""
        return self.status != AlertStatus.RESOLVED

    def to_dict(self, history: list[HistoryEntry] | None = None) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "id": self.id,
            "site": self.site,
            "resident": self.resident,
            "room": self.room,
            "device": self.device,
            "kind": self.kind,
            "severity": self.severity,
            "condition": self.condition,
            "status": self.status,
            "raised_at": iso(self.raised_at),
            "created_at": iso(self.created_at),
            "last_update": iso(self.last_update),
            "cleared_at": iso(self.cleared_at),
            "acknowledged_at": iso(self.acknowledged_at),
            "acknowledged_by": self.acknowledged_by,
            "resolved_at": iso(self.resolved_at),
            "resolved_by": self.resolved_by,
            "outcome": self.outcome,
            "note": self.note,
            "assigned_to": self.assigned_to,
            "inhibited_by": self.inhibited_by,
            "silenced_by": self.silenced_by,
            "details": self.details,
            "evidence": self.evidence,
        }
        if history is not None:
            doc["history"] = [h.to_dict() for h in history]
        return doc


@dataclass(frozen=True, slots=True)
class EscalationState:
    alert_id: int
    severity: str
    step: int  # index of the next step to run
    round: int  # firings so far
    next_due: float | None
    last_fired_at: float | None
    active: bool

    @classmethod
    def of(cls, row: EscalationStateRow) -> EscalationState:
        return cls(
            alert_id=row.alert_id,
            severity=row.severity,
            step=row.step,
            round=row.round,
            next_due=row.next_due,
            last_fired_at=row.last_fired_at,
            active=row.active,
        )


@dataclass(frozen=True, slots=True)
class NotificationRecord:
    id: int
    idempotency_key: str
    alert_id: int | None
    purpose: str
    step: int
    round: int
    site: str
    recipient: str
    role: str
    language: str
    channel_hash: str
    title: str
    body: str
    state: str
    attempts: int
    last_error: str | None
    created_at: float
    next_attempt_at: float | None
    sent_at: float | None
    channel_kind: str | None = None
    outcome: str | None = None
    provider_ref: str | None = None
    digest_id: int | None = None
    params: str | None = None

    @classmethod
    def of(cls, row: NotificationLogRow) -> NotificationRecord:
        return cls(
            id=row.id,
            idempotency_key=row.idempotency_key,
            alert_id=row.alert_id,
            purpose=row.purpose,
            step=row.step,
            round=row.round,
            site=row.site,
            recipient=row.recipient,
            role=row.role,
            language=row.language,
            channel_hash=row.channel_hash,
            title=row.title,
            body=row.body,
            state=row.state,
            attempts=row.attempts,
            last_error=row.last_error,
            created_at=row.created_at,
            next_attempt_at=row.next_attempt_at,
            sent_at=row.sent_at,
            channel_kind=row.channel_kind,
            outcome=row.outcome,
            provider_ref=row.provider_ref,
            digest_id=row.digest_id,
            params=row.params,
        )


@dataclass(frozen=True, slots=True)
class PlannedNotification:
    """A message the pipeline decided to send; becomes a `pending` log row."""

    idempotency_key: str
    alert_id: int | None
    purpose: str
    step: int
    round: int
    site: str
    recipient: str
    role: str
    language: str
    channel_hash: str
    title: str
    body: str
    channel_kind: str | None = None
    params: str | None = None  # template variables (JSON) for SMS and voice providers


@dataclass(frozen=True, slots=True)
class AlertChange:
    """What a transition did to an alert, for the notification stages."""

    alert: AlertRecord
    change: AlertChangeKind
    previous_severity: Severity | None = None


@dataclass(frozen=True, slots=True)
class FeedItem:
    """One entry of the change feed: a history entry and the alert as it is now."""

    seq: int
    entry: HistoryEntry
    alert: AlertRecord

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "change": self.entry.to_dict(), "alert": self.alert.to_dict()}
