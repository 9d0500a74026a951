"""The alert store's tables.

Nothing here is ever deleted: an alert moves through its states, and every
transition or human action appends a row to `alert_history`, whose id doubles as
the change feed's sequence number. Times are float epoch seconds (UTC), the same
as the domain types; `*_at` columns for human actions hold wall time.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from eldercare.db import Base

ID_LEN = 64


class AlertRow(Base):
    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_identity", "site", "resident", "kind", "status"),
        Index("ix_alerts_status_severity", "status", "severity"),
        Index("ix_alerts_raised_at", "raised_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(String(ID_LEN))
    resident: Mapped[str | None] = mapped_column(String(ID_LEN), nullable=True)
    room: Mapped[str | None] = mapped_column(String(ID_LEN), nullable=True)
    device: Mapped[str | None] = mapped_column(String(ID_LEN), nullable=True)
    kind: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    condition: Mapped[str] = mapped_column(String(16), default="active")  # active | cleared
    status: Mapped[str] = mapped_column(String(16), default="open")  # open|acknowledged|resolved
    raised_at: Mapped[float] = mapped_column(Float)  # event time of the first trigger
    created_at: Mapped[float] = mapped_column(Float)  # wall time the platform stored it
    last_update: Mapped[float] = mapped_column(Float)  # event time of the latest transition
    cleared_at: Mapped[float | None] = mapped_column(Float, nullable=True)  # event time
    acknowledged_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    resolved_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(32), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    assigned_to: Mapped[str | None] = mapped_column(String(128), nullable=True)
    inhibited_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    silenced_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    evidence: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


class AlertHistoryRow(Base):
    """Append-only audit of every transition and human action; `id` is the feed sequence."""

    __tablename__ = "alert_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    action: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(128))
    event_time: Mapped[float] = mapped_column(Float)
    wall_time: Mapped[float] = mapped_column(Float)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class NotificationLogRow(Base):
    """One message to one channel. Written `pending` before sending, so a restart
    resends exactly the messages that were never confirmed sent."""

    __tablename__ = "notification_log"
    __table_args__ = (Index("ix_notification_log_state_due", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id"), nullable=True, index=True)
    purpose: Mapped[str] = mapped_column(String(16))  # alert | followup | summary
    step: Mapped[int] = mapped_column(Integer, default=0)
    round: Mapped[int] = mapped_column(Integer, default=0)
    site: Mapped[str] = mapped_column(String(ID_LEN))
    recipient: Mapped[str] = mapped_column(String(160))  # "centre" or "<role>:<contact id>"
    role: Mapped[str] = mapped_column(String(32))
    language: Mapped[str] = mapped_column(String(8))
    channel_hash: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    next_attempt_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    sent_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    # What became of it (alerts.outcomes): sent, delivered, calling, answered, ...
    channel_kind: Mapped[str | None] = mapped_column(String(24), nullable=True)  # "sms", ...
    outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)
    provider_ref: Mapped[str | None] = mapped_column(String(128), nullable=True, index=True)
    digest_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # folded into
    params: Mapped[str | None] = mapped_column(Text, nullable=True)  # template variables


class EscalationStateRow(Base):
    """Where an alert's escalation stands. `step` is the next step to run; `round`
    counts firings (steps and repeats) and makes each firing's messages distinct."""

    __tablename__ = "escalation_state"
    __table_args__ = (Index("ix_escalation_state_due", "active", "next_due"),)

    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), primary_key=True)
    severity: Mapped[str] = mapped_column(String(16))
    step: Mapped[int] = mapped_column(Integer, default=0)
    round: Mapped[int] = mapped_column(Integer, default=0)
    next_due: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_fired_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[float] = mapped_column(Float)
