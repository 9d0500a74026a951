"""Response figures: how fast alerts were acknowledged and resolved.

Telecare standards ask for 97.5% of alarms answered within 60 s and 99% within
180 s. Times are measured on the wall clock from when the platform stored the
alert (`created_at`) to the human action, which is what an operator controls.
Resolving an unacknowledged alert counts as its acknowledgement. Alerts the
system resolved by itself (`auto_cleared`) and inhibited or silenced alerts
(nobody was asked to answer them) are left out; alerts still unacknowledged
count as not answered within any target.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from alerts import decisions
from alerts.records import AlertRecord
from alerts.terms import Outcome
from eldercare.domain import Severity

TARGETS_S = (60.0, 180.0)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def ack_seconds(alert: AlertRecord) -> float | None:
    # A re-raised alert (a second press) counts from the re-raise: the latest call answered.
    if alert.acknowledged_at is None:
        return None
    return alert.acknowledged_at - decisions.waiting_since(alert)


def resolve_seconds(alert: AlertRecord) -> float | None:
    return None if alert.resolved_at is None else alert.resolved_at - alert.created_at


def counts_for_response(alert: AlertRecord) -> bool:
    return (
        alert.outcome != Outcome.AUTO_CLEARED.value
        and alert.inhibited_by is None
        and alert.silenced_by is None
    )


def _figures(alerts: Sequence[AlertRecord]) -> dict[str, Any]:
    acks = [s for a in alerts if (s := ack_seconds(a)) is not None]
    resolves = [s for a in alerts if (s := resolve_seconds(a)) is not None]
    n = len(alerts)
    doc: dict[str, Any] = {
        "count": n,
        "acknowledged": len(acks),
        "unacknowledged": n - len(acks),
        "resolved": len(resolves),
    }
    for target in TARGETS_S:
        within = sum(1 for s in acks if s <= target)
        doc[f"ack_within_{target:.0f}s"] = within / n if n else None
    doc["ack_p50_s"] = percentile(acks, 50)
    doc["ack_p95_s"] = percentile(acks, 95)
    doc["resolve_p50_s"] = percentile(resolves, 50)
    doc["resolve_p95_s"] = percentile(resolves, 95)
    return doc


def response_figures(alerts: Sequence[AlertRecord]) -> dict[str, Any]:
    """Figures overall and per severity (most urgent first)."""
    counted = [a for a in alerts if counts_for_response(a)]
    per = {
        s.value: _figures([a for a in counted if a.severity == s.value])
        for s in sorted(Severity, key=lambda s: s.rank)
        if any(a.severity == s.value for a in counted)
    }
    return {
        "overall": _figures(counted),
        "by_severity": per,
        "excluded": len(alerts) - len(counted),
        "targets_s": list(TARGETS_S),
    }
