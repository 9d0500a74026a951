"""What providers report after a send (a call answered or not, an SMS delivered),
applied to the notification log and to escalation: a step nobody answered makes
the next step due at once. Used by the pipeline (receipts it asks for) and by the
service (status callbacks the gateway receives, e.g. Tencent's voice status)."""

from __future__ import annotations

from collections.abc import Sequence

from alerts import decisions
from alerts.outcomes import Outcome
from alerts.policy import PolicySet
from alerts.store import AlertStore


async def move_on(
    store: AlertStore, policies: PolicySet, unanswered: Sequence[tuple[int, int]], wall: float
) -> int:
    """Pull the next step forward for each unanswered (alert id, round); returns how
    many were pulled (the caller wakes the escalation loop)."""
    if not unanswered:
        return 0
    alerts = await store.get_many([a for a, _ in unanswered])
    pulled = 0
    for alert_id, round_ in unanswered:
        alert = alerts.get(alert_id)
        state = await store.escalation_state(alert_id)
        if alert is None or state is None:
            continue
        policy = policies.for_site(alert.site).for_alert(alert.kind, alert.severity)
        if decisions.has_next_step(state, policy) and await store.pull_forward(
            alert_id, round_, wall, wall
        ):
            pulled += 1
    return pulled


async def record_call_outcomes(
    store: AlertStore,
    policies: PolicySet,
    outcomes: Sequence[tuple[str, Outcome]],
    wall: float,
) -> tuple[int, int]:
    """Status callbacks: (provider call id, outcome). Returns (calls recorded, steps
    pulled forward). Unknown or already settled call ids are ignored (callbacks may
    be repeated)."""
    ids = await store.calls_by_ref([ref for ref, _ in outcomes])
    updates = [(ids[ref], outcome) for ref, outcome in outcomes if ref in ids]
    if not updates:
        return 0, 0
    unanswered = await store.settle_receipts(updates, wall)
    return len(updates), await move_on(store, policies, unanswered, wall)
