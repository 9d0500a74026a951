"""The alerts package's public API: what the gateway (REST, live stream, console,
family portal) and the CLI call. Every method is async, runs in its own
transaction, and returns plain records (`alerts.records`).

    service = AlertService(store, clock, index_provider, public_url=settings.public_url)

    await service.list_alerts(AlertFilter(status=["open"], sites=[...]))  -> list[AlertRecord]
    await service.queue(sites=None)              -> unresolved alerts, critical first, then oldest
    await service.get_alert(alert_id)            -> AlertDetail (+ history, notifications) | None
    await service.acknowledge(alert_id, by)      -> AlertRecord   (stops escalation)
    await service.assign(alert_id, to, by)       -> AlertRecord
    await service.add_note(alert_id, text, by)   -> AlertRecord
    await service.resolve(alert_id, outcome, note, by) -> AlertRecord
                                                   (queues the family's follow-up message)
    await service.last_seq()                     -> int: the change feed's latest sequence
    await service.changes_since(seq, limit)      -> list[FeedItem], seq ascending
    async for item in service.subscribe(since):  -> FeedItem, live, forever

The change feed is the alert history: every transition and human action has a
monotonically increasing sequence number (`FeedItem.seq`), so a live stream that
reconnects with the last seq it saw replays exactly what it missed. Errors:
`AlertNotFound`, `AlertStateError` (e.g. resolving twice), `ValueError` for an
unknown outcome code. Times in records are epoch seconds; `to_dict()` gives ISO 8601.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from alerts import decisions, receipts
from alerts.events import AlertEvent, AlertEventRecorder, NullRecorder
from alerts.messages import followup_message
from alerts.outcomes import Outcome as CallOutcome
from alerts.policy import PolicySet
from alerts.recipients import Recipient, channel_hash
from alerts.records import (
    AlertRecord,
    FeedItem,
    HistoryEntry,
    NotificationRecord,
    PlannedNotification,
)
from alerts.store import AlertFilter, AlertNotFound, AlertStateError, AlertStore
from alerts.terms import Outcome
from eldercare.clock import Clock
from eldercare.domain import Severity
from eldercare.registry_index import RegistryIndex

__all__ = [
    "AlertDetail",
    "AlertFilter",
    "AlertNotFound",
    "AlertService",
    "AlertStateError",
    "FeedItem",
    "Outcome",
]

HUMAN_OUTCOMES = tuple(o for o in Outcome if o is not Outcome.AUTO_CLEARED)


@dataclass(frozen=True, slots=True)
class AlertDetail:
    alert: AlertRecord
    history: list[HistoryEntry]
    notifications: list[NotificationRecord]

    def to_dict(self) -> dict[str, Any]:
        doc = self.alert.to_dict(self.history)
        doc["notifications"] = [
            {
                "recipient": n.recipient,
                "role": n.role,
                "purpose": n.purpose,
                "step": n.step,
                "round": n.round,
                "channel": n.channel_hash,
                "channel_kind": n.channel_kind,
                "state": n.state,
                "outcome": n.outcome,
                "attempts": n.attempts,
                "last_error": n.last_error,
            }
            for n in self.notifications
        ]
        return doc


def parse_outcome(value: str | Outcome) -> Outcome:
    try:
        outcome = Outcome(value)
    except ValueError as exc:
        allowed = ", ".join(o.value for o in HUMAN_OUTCOMES)
        raise ValueError(f"unknown outcome {value!r}; one of: {allowed}") from exc
    if outcome is Outcome.AUTO_CLEARED:
        raise ValueError("auto_cleared is set by the system only")
    return outcome


class AlertService:
    def __init__(
        self,
        store: AlertStore,
        clock: Clock,
        index_provider: Callable[[], RegistryIndex],
        *,
        public_url: str,
        policies: PolicySet | None = None,
        recorder: AlertEventRecorder | None = None,
        poll_interval_s: float = 2.0,
    ) -> None:
        self.store = store
        self.clock = clock
        self.index_provider = index_provider
        self.public_url = public_url
        self.policies = policies or PolicySet.load()
        # Human actions only submit their events: the pipeline's background flush (or the
        # CLI's, before it exits) writes them, so an acknowledgement never waits for InfluxDB.
        self.recorder = recorder or NullRecorder()
        self.poll_interval_s = poll_interval_s

    # ---- queries ---------------------------------------------------------------------

    async def list_alerts(self, f: AlertFilter | None = None) -> list[AlertRecord]:
        return await self.store.find(f or AlertFilter())

    async def queue(self, sites: Sequence[str] | None = None) -> list[AlertRecord]:
        """The operator's queue: unresolved alerts, most severe first, then the oldest."""
        alerts = await self.store.find(
            AlertFilter(status=["open", "acknowledged"], sites=sites, limit=100_000)
        )
        return sorted(
            alerts,
            key=lambda a: (a.status != "open", Severity(a.severity).rank, a.raised_at, a.id),
        )

    async def get_alert(self, alert_id: int) -> AlertDetail | None:
        alert = await self.store.get(alert_id)
        if alert is None:
            return None
        return AlertDetail(
            alert, await self.store.history(alert_id), await self.store.notifications(alert_id)
        )

    async def last_seq(self) -> int:
        return await self.store.last_seq()

    async def changes_since(self, seq: int, limit: int = 1000) -> list[FeedItem]:
        return await self.store.changes_since(seq, limit)

    async def subscribe(self, since: int | None = None) -> AsyncIterator[FeedItem]:
        """Every change after `since` (default: from now on), then live ones as they
        happen. Writes of this process wake it at once; others are seen by polling."""
        seq = await self.last_seq() if since is None else since
        while True:
            seen = self.store.version
            items = await self.store.changes_since(seq)
            for item in items:
                seq = item.seq
                yield item
            if not items:
                await self.store.wait_changed(self.poll_interval_s, seen)

    # ---- human actions ---------------------------------------------------------------

    def _org(self, site_id: str) -> str | None:
        site = self.index_provider().sites.get(site_id)
        return site.organisation if site else None

    async def acknowledge(self, alert_id: int, by: str) -> AlertRecord:
        before = await self._require(alert_id)
        now = self.clock.now()
        alert = await self.store.acknowledge(alert_id, by, now)
        if before.status == "open":
            self.recorder.submit(
                [
                    AlertEvent(
                        "acknowledged",
                        alert,
                        now,
                        self._org(alert.site),
                        ack_seconds=now - decisions.waiting_since(before),
                    )
                ]
            )
        return alert

    async def assign(self, alert_id: int, to: str, by: str) -> AlertRecord:
        return await self.store.assign(alert_id, to, by, self.clock.now())

    async def add_note(self, alert_id: int, text: str, by: str) -> AlertRecord:
        return await self.store.add_note(alert_id, text, by, self.clock.now())

    async def resolve(
        self, alert_id: int, outcome: str | Outcome, note: str | None, by: str
    ) -> AlertRecord:
        code = parse_outcome(outcome)
        before = await self._require(alert_id)
        now = self.clock.now()
        alert = await self.store.resolve(alert_id, code, note, by, now)
        events = []
        if before.status == "open":
            events.append(
                AlertEvent(
                    "acknowledged",
                    alert,
                    now,
                    self._org(alert.site),
                    ack_seconds=now - decisions.waiting_since(before),
                )
            )
        events.append(
            AlertEvent(
                "resolved",
                alert,
                now,
                self._org(alert.site),
                resolve_seconds=now - alert.created_at,
                outcome=code.value,
            )
        )
        self.recorder.submit(events)
        await self._queue_followups(alert, now)
        return alert

    async def record_call_outcomes(self, outcomes: Sequence[tuple[str, CallOutcome]]) -> int:
        """A provider's call status callbacks: (call id, outcome); an unanswered call
        makes the next escalation step due at once (the pipeline's loop runs it)."""
        recorded, _ = await receipts.record_call_outcomes(
            self.store, self.policies, outcomes, self.clock.now()
        )
        return recorded

    async def _require(self, alert_id: int) -> AlertRecord:
        alert = await self.store.get(alert_id)
        if alert is None:
            raise AlertNotFound(f"no alert {alert_id}")
        return alert

    async def _queue_followups(self, alert: AlertRecord, now: float) -> int:
        """Tell every family member who was alerted, on the channels that reached them,
        when and how it was handled. The pipeline's next tick sends them."""
        sent = [
            n
            for n in await self.store.notifications(alert.id, purpose="alert")
            if n.state == "sent" and n.role == "family"
        ]
        if not sent:
            return 0
        site = self.index_provider().sites.get(alert.site)
        if site is None:
            return 0
        planned: list[PlannedNotification] = []
        reached = {(n.recipient, n.channel_hash) for n in sent}
        for c in site.contacts:
            key = f"{c.role}:{c.id}"
            recipient = Recipient(
                key, c.role, c.name, c.language, c.phone, tuple(c.apprise), "family"
            )
            title, body = followup_message(alert, site, recipient, self.public_url, now)
            for url in c.apprise:
                h = channel_hash(url)
                if (key, h) not in reached:
                    continue
                planned.append(
                    PlannedNotification(
                        idempotency_key=f"followup/{alert.id}/{key}/{h}",
                        alert_id=alert.id,
                        purpose="followup",
                        step=0,
                        round=0,
                        site=alert.site,
                        recipient=key,
                        role=c.role,
                        language=c.language,
                        channel_hash=h,
                        title=title,
                        body=body,
                    )
                )
        return await self.store.add_notifications(planned, now)
