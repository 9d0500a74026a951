"""The pipeline's decisions as named pure predicates: no I/O, no clock, testable
with plain values."""

from __future__ import annotations

from dataclasses import replace

from alerts.policy import Delivery, InhibitRule, InhibitRules, SeverityPolicy, Silence
from alerts.records import AlertChange, AlertRecord, EscalationState
from eldercare.domain import AlertChangeKind, AlertKind, AlertStatus, TransitionAction

# Kinds whose trigger is an event, not a state: every new SOS press, every new fall is
# something that just happened to a person, so on an alert already acknowledged (and
# not resolved) it is news again. Value: which trigger actions are a new event (an SOS
# detector reports a press within its repeat window as an update; a fall detector's
# update is the same fall changing its radar status, not a new fall) and what the
# console says ("pressed again", "fell again"). Kinds not listed are conditions (out of
# bed, silent, offline, low battery...): one still or again true while a person is
# already handling it adds nothing they must act on, so it only updates the alert.
RE_RAISING_TRIGGERS: dict[AlertKind, tuple[frozenset[TransitionAction], str]] = {
    AlertKind.SOS: (
        frozenset({TransitionAction.RAISE, TransitionAction.UPDATE}),
        "pressed_again",
    ),
    AlertKind.FALL: (frozenset({TransitionAction.RAISE}), "fell_again"),
    AlertKind.WEARABLE_FALL: (frozenset({TransitionAction.RAISE}), "fell_again"),
}


def re_raise_of(
    kind: AlertKind, status: AlertStatus, action: TransitionAction, ts: float, last_update: float
) -> str | None:
    """What a trigger on an existing alert means when it re-raises it ("pressed_again",
    "fell_again"), else None. Only an acknowledged, unresolved alert is re-raised (an
    open one is still escalating), and only by a trigger newer than anything merged into
    it: a redelivered or replayed transition (same event time) is not a second press."""
    found = RE_RAISING_TRIGGERS.get(kind)
    if found is None or status != AlertStatus.ACKNOWLEDGED or ts <= last_update:
        return None
    actions, what = found
    return what if action in actions else None


def waiting_since(alert: AlertRecord) -> float:
    """Wall time the alert began waiting for a person: stored, or re-raised since."""
    again = alert.details.get("re_raised")
    if isinstance(again, dict) and isinstance(again.get("at"), int | float):
        return float(again["at"])
    return alert.created_at


NOTIFYING_CHANGES = frozenset(
    {AlertChangeKind.RAISED, AlertChangeKind.SEVERITY_RAISED, AlertChangeKind.RE_RAISED}
)


def should_notify(change: AlertChange) -> bool:
    """Dedup: a new alert, a rise in severity of an unacknowledged one, or a new press
    or fall on an acknowledged one (re-raised) is news; a repeated trigger, or a
    condition that came back while its escalation still runs, is not."""
    return change.change in NOTIFYING_CHANGES and change.alert.status == AlertStatus.OPEN


def inhibitor_of(
    alert: AlertRecord, active: list[AlertRecord], rules: InhibitRules
) -> tuple[AlertRecord, InhibitRule] | None:
    """The active alert (and rule) that inhibits `alert`, if any."""
    for rule in rules.rules:
        if alert.kind not in rule.target_kinds:
            continue
        for source in active:
            if source.id == alert.id or source.kind not in rule.source_kinds:
                continue
            if source.condition != "active" or source.status == "resolved":
                continue
            if "site" in rule.equal and source.site != alert.site:
                continue
            if "resident" in rule.equal and source.resident != alert.resident:
                continue
            return source, rule
    return None


def inhibits_any(kind: str, rules: InhibitRules) -> bool:
    return any(kind in r.source_kinds for r in rules.rules)


def inhibition_ended(inhibitor: AlertRecord | None) -> bool:
    """An inhibited alert is released once its inhibitor is gone, resolved or cleared."""
    return inhibitor is None or inhibitor.status == "resolved" or inhibitor.condition != "active"


def silence_of(alert: AlertRecord, silences: list[Silence], now: float) -> Silence | None:
    return next((s for s in silences if s.covers(alert.kind, now)), None)


def should_escalate(alert: AlertRecord, state: EscalationState, now: float) -> bool:
    """Run the next escalation step: nobody acknowledged the alert and its time has come."""
    return (
        state.active
        and alert.status == "open"
        and alert.inhibited_by is None
        and alert.silenced_by is None
        and state.next_due is not None
        and now >= state.next_due
    )


def next_state(
    state: EscalationState, policy: SeverityPolicy, now: float
) -> tuple[EscalationState, list[str], str]:
    """Fire the due step: the new state, the recipient specs to notify, and what fired
    ('step' or 'repeat'). After the last step the repeat (if any) runs until acknowledged."""
    due = state.next_due if state.next_due is not None else now
    # Catching up after downtime: the next wait counts from now, not from a stale due time.
    base = max(due, now - 1.0)
    if state.step < len(policy.steps):
        step = policy.steps[state.step]
        following = state.step + 1
        if following < len(policy.steps) or policy.repeat is not None:
            next_due: float | None = base + step.wait_s
        else:
            next_due = None
        new = replace(
            state,
            step=following,
            round=state.round + 1,
            next_due=next_due,
            last_fired_at=now,
            active=next_due is not None,
        )
        return new, list(step.notify), "step"
    if policy.repeat is not None:
        new = replace(
            state,
            round=state.round + 1,
            next_due=base + policy.repeat.every_s,
            last_fired_at=now,
        )
        return new, list(policy.repeat.notify), "repeat"
    return replace(state, next_due=None, active=False), [], "done"


def has_next_step(state: EscalationState, policy: SeverityPolicy) -> bool:
    """Whether an unanswered round may move on at once (a repeat phase never hurries)."""
    return state.active and state.step < len(policy.steps)


def retry_at(attempts_so_far: int, delivery: Delivery, now: float) -> float | None:
    """When to try a failed send again, or None once it has failed `max_attempts` times."""
    if attempts_so_far >= delivery.max_attempts:
        return None
    return now + delivery.backoff_s * 2.0 ** (attempts_so_far - 1)


def should_auto_resolve(alert: AlertRecord, policy: SeverityPolicy) -> bool:
    return (
        policy.auto_resolve_cleared
        and alert.condition == "cleared"
        and alert.status != "resolved"
        and alert.severity not in ("critical", "high")
    )
