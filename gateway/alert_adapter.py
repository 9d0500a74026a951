"""The alert pipeline (`alerts.service.AlertService`) seen through the gateway's
`AlertService` protocol: records become API view models, errors become the
gateway's, and response-time figures are computed over the stored alerts."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from alerts.outcomes import Outcome as CallOutcome
from alerts.records import AlertRecord, FeedItem, HistoryEntry, NotificationRecord
from alerts.service import AlertService as PipelineService
from alerts.store import AlertFilter, AlertNotFound, AlertStateError
from gateway.evidence_text import observed_phrases
from gateway.ports import (
    AlertChange,
    AlertConflict,
    AlertEventOut,
    AlertOut,
    AlertQuery,
    EvidenceOut,
    NotificationOut,
    ResponseFigures,
)
from gateway.ports import AlertNotFound as GatewayNotFound

# Steps people take are stamped with wall time; detector steps with event time.
_HUMAN_ACTIONS = {"acknowledged", "assigned", "note", "resolved"}
# Steps about one message: the actor shown is its recipient.
_MESSAGE_ACTIONS = {
    "notified",
    "notification_digested",
    "call_answered",
    "call_not_answered",
    "call_busy",
    "call_failed",
    "sms_delivered",
    "sms_failed",
}
# Bounds the scan for figures: an alert is stored within this long of its event time
# (live operation; replays of old days are not what response figures are about).
_MAX_STORE_DELAY_S = 7 * 86400.0


def alert_out(r: AlertRecord) -> AlertOut:
    return AlertOut(
        id=str(r.id),
        site_id=r.site,
        resident_id=r.resident,
        room_id=r.room,
        device_id=r.device,
        kind=r.kind,
        severity=r.severity,
        condition=r.condition,
        handling=r.status,
        raised_at=r.raised_at,
        updated_at=r.last_update,
        cleared_at=r.cleared_at,
        acknowledged_at=r.acknowledged_at,
        acknowledged_by=r.acknowledged_by,
        assigned_to=r.assigned_to,
        resolved_at=r.resolved_at,
        resolved_by=r.resolved_by,
        outcome=r.outcome,
        resolution_note=r.note,
        evidence=[_evidence(e) for e in r.evidence],
        details=dict(r.details),
    )


def _evidence(doc: dict[str, Any]) -> EvidenceOut:
    return EvidenceOut(
        ts=float(doc.get("ts") or 0.0),
        device_id=doc.get("device_id"),
        stream=str(doc.get("stream") or ""),
        summary=str(doc.get("summary") or ""),
        room_id=doc.get("room_id"),
        phrases=observed_phrases(doc.get("observations") or []),
    )


def event_out(h: HistoryEntry) -> AlertEventOut:
    data = dict(h.data)
    text = data.get("text") or data.get("note")
    actor = h.actor
    if h.action == "assigned":
        text = str(data.get("to") or "")
    if h.action in _MESSAGE_ACTIONS:
        actor = str(data.get("recipient") or data.get("role") or h.actor)
    return AlertEventOut(
        at=h.wall_time if h.action in _HUMAN_ACTIONS else h.event_time,
        event=h.action,
        actor=actor,
        text=str(text) if text else None,
        details=data,
    )


def notification_out(n: NotificationRecord) -> NotificationOut:
    """A logged message as the pages show it: the outcome when a channel or the limits
    said more than the log's state (a call answered, a message folded into a digest)."""
    outcome = n.outcome or ("pending" if n.state == "pending" else n.state)
    if n.state == "pending" and outcome != "throttled":
        outcome = "pending"
    return NotificationOut(
        at=n.sent_at or n.next_attempt_at or n.created_at,
        recipient=n.recipient,
        role=n.role,
        purpose=n.purpose,
        channel=n.channel_kind or "",
        outcome=outcome,
    )


def _int_id(alert_id: str) -> int | None:
    ok = alert_id.isascii() and alert_id.isdigit() and len(alert_id) < 19
    return int(alert_id) if ok else None


