"""Field response figures: how fast help reached the door.

From when the need arose (the alert's event time) to the first dispatch, from the
first dispatch to an accept (re-dispatches included: that is what the resident
waited), from the need to the responder's arrival, and the share of arrivals
within the site's promise. An order that passed its promise without arriving
counts as outside it; cancelled orders are left out. p50/p95 interpolate like
alerts.sla.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from alerts.sla import SlaSection, percentile
from eldercare.db import create_engine, session_factory
from eldercare.settings import Settings
from field_service.lifecycle import OrderState
from field_service.models import init_field_store
from field_service.orders import OrderStore, WorkOrder


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


async def stored_field_figures(
    settings: Settings, since: float | None, until: float | None
) -> dict[str, Any]:
    """The dispatch figures of the store's orders requested in the window."""
    engine = create_engine(settings.database_url)
    try:
        await init_field_store(engine)  # a store older than the field service: no orders yet
        store = OrderStore(session_factory(engine))
        orders = await store.list_orders(since=since, until=until, limit=10_000_000)
    finally:
        await engine.dispose()
    return field_figures(orders, time.time())


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:.1f}%"


def _sec(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f}s"


def field_figure_lines(r: dict[str, Any]) -> list[str]:
    """The text `eldercare alerts sla` prints under the alert figures."""
    lines = [
        f"field: {r['orders']} orders, {r['open']} open, {r['overdue']} overdue; "
        f"arrived {r['arrived']}, within promise {_pct(r['share_within_promise'])}",
        f"{'':<12}{'p50':>9}{'p95':>9}",
    ]
    for name in ("to_dispatch", "to_accept", "to_arrive"):
        lines.append(f"{name:<12}{_sec(r[name]['p50_s']):>9}{_sec(r[name]['p95_s']):>9}")
    return lines


# `eldercare alerts sla`'s field section (handed to the command by eldercare_app.cli).
SLA_SECTION = SlaSection("field", stored_field_figures, field_figure_lines)
