"""The live stream of alert changes (Server-Sent Events), scoped like the API.

One `ChangeHub` per process watches the alert change feed's sequence number and
wakes every connected client when it moves; each client then reads the changes
after the last one it saw and sends those it may see. A client reconnecting with
`Last-Event-ID: <seq>` is therefore sent exactly what it missed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Protocol

from eldercare.logs import get_logger
from eldercare.periodic import Periodic
from gateway.auth import Principal, can_see_alert, principal_for_token
from gateway.enrich import enrich
from gateway.ports import AlertChange, AlertService, IndexProvider
from gateway.users import Sessions

log = get_logger(__name__)

KEEPALIVE_S = 15.0
RETRY_MS = 2000
RECHECK_TOKEN_S = 60.0


class SeqSource(Protocol):
    async def latest_seq(self) -> int: ...


class ChangeHub:
    """Polls the feed's latest sequence number and broadcasts that it moved (the alert
    feed, or any other feed with a `latest_seq`: the field orders use one too)."""

    def __init__(self, alert_service: SeqSource, poll_s: float = 0.25) -> None:
        self._alerts = alert_service
        self._poll_s = poll_s
        self._latest = 0
        self._moved = asyncio.Event()
        self._closing = False
        # Polls the store's change feed; woken at once by an action through this gateway.
        self._loop = Periodic("gateway-change-feed", self._poll, poll_s, first_after_s=0)

    @property
    def latest(self) -> int:
        return self._latest

    @property
    def closing(self) -> bool:
        return self._closing

    async def start(self) -> None:
        self._closing = False
        self._moved = asyncio.Event()
        self._latest = await self._alerts.latest_seq()
        self._loop.start()

    async def stop(self) -> None:
        # End every open stream, so clients reconnect (to this process when it is back,
        # or to another replica) instead of waiting on a process that went away.
        self._closing = True
        self._broadcast()
        await self._loop.stop()

    def poke(self) -> None:
        """Poll now (an action through this gateway changed an alert)."""
        self._loop.wake()

    async def wait_past(self, seq: int, wait_s: float) -> bool:
        """Wait until the feed is past `seq` (True) or `wait_s` elapsed (False)."""
        if self._latest > seq:
            return True
        event = self._moved
        with contextlib.suppress(TimeoutError):  # not `wait_for`: see AlertStore.wait_changed
            async with asyncio.timeout(wait_s):
                await event.wait()
        return self._latest > seq

    async def _poll(self) -> None:
        # A store hiccup raises out of here: `Periodic` logs it and the stream stays open.
        latest = await self._alerts.latest_seq()
        if latest != self._latest:
            self._latest = latest
            self._broadcast()

    def _broadcast(self) -> None:
        old, self._moved = self._moved, asyncio.Event()
        old.set()


def format_event(change: AlertChange) -> str:
    data = change.model_dump_json()
    return f"id: {change.seq}\nevent: alert\ndata: {data}\n\n"


async def alert_events(
    *,
    principal: Principal,
    token: str | None,
    last_event_id: int | None,
    hub: ChangeHub,
    alert_service: AlertService,
    index_provider: IndexProvider,
    sessions: Sessions,
    now: Callable[[], float],
) -> AsyncIterator[str]:
    """The SSE body for one client."""
    seq = hub.latest if last_event_id is None else last_event_id
    yield f'retry: {RETRY_MS}\nevent: hello\ndata: {{"seq": {seq}}}\n\n'
    since_check = 0.0
    while not hub.closing:
        changes = await alert_service.changes_since(seq, limit=500)
        if changes:
            index = await index_provider.current()
            for change in changes:
                seq = change.seq
                site = index.sites.get(change.alert.site_id)
                if can_see_alert(principal.account, site, change.alert.resident_id):
                    alert = enrich(change.alert, index)
                    yield format_event(change.model_copy(update={"alert": alert}))
            continue
        moved = await hub.wait_past(seq, KEEPALIVE_S)
        if hub.closing:
            return
        if not moved:
            yield ": keepalive\n\n"
            since_check += KEEPALIVE_S
        if token is not None and since_check >= RECHECK_TOKEN_S:
            since_check = 0.0
            # A revoked or expired token ends the stream; the client then re-authenticates.
            if await principal_for_token(sessions, token, now=now()) is None:
                yield "event: signed-out\ndata: {}\n\n"
                return
