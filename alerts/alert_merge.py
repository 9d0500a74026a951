"""The merge rule: how one detector transition changes the alert of its identity
(site, resident, kind).

No session and no I/O: `merge_transition` is handed the open alert's row (or None)
and changes only that row, or makes a new one; the store loads and writes the rows.
That keeps the rule testable on its own (tests/unit/alerts/test_alert_merge.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from alerts import decisions
from alerts.models import AlertRow
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

MAX_EVIDENCE = 50  # per alert; a long-running condition keeps only its latest evidence


@dataclass(slots=True)
class Merged:
    """What a transition did to its alert, for the history and the change feed."""

    row: AlertRow
    change: str  # raised | updated | severity_raised | reactivated | cleared | re_raised
    action: str  # the history action
    event_time: float
    data: dict[str, Any]
    previous_severity: str | None = None

    @property
    def is_new(self) -> bool:
        """The transition opened a new alert: its row is not stored yet."""
        return self.change == AlertChangeKind.RAISED.value


def evidence_doc(e: Evidence) -> dict[str, Any]:
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


def jsonable(details: Any) -> dict[str, Any]:
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


def merge_transition(row: AlertRow | None, t: Transition, wall_now: float) -> Merged | None:
    """Merge `t` into `row`, the unresolved alert of its identity (None if there is
    none). Returns what changed, or None for a clear without an active alert (one
    already cleared or never seen, e.g. after a restore): it changes nothing a person
    needs, and the caller counts it."""
    evidence = [evidence_doc(e) for e in t.evidence]
    if t.action is TransitionAction.CLEAR:
        if row is None or row.condition == "cleared":
            return None
        row.condition = "cleared"
        row.cleared_at = t.ts
        row.last_update = max(row.last_update, t.ts)
        row.evidence = (list(row.evidence or []) + evidence)[-MAX_EVIDENCE:]
        return Merged(row, "cleared", "cleared", t.ts, {"details": jsonable(t.details)})
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
            details=jsonable(t.details),
            evidence=evidence[-MAX_EVIDENCE:],
        )
        raised = {
            "severity": row.severity,
            "details": jsonable(t.details),
            "via": t.action.value,
        }
        return Merged(row, "raised", "raised", t.ts, raised)
    previous = row.severity
    change = "updated"
    again = decisions.re_raise_of(
        AlertKind(row.kind), AlertStatus(row.status), t.action, t.ts, row.last_update
    )
    if again is not None:
        return _re_raise(row, t, again, evidence, wall_now)
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
    row.details = {**(row.details or {}), **jsonable(t.details)}
    row.evidence = (list(row.evidence or []) + evidence)[-MAX_EVIDENCE:]
    data: dict[str, Any] = {"severity": row.severity, "details": jsonable(t.details)}
    if change != "updated":
        data["change"] = change
        data["previous_severity"] = previous
    return Merged(row, change, "updated", t.ts, data, previous)


def _re_raise(
    row: AlertRow, t: Transition, what: str, evidence: list[dict[str, Any]], wall_now: float
) -> Merged:
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
    row.details = {**(row.details or {}), **jsonable(t.details), "re_raised": again}
    row.evidence = (list(row.evidence or []) + evidence)[-MAX_EVIDENCE:]
    data = {
        "severity": row.severity,
        "details": jsonable(t.details),
        "what": what,
        "count": count,
        # The history keeps the earlier acknowledgement; the alert waits for a new one.
        "acknowledged_by": row.acknowledged_by,
        "acknowledged_at": row.acknowledged_at,
    }
    row.acknowledged_at = None
    row.acknowledged_by = None
    change = AlertChangeKind.RE_RAISED.value
    return Merged(row, change, change, t.ts, data, previous)
