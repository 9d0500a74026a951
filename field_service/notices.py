"""Delivering the field notices (accept overdue, late, declined) to whoever must act.

The store writes each notice once (a unique key per order, kind and attempt);
this sends the undelivered ones and marks them, so a notice survives a restart
and is sent again only if its delivery never completed.
"""

from __future__ import annotations

from typing import Protocol

from eldercare.logs import get_logger
from field_service.orders import Notice, OrderStore, WorkOrder

log = get_logger(__name__)


class NoticeSink(Protocol):
    async def deliver(self, notice: Notice, order: WorkOrder) -> None:
        """Tell the operator; raise to have it retried at the next tick."""
        ...


async def deliver_pending(store: OrderStore, sink: NoticeSink, now: float) -> int:
    """Send every undelivered notice; the number delivered."""
    delivered = 0
    for notice in await store.pending_notices():
        order = await store.get(notice.order_id)
        if order is None:  # cannot happen while orders are never deleted; do not loop on it
            await store.mark_notice(notice.id, delivered_at=now)
            continue
        try:
            await sink.deliver(notice, order)
        except Exception:
            log.exception("field notice %s for order %s not delivered", notice.kind, order.id)
            await store.mark_notice(notice.id, delivered_at=None)
            continue
        await store.mark_notice(notice.id, delivered_at=now)
        delivered += 1
    return delivered
