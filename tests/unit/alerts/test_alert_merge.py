"""The merge rule on its own: no database, no session; a transition and the open
alert's row (or none) in, the changed row and what changed out."""

from __future__ import annotations

import math

from alerts.alert_merge import MAX_EVIDENCE, merge_transition
from alerts.models import AlertRow
from eldercare.domain import (
    AlertKind,
    AlertStatus,
    Evidence,
    Severity,
    Transition,
    TransitionAction,
)
from eldercare.evidence import EvidenceCode, Observation

T0 = 1_700_000_000.0
WALL = T0 + 3.0
RAISE, UPDATE, CLEAR = TransitionAction.RAISE, TransitionAction.UPDATE, TransitionAction.CLEAR


def _t(
    action: TransitionAction = RAISE,
    ts: float = T0,
    kind: AlertKind = AlertKind.INACTIVITY,
    severity: Severity = Severity.WARNING,
    **details: object,
) -> Transition:
    seen = Evidence(ts, "radar-1", "presence", "no movement", "living")
    return Transition(
        action, kind, "site-1", ts, severity, "r1", "living", "radar-1", (seen,), details
    )


def _raised(t: Transition) -> AlertRow:
    merged = merge_transition(None, t, WALL)
    assert merged is not None
    return merged.row


def test_a_first_trigger_opens_a_new_alert_with_its_identity_and_evidence() -> None:
    merged = merge_transition(None, _t(minutes=40), WALL)
    assert merged is not None and merged.is_new
    assert (merged.change, merged.action, merged.event_time) == ("raised", "raised", T0)
    row = merged.row
    assert (row.site, row.resident, row.kind) == ("site-1", "r1", "inactivity")
    assert (row.status, row.condition, row.severity) == ("open", "active", "warning")
    assert (row.raised_at, row.created_at, row.last_update) == (T0, WALL, T0)
    assert row.details == {"minutes": 40}
    assert row.evidence[0]["summary"] == "no movement"
    assert merged.data == {"severity": "warning", "details": {"minutes": 40}, "via": "raise"}


def test_a_repeated_trigger_updates_without_news() -> None:
    row = _raised(_t(minutes=40))
    merged = merge_transition(row, _t(UPDATE, T0 + 60, minutes=41, room="x"), WALL)
    assert merged is not None and not merged.is_new
    assert merged.change == "updated" and "change" not in merged.data
    assert row.last_update == T0 + 60
    assert row.details == {"minutes": 41, "room": "x"}
    assert len(row.evidence) == 2


def test_a_more_urgent_severity_raises_it_in_place_and_a_milder_one_does_not() -> None:
    row = _raised(_t())
    merged = merge_transition(row, _t(UPDATE, T0 + 1, severity=Severity.HIGH), WALL)
    assert merged is not None and merged.change == "severity_raised"
    assert merged.previous_severity == "warning" and row.severity == "high"
    assert merged.data["previous_severity"] == "warning"
    milder = merge_transition(row, _t(UPDATE, T0 + 2, severity=Severity.INFO), WALL)
    assert milder is not None and milder.change == "updated" and row.severity == "high"


def test_a_clear_marks_the_condition_and_a_later_trigger_reactivates_it() -> None:
    row = _raised(_t())
    cleared = merge_transition(row, _t(CLEAR, T0 + 10), WALL)
    assert cleared is not None and cleared.change == "cleared"
    assert (row.condition, row.cleared_at, row.status) == ("cleared", T0 + 10, "open")
    back = merge_transition(row, _t(UPDATE, T0 + 20), WALL)
    assert back is not None and back.change == "reactivated"
    assert (row.condition, row.cleared_at) == ("active", None)


def test_a_clear_without_an_active_alert_changes_nothing() -> None:
    assert merge_transition(None, _t(CLEAR), WALL) is None
    row = _raised(_t())
    assert merge_transition(row, _t(CLEAR, T0 + 1), WALL) is not None
    assert merge_transition(row, _t(CLEAR, T0 + 2), WALL) is None
    assert row.cleared_at == T0 + 1


def test_a_new_press_on_an_acknowledged_sos_re_raises_it() -> None:
    row = _raised(_t(kind=AlertKind.SOS, severity=Severity.CRITICAL))
    row.status, row.acknowledged_by, row.acknowledged_at = "acknowledged", "op-1", WALL + 5
    merged = merge_transition(row, _t(UPDATE, T0 + 40, AlertKind.SOS, Severity.CRITICAL), T0 + 41)
    assert merged is not None and merged.change == "re_raised"
    assert row.status == AlertStatus.OPEN.value
    assert row.acknowledged_by is None and row.acknowledged_at is None  # awaits a new one
    assert row.details["re_raised"] == {
        "what": "pressed_again",
        "count": 1,
        "ts": T0 + 40,
        "at": T0 + 41,
    }
    assert (merged.data["acknowledged_by"], merged.data["acknowledged_at"]) == ("op-1", WALL + 5)


def test_a_redelivered_press_does_not_re_raise() -> None:
    row = _raised(_t(kind=AlertKind.SOS, severity=Severity.CRITICAL))
    row.status = "acknowledged"
    merged = merge_transition(row, _t(UPDATE, T0, AlertKind.SOS, Severity.CRITICAL), WALL)
    assert merged is not None and merged.change == "updated" and row.status == "acknowledged"


def test_evidence_keeps_only_the_latest_and_carries_observation_codes() -> None:
    row = _raised(_t())
    for i in range(1, MAX_EVIDENCE + 10):
        merge_transition(row, _t(UPDATE, T0 + i), WALL)
    assert len(row.evidence) == MAX_EVIDENCE
    assert row.evidence[-1]["ts"] == T0 + MAX_EVIDENCE + 9
    seen = Evidence(
        T0, None, "sos", "pressed", observations=(Observation(EvidenceCode.SOS_PRESSED),)
    )
    t = Transition(RAISE, AlertKind.SOS, "site-1", T0, Severity.CRITICAL, evidence=(seen,))
    merged = merge_transition(None, t, WALL)
    assert merged is not None
    assert merged.row.evidence[0]["observations"] == [{"code": "sos_pressed", "params": {}}]


def test_details_json_cannot_hold_are_kept_as_text() -> None:
    merged = merge_transition(None, _t(value=math.nan, when=object), WALL)
    assert merged is not None
    assert merged.row.details["value"] == "nan"
    assert isinstance(merged.row.details["when"], str)
