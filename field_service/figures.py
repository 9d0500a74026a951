"""Field response figures: how fast help reached the door.

From when the need arose (the alert's event time) to the first dispatch, from the
first dispatch to an accept (re-dispatches included: that is what the resident
waited), from the need to the responder's arrival, and the share of arrivals
within the site's promise. An order that passed its promise without arriving
counts as outside it; cancelled orders are left out. p50/p95 interpolate like
alerts.sla.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from alerts.sla import percentile
from field_service.lifecycle import OrderState
from field_service.orders import WorkOrder


def _spread(values: list[float]) -> dict[str, float | None]:
    return {"p50_s": percentile(values, 50), "p95_s": percentile(values, 95)}


def field_figures(orders: Sequence[WorkOrder], now: float) -> dict[str, Any]:
    counted = [o for o in orders if o.state is not OrderState.CANCELLED]
    dispatched = [o for o in counted if o.state is not OrderState.REQUESTED]
    dispatch = [o.first_dispatched_at - o.requested_at for o in dispatched]
    accept = [o.accepted_at - o.first_dispatched_at for o in counted if o.accepted_at is not None]
    arrive = [o.arrived_at - o.requested_at for o in counted if o.arrived_at is not None]
    judged = [o for o in counted if o.arrived_at is not None or o.arrive_due <= now]
    within = [o for o in judged if o.arrived_at is not None and o.arrived_at <= o.arrive_due]
    open_orders = [o for o in counted if o.is_open]
    overdue = [
        o
        for o in open_orders
        if (o.state in (OrderState.DISPATCHED, OrderState.REQUESTED) and o.accept_overdue)
        or (o.arrived_at is None and o.arrive_due <= now)
        or o.state is OrderState.DECLINED
    ]
    return {
        "orders": len(counted),
        "to_dispatch": _spread(dispatch),
        "to_accept": _spread(accept),
        "to_arrive": _spread(arrive),
        "arrived": len(arrive),
        "within_promise": len(within),
        "share_within_promise": len(within) / len(judged) if judged else None,
        "open": len(open_orders),
        "overdue": len(overdue),
    }
