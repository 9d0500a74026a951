"""The live stream of work-order changes (Server-Sent Events), scoped per viewer.

Same contract as the alert stream (gateway.stream): the hub wakes clients when the
order event feed moves; each client sends the changes after the last one it saw
that it may see, rendered for it (a responder or operator gets the order, a family
the helper status); `Last-Event-ID: <seq>` resumes exactly where it left off.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from field_service.orders import OrderChange, OrderStore
from gateway.stream import KEEPALIVE_S, RECHECK_TOKEN_S, RETRY_MS, ChangeHub


async def order_events(
    *,
    principal_token: str | None,
    last_event_id: int | None,
    hub: ChangeHub,
    store: OrderStore,
    render: Callable[[OrderChange], Awaitable[str | None]],
    still_signed_in: Callable[[str], Awaitable[bool]],
) -> AsyncIterator[str]:
    seq = hub.latest if last_event_id is None else last_event_id
    yield f'retry: {RETRY_MS}\nevent: hello\ndata: {{"seq": {seq}}}\n\n'
    since_check = 0.0
    while not hub.closing:
        changes = await store.changes_since(seq, limit=500)
        if changes:
            for change in changes:
                seq = change.seq
                data = await render(change)
                if data is not None:
                    yield f"id: {change.seq}\nevent: {change.event}\ndata: {data}\n\n"
            continue
        moved = await hub.wait_past(seq, KEEPALIVE_S)
        if hub.closing:
            return
        if not moved:
            yield ": keepalive\n\n"
            since_check += KEEPALIVE_S
        if principal_token is not None and since_check >= RECHECK_TOKEN_S:
            since_check = 0.0
            if not await still_signed_in(principal_token):
                yield "event: signed-out\ndata: {}\n\n"
                return
