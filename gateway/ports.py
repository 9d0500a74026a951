"""What the gateway needs from the other parts, as small protocols and view models.

The gateway never reaches into the alert store's tables or InfluxDB's wire format:
it talks to an `AlertService`, an `InfluxQuery` and an `IndexProvider`. The view
models here are also the API's response models, so the OpenAPI document
describes exactly what a client gets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel, Field

from alerts.outcomes import Outcome as CallOutcome
from alerts.terms import Outcome
from eldercare.errors import EldercareError
from eldercare.registry_index import RegistryIndex
from gateway.evidence_text import EvidencePhrase

# The outcomes a person may record when resolving (the pipeline alone uses auto_cleared).
HUMAN_OUTCOMES: tuple[str, ...] = tuple(o.value for o in Outcome if o is not Outcome.AUTO_CLEARED)


class EvidenceOut(BaseModel):
    ts: float = Field(description="event time, epoch seconds")
    device_id: str | None = None
    stream: str
    summary: str = Field(description="what the sensor saw, short English text")
    room_id: str | None = None
    room_name: str | None = Field(None, description="from the registry")
    device_kind: str | None = Field(None, description="from the registry: motion, door, ...")
    phrases: list[EvidencePhrase] = Field(
        default_factory=list,
        description="what was seen as i18n phrases (evidence.<code>); empty: show the summary",
    )


class AlertOut(BaseModel):
    id: str
    site_id: str
    resident_id: str | None = None
    room_id: str | None = None
    device_id: str | None = None
    kind: str = Field(description="alert kind identifier, e.g. sos, fall")
    severity: str = Field(description="critical, high, medium, warning, info")
    condition: str = Field(description="active or cleared")
    handling: str = Field(description="open, acknowledged or resolved")
    raised_at: float = Field(description="event time the alert was raised, epoch seconds")
    updated_at: float | None = None
    cleared_at: float | None = None
    acknowledged_at: float | None = None
    acknowledged_by: str | None = None
    assigned_to: str | None = None
    resolved_at: float | None = None
    resolved_by: str | None = None
    outcome: str | None = None
    resolution_note: str | None = None
    evidence: list[EvidenceOut] = Field(default_factory=list)
    details: dict[str, Any] = Field(default_factory=dict)
    # Filled in by the gateway from the registry, for display.
    site_name: str | None = None
    site_address: str | None = None
    resident_name: str | None = None
    room_name: str | None = None


class AlertEventOut(BaseModel):
    at: float = Field(description="when it happened (event time, or wall time of a human step)")
    event: str = Field(
        description="raised, updated, cleared, notified, escalated, acknowledged, "
        "assigned, note, resolved"
    )
    actor: str | None = Field(None, description="user name, or the channel/contact notified")
    text: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class NotificationOut(BaseModel):
    """One message about an alert: who, by which channel, and what became of it."""

    at: float = Field(description="when it was sent, or last tried (wall time)")
    recipient: str = Field(description="`centre` or `<role>:<contact id>`")
    role: str
    purpose: str = Field(description="alert, followup")
    channel: str = Field(description="sms, voice, wechat_work, email, push; '' if unknown")
    outcome: str = Field(
        description="pending, sent, delivered, calling, answered, not_answered, busy, failed, "
        "throttled, digested"
    )


class AlertChange(BaseModel):
    """One entry of the alert change feed; `seq` increases strictly."""

    seq: int
    event: str
    alert: AlertOut


# Alarms a person must answer; warnings and info (device upkeep, routine notes) are not
# what the telecare 60 s / 180 s standard is about.
ALARM_SEVERITIES: frozenset[str] = frozenset({"critical", "high", "medium"})


class ResponseFigures(BaseModel):
    since: float
    until: float
    severities: list[str] = Field(default_factory=list, description="severities counted")
    raised: int = Field(description="alerts raised in the window")
    acknowledged: int = Field(description="of those, acknowledged")
    within_60s: int
    within_180s: int
    share_within_60s: float | None = Field(description="0..1 of raised; None without alerts")
    share_within_180s: float | None = None
    median_ack_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class AlertQuery:
    site_ids: frozenset[str] | None = None  # None: every site
    resident_ids: frozenset[str] | None = None
    handling: frozenset[str] | None = None
    kinds: frozenset[str] | None = None
    severities: frozenset[str] | None = None
    since: float | None = None
    until: float | None = None
    limit: int = 500
    extra: Mapping[str, Any] = field(default_factory=dict)


class AlertNotFound(EldercareError, LookupError):
    pass


class AlertConflict(EldercareError, ValueError):
    """The step is not allowed in the alert's current state (e.g. resolve twice)."""


class AlertService(Protocol):
    async def list_alerts(self, query: AlertQuery) -> list[AlertOut]: ...

    async def get_alert(self, alert_id: str) -> AlertOut | None: ...

    async def alert_history(self, alert_id: str) -> list[AlertEventOut]: ...

    async def alert_notifications(self, alert_id: str) -> list[NotificationOut]: ...

    async def record_call_outcomes(self, outcomes: Sequence[tuple[str, CallOutcome]]) -> int: ...

    async def acknowledge(self, alert_id: str, *, actor: str, at: float) -> AlertOut: ...

    async def assign(self, alert_id: str, *, actor: str, assignee: str, at: float) -> AlertOut: ...

    async def add_note(self, alert_id: str, *, actor: str, text: str, at: float) -> AlertOut: ...

    async def resolve(
        self, alert_id: str, *, actor: str, outcome: str, note: str | None, at: float
    ) -> AlertOut: ...

    async def response_figures(
        self,
        *,
        site_ids: frozenset[str] | None,
        since: float,
        until: float,
        severities: frozenset[str] | None = None,
    ) -> ResponseFigures: ...

    async def changes_since(self, seq: int, *, limit: int = 500) -> list[AlertChange]: ...

    async def latest_seq(self) -> int: ...


class InfluxQuery(Protocol):
    async def query(self, influxql: str, db: str | None = None) -> Sequence[Mapping[str, Any]]:
        """Rows of an InfluxQL SELECT: one mapping per point with `time` (epoch seconds or
        RFC 3339), the fields selected and the tags grouped by."""
        ...


class IndexProvider(Protocol):
    async def current(self) -> RegistryIndex:
        """The registry snapshot to answer from."""
        ...

    async def refresh(self) -> RegistryIndex:
        """Re-read after an edit through the API."""
        ...