def response_figures_of(alerts: list[AlertRecord], since: float, until: float) -> ResponseFigures:
    """Acknowledgement delay = wall time of the acknowledgement minus the wall time the
    platform stored the alert, so a replayed day's old event times do not count."""
    delays = [
        a.acknowledged_at - a.created_at
        for a in alerts
        if a.acknowledged_at is not None and a.inhibited_by is None
    ]
    raised = [a for a in alerts if a.inhibited_by is None]
    n = len(raised)
    within_60 = sum(1 for d in delays if d <= 60)
    within_180 = sum(1 for d in delays if d <= 180)
    return ResponseFigures(
        since=since,
        until=until,
        raised=n,
        acknowledged=len(delays),
        within_60s=within_60,
        within_180s=within_180,
        share_within_60s=within_60 / n if n else None,
        share_within_180s=within_180 / n if n else None,
        median_ack_seconds=statistics.median(delays) if delays else None,
    )


class PipelineAlertService:
    """Implements `gateway.ports.AlertService` over the alert pipeline's service."""

    def __init__(self, service: PipelineService) -> None:
        self.service = service

    async def list_alerts(self, query: AlertQuery) -> list[AlertOut]:
        residents = sorted(query.resident_ids) if query.resident_ids else [None]
        out: list[AlertOut] = []
        for resident in residents:
            records = await self.service.list_alerts(
                AlertFilter(
                    status=sorted(query.handling) if query.handling else None,
                    sites=sorted(query.site_ids) if query.site_ids is not None else None,
                    kinds=sorted(query.kinds) if query.kinds else None,
                    severities=sorted(query.severities) if query.severities else None,
                    resident=resident,
                    since=query.since,
                    until=query.until,
                    limit=query.limit,
                )
            )
            out.extend(alert_out(r) for r in records)
        return out

    async def get_alert(self, alert_id: str) -> AlertOut | None:
        key = _int_id(alert_id)
        detail = await self.service.get_alert(key) if key is not None else None
        return alert_out(detail.alert) if detail is not None else None

    async def alert_history(self, alert_id: str) -> list[AlertEventOut]:
        key = _int_id(alert_id)
        detail = await self.service.get_alert(key) if key is not None else None
        return [event_out(h) for h in detail.history] if detail is not None else []

    async def alert_notifications(self, alert_id: str) -> list[NotificationOut]:
        key = _int_id(alert_id)
        detail = await self.service.get_alert(key) if key is not None else None
        return [notification_out(n) for n in detail.notifications] if detail is not None else []

    async def record_call_outcomes(self, outcomes: Sequence[tuple[str, CallOutcome]]) -> int:
        return await self.service.record_call_outcomes(outcomes)

    async def _call(self, alert_id: str, method: str, *args: Any) -> AlertOut:
        key = _int_id(alert_id)
        if key is None:
            raise GatewayNotFound(alert_id)
        try:
            record = await getattr(self.service, method)(key, *args)
        except AlertNotFound as exc:
            raise GatewayNotFound(alert_id) from exc
        except AlertStateError as exc:
            raise AlertConflict(str(exc)) from exc
        return alert_out(record)

    async def acknowledge(self, alert_id: str, *, actor: str, at: float) -> AlertOut:
        return await self._call(alert_id, "acknowledge", actor)

    async def assign(self, alert_id: str, *, actor: str, assignee: str, at: float) -> AlertOut:
        return await self._call(alert_id, "assign", assignee, actor)

    async def add_note(self, alert_id: str, *, actor: str, text: str, at: float) -> AlertOut:
        return await self._call(alert_id, "add_note", text, actor)

    async def resolve(
        self, alert_id: str, *, actor: str, outcome: str, note: str | None, at: float
    ) -> AlertOut:
        return await self._call(alert_id, "resolve", outcome, note, actor)

    async def response_figures(
        self,
        *,
        site_ids: frozenset[str] | None,
        since: float,
        until: float,
        severities: frozenset[str] | None = None,
    ) -> ResponseFigures:
        # The window is over the wall time alerts were stored (created_at); raised_at is
        # event time and may be far in the past for replayed data.
        records = await self.service.list_alerts(
            AlertFilter(
                sites=sorted(site_ids) if site_ids is not None else None,
                severities=sorted(severities) if severities else None,
                since=since - _MAX_STORE_DELAY_S,
                limit=1_000_000,
            )
        )
        window = [r for r in records if since <= r.created_at <= until]
        figures = response_figures_of(window, since, until)
        return figures.model_copy(update={"severities": sorted(severities or [])})

    async def changes_since(self, seq: int, *, limit: int = 500) -> list[AlertChange]:
        items: list[FeedItem] = await self.service.changes_since(seq, limit)
        return [
            AlertChange(seq=i.seq, event=i.entry.action, alert=alert_out(i.alert)) for i in items
        ]

    async def latest_seq(self) -> int:
        return await self.service.last_seq()
