"""The alert pipeline: detector transitions in; stored alerts, escalation and
notifications out.

    transitions ─▶ store (merge by identity) ─┬▶ auto-resolve ─▶ inhibit ─▶ silence
                                               │    ─▶ dedup ─▶ schedule escalation
                                               └▶ record (in the background, to InfluxDB)
    tick(now): release inhibitions ─▶ escalate due steps (pending log rows)
        ─▶ send with retry ─▶ record

The InfluxDB copy of the events is submitted to the recorder and written by a
background flush that nothing on the alert path awaits: storing an alert, the live
stream and the first notification wait for the store, never for InfluxDB (a hung
InfluxDB holds a write for its whole timeout).

A store that cannot be written (SQLite write-locked by another process or
read-only, PostgreSQL away) makes `handle_transitions` hold and retry the batch,
with backoff, until it is stored: the caller (the detectors, and ingest behind
them) holds too, so nothing is acknowledged to the broker and nothing is dropped.
`availability` (`alerts.store_availability`) makes the episode visible. A retried
batch is harmless: a transition already merged only updates its alert again.

Each stage is `async (items) -> items`; decisions are the pure predicates of
`alerts.decisions`. `handle_transitions` returns once the transitions are stored
and their escalation scheduled (durable), so ingest can acknowledge; sending
happens in `tick`, which the loop started by `start()` runs every second on the
clock (and at once when new alerts arrive). Tests call `tick(now)` on a FakeClock.

Sends are idempotent across restarts: a message is written `pending` (with the
escalation step that caused it, in one transaction) before it is sent and marked
`sent` after; a new pipeline over the same database sends only what is still
pending. A send that fails is retried with backoff; after `max_attempts` it counts
as unanswered, and if every message of a step failed the next step runs at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, TypeVar

from alerts import decisions, receipts
from alerts.change_stages import (
    AutoResolve,
    ChangeStage,
    Dedup,
    Inhibit,
    RecordChanges,
    ScheduleEscalation,
    Silence,
)
from alerts.channels.templates import TemplateParams
from alerts.digest import digest_message
from alerts.events import AlertEvent, AlertEventRecorder, NullRecorder
from alerts.limits import ChannelLimit, Limits, Throttle, load_limits
from alerts.messages import alert_message, template_params
from alerts.outcomes import Outcome, Receipt
from alerts.policy import (
    InhibitRules,
    PolicySet,
    load_inhibit_rules,
    parse_spec,
)
from alerts.recipients import (
    ContactKey,
    ContactPreference,
    ContactPreferences,
    channel_hash,
    channel_kind,
    is_safety,
    resolve_all,
)
from alerts.records import EscalationState, NotificationRecord, PlannedNotification
from alerts.sender import (
    AppriseSender,
    DeliveryError,
    NotificationSender,
    NotifyType,
    notify_type,
)
from alerts.store import AlertStore
from alerts.store_availability import AlertStoreAvailability
from eldercare import metrics
from eldercare.clock import Clock
from eldercare.domain import Transition
from eldercare.errors import EldercareError
from eldercare.logs import get_logger
from eldercare.periodic import Periodic
from eldercare.registry_index import RegistryIndex

log = get_logger(__name__)
T = TypeVar("T")


class StoreWriteAbandoned(EldercareError):
    """A store write given up at a stop while the store still refused it; the caller
    keeps what was not written (its cause is chained)."""


_THROTTLED = metrics.counter(
    "notifications_throttled_total",
    "messages held back for a destination's rate limit, night rule or quiet hours",
    ["channel"],
)
_DIGESTED = metrics.counter(
    "notifications_digested_total", "messages folded into a digest for a group bot", ["channel"]
)
_DROPPED = metrics.counter(
    "notifications_dropped_total",
    "messages not sent because their destination's limit would not allow it in time",
    ["channel"],
)
# A call whose outcome is still unknown after this long counts as not answered.
ANSWER_TIMEOUT_S = 120.0
RECEIPT_POLL_S = 10.0  # how often one provider reference is asked about
RECEIPTS_FOR_S = 3600.0  # SMS receipts are looked for this long after sending

IndexProvider = Callable[[], RegistryIndex]
RECORD_RETRY_S = 10.0  # alert events InfluxDB did not take are retried this often


@dataclass
class TickReport:
    rescheduled: int = 0
    released: int = 0
    escalated: int = 0
    summaries: int = 0
    sends_started: int = 0


class AlertPipeline:
    """`eldercare.stage_contracts.TransitionSink` and `Component`."""

    name = "alerts"

    def __init__(
        self,
        store: AlertStore,
        index_provider: IndexProvider,
        clock: Clock,
        *,
        public_url: str,
        policies: PolicySet | None = None,
        inhibit_rules: InhibitRules | None = None,
        recorder: AlertEventRecorder | None = None,
        sender: NotificationSender | None = None,
        tick_interval_s: float = 1.0,
        daily_summaries: Callable[[float], Awaitable[int]] | None = None,
        preferences: ContactPreferences | None = None,
        availability: AlertStoreAvailability | None = None,
        store_retry_s: tuple[float, float] = (0.25, 5.0),
        limits: Limits | None = None,
    ) -> None:
        self.store = store
        # Whether the store takes writes; read by health checks and the console banner.
        self.availability = availability or AlertStoreAvailability()
        self.store_retry_s = store_retry_s  # first and longest wait between attempts
        self.index_provider = index_provider
        self.clock = clock
        self.public_url = public_url
        self.policies = policies or PolicySet.load()
        self.inhibit_rules = inhibit_rules or load_inhibit_rules()
        self.recorder = recorder or NullRecorder()
        self._severity_of: dict[int, str] = {}  # alert id → severity (a rise escalates anew)
        self.sender = sender or AppriseSender()
        self.tick_interval_s = tick_interval_s
        self.daily_summaries = daily_summaries
        self.preferences = preferences
        # After the store, each change goes through these (`alerts.change_stages`);
        # `record_changes` submits every stored change to the recorder first.
        self.record_changes = RecordChanges(self._record, self._org)
        self.stages: list[ChangeStage] = [
            AutoResolve(store, self.policies, clock, self._record, self._org),
            Inhibit(store, self.inhibit_rules, clock, self._record, self._org),
            Silence(store, self.policies, clock),
            Dedup(),
            ScheduleEscalation(store, self.policies, clock),
        ]
        # Escalation timers; woken at once when a transition arrives or a send settles.
        self._timers = Periodic(
            "alerts-timers", partial(self.tick, wait=False), tick_interval_s, first_after_s=0
        )
        # Retries what an InfluxDB outage kept (and the outbox), in the background.
        self._record_retry = Periodic(
            "alerts-record-retry", self._retry_records, RECORD_RETRY_S, first_after_s=0
        )
        self._warm_task: asyncio.Task[None] | None = None
        self._tick_lock = asyncio.Lock()
        self._channel_limits: dict[str, asyncio.Semaphore] = {}
        self._in_flight: dict[int, asyncio.Task[None]] = {}
        self._recording: asyncio.Task[None] | None = None  # the background event flush
        self._record_again = False
        self._results: list[tuple[NotificationRecord, str | None]] = []
        self._results_lock = asyncio.Lock()
        self._stopping = False  # store writes stop retrying: the stop must end
        self.counters: Counter[str] = Counter()
        self.throttle = Throttle(limits or load_limits())
        self._receipts: dict[int, Receipt] = {}  # log id → what the channel said
        self._throttled: set[int] = set()  # log ids failed by the limits, not the channel
        self._asked: dict[int, float] = {}  # log id → when its provider was last asked
        # Clients the pipeline's builder opened (e.g. InfluxDB), closed by `close_alerts`.
        self.resources: list[Any] = []

    # ---- Component -------------------------------------------------------------------

    async def start(self) -> None:
        self._stopping = False
        self._timers.start()
        self._record_retry.start()
        if isinstance(self.sender, AppriseSender) and self._warm_task is None:
            # Apprise loads its plugins on first use (~0.2 s, seconds on a busy box):
            # not on the first SOS.
            self._warm_task = asyncio.create_task(self.sender.warm(), name="apprise-warm")

    async def stop(self) -> None:
        self._stopping = True
        await self._timers.stop()
        await self._record_retry.stop()
        self.availability.withdraw()  # stopped: no longer this pipeline's to report
        if self._warm_task is not None:
            with contextlib.suppress(Exception):
                await self._warm_task
            self._warm_task = None
        # Sends in flight finish (each is bounded by its timeout) and get logged.
        await self.settle()
        if self._recording is not None:
            # Events not yet written stay in the recorder's backlog (`close_alerts` hands
            # them over to the outbox): a hung InfluxDB must not hold the stop up.
            self._recording.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._recording
            self._recording = None
        if isinstance(self.sender, AppriseSender):
            self.sender.close()

    # ---- TransitionSink --------------------------------------------------------------

    async def handle_transitions(self, transitions: Sequence[Transition]) -> None:
        """Store the batch and schedule escalation; returns when both are durable. While
        the store cannot be written, holds and retries (see the module docstring)."""
        if not transitions:
            return
        await self._until_stored(partial(self._store_and_stage, transitions))
        self._timers.wake()

    async def _until_stored(self, write: Callable[[], Awaitable[T]]) -> T:
        """Run one store write, retrying with backoff while the store refuses it (the
        episode reported by `availability`); the write must be safe to run again."""
        wait, longest = self.store_retry_s
        while True:
            try:
                result = await write()
            except Exception as exc:
                self.availability.failed(exc)
                if self._stopping:  # a stop must end: the caller keeps what was not written
                    raise StoreWriteAbandoned(str(exc)) from exc
                await asyncio.sleep(wait)
                wait = min(wait * 2, longest)
                continue
            self.availability.succeeded()
            return result

    async def _store_and_stage(self, transitions: Sequence[Transition]) -> None:
        # Under the tick lock, so a tick never sees an alert whose stages are half run.
        async with self._tick_lock:
            changes = await self.store.apply_transitions(transitions, self.clock.now())
            if changes:
                await self.record_changes(changes)
            for stage in self.stages:
                if not changes:
                    break
                changes = await stage(changes)

    def _record(self, events: Sequence[AlertEvent]) -> None:
        """Hand events to the recorder and let the background flush write them."""
        if events:
            self.recorder.submit(events)
            self._flush_records()

    def _flush_records(self) -> None:
        """Start the background flush, or ask the running one to go round again."""
        if self._recording is None or self._recording.done():
            self._recording = asyncio.create_task(self._flush_loop(), name="alert-events")
        else:
            self._record_again = True

    async def _flush_loop(self) -> None:
        while True:
            self._record_again = False
            try:
                await self.recorder.flush()
            except Exception:  # a recorder bug must not end the flushing for good
                log.exception("alert event recording failed")
            if not self._record_again:
                return

    async def _retry_records(self) -> None:
        self._flush_records()

    async def flush_records(self) -> None:
        """Wait until the background flush has written what was submitted (tests, CLI)."""
        while self._recording is not None and not self._recording.done():
            await self._recording

    # ---- transition stages -----------------------------------------------------------

    def _org(self, site_id: str) -> str | None:
        site = self.index_provider().sites.get(site_id)
        return site.organisation if site else None

    # ---- timers ----------------------------------------------------------------------

    async def tick(self, now: float | None = None, wait: bool = True) -> TickReport:
        """Release ended inhibitions, run due escalation steps, start due sends (and with
        `wait`, wait for them: tests; the loop does not, so a slow channel never delays
        the next tick)."""
        now = self.clock.now() if now is None else now
        report = TickReport()
        async with self._tick_lock:
            report.rescheduled = await self.schedule_unscheduled(now)
            report.released = await self.release_inhibitions(now)
            await self.follow_receipts(now)
            report.escalated, escalated = await self._fire_due_steps(now)
            # The sends first: recording the steps (InfluxDB) and looking for daily
            # summaries must not hold up the first notification of a new alert.
            report.sends_started = await self.deliver_due(now, wait=False)
            self._record(escalated)
            if self.daily_summaries is not None:
                report.summaries = await self.daily_summaries(now)
                if report.summaries:
                    report.sends_started += await self.deliver_due(now, wait=False)
        if wait:
            await self.settle()
            await self.flush_records()
        return report

    async def schedule_unscheduled(self, now: float) -> int:
        """Start escalation for open alerts that have none: a batch stored before a
        later stage failed must still reach people (the redelivered batch only merges)."""
        found = [
            a
            for a in await self.store.unscheduled_alerts()
            if self.policies.for_site(a.site).for_alert(a.kind, a.severity).steps
        ]
        if not found:
            return 0
        log.warning("escalating alerts that had no escalation", extra={"count": len(found)})
        await self.store.start_escalations([(a.id, a.severity) for a in found], now, now)
        return len(found)

    async def release_inhibitions(self, now: float) -> int:
        pairs = await self.store.inhibited_alerts()
        releases = [
            (alert.id, alert.inhibited_by or 0)
            for alert, source in pairs
            if decisions.inhibition_ended(source)
        ]
        if not releases:
            return 0
        await self.store.release_inhibited(releases, now)
        released = {a for a, _ in releases}
        starts = [
            (a.id, a.severity) for a, _ in pairs if a.id in released and a.silenced_by is None
        ]
        await self.store.start_escalations(starts, now, now)
        return len(releases)

    async def escalate_due(self, now: float) -> int:
        """Run every due escalation step: write its messages as pending (durably)."""
        fired, events = await self._fire_due_steps(now)
        self._record(events)
        return fired

    async def _fire_due_steps(self, now: float) -> tuple[int, list[AlertEvent]]:
        """`escalate_due` without recording its `escalated` events (the caller does)."""
        due = await self.store.due_escalations(now)
        if not due:
            return 0, []
        index = self.index_provider()
        prefs = await self._contact_preferences()
        firings: list[tuple[EscalationState, list[PlannedNotification], dict[str, Any] | None]] = []
        events: list[AlertEvent] = []
        for alert, state in due:
            self._severity_of[alert.id] = alert.severity  # for the sends' notify type
            if not decisions.should_escalate(alert, state, now):
                continue
            policy = self.policies.for_site(alert.site)
            severity_policy = policy.for_alert(alert.kind, alert.severity)
            fired_step = state.step
            new_state, specs, what = decisions.next_state(state, severity_policy, now)
            site = index.sites.get(alert.site)
            recipients = resolve_all(
                specs, site, alert.resident, policy.centre, prefs, is_safety(alert.severity)
            )
            planned: list[PlannedNotification] = []
            for r in recipients:
                title, body = alert_message(alert, site, r, policy.centre, self.public_url, now)
                params = template_params(alert, site, r, policy.centre, now).to_json()
                for url in r.urls:
                    h = channel_hash(url)
                    planned.append(
                        PlannedNotification(
                            idempotency_key=f"alert/{alert.id}/r{new_state.round}/{r.key}/{h}",
                            alert_id=alert.id,
                            purpose="alert",
                            step=fired_step,
                            round=new_state.round,
                            site=alert.site,
                            recipient=r.key,
                            role=r.role,
                            language=r.language,
                            channel_hash=h,
                            title=title,
                            body=body,
                            channel_kind=channel_kind(url),
                            params=params,
                        )
                    )
            reaches_console = any(parse_spec(s)[0] == "centre" for s in specs)
            unreachable = not planned and not reaches_console and what != "done"
            if unreachable and decisions.has_next_step(new_state, severity_policy):
                # Nobody of this step can be reached at all: that is unanswered already.
                new_state = replace(new_state, next_due=now)
            data = {
                "step": fired_step,
                "round": new_state.round,
                "what": what,
                "recipients": [r.key for r in recipients],
                "channels": len(planned),
                "unreachable": unreachable,
            }
            if what == "done":
                # Nothing left to run (e.g. a policy edited since): just stop, quietly.
                firings.append((new_state, [], None))
                continue
            firings.append((new_state, planned, data))
            events.append(
                AlertEvent(
                    "escalated", alert, now, site.organisation if site else None, step=fired_step
                )
            )
        await self.store.fire_escalations(firings, now)
        return len(firings), events

    async def _contact_preferences(self) -> Mapping[ContactKey, ContactPreference]:
        """Families' channel choices (from the portal); without them, the registry's.
        An unreadable preference store must not hold an alert up."""
        if self.preferences is None:
            return {}
        try:
            return await self.preferences.contact_preferences()
        except Exception:
            self.counters["preferences_unavailable"] += 1
            log.exception("contact preferences unavailable; using the registry's channels")
            return {}

    def _urls_by_channel(self, n: NotificationRecord, index: RegistryIndex) -> str | None:
        """The URL behind a logged channel hash, from today's registry and policy."""
        site = index.sites.get(n.site)
        if n.recipient == "centre":
            urls = list(self.policies.for_site(n.site).centre.apprise)
        else:
            _, _, contact_id = n.recipient.partition(":")
            contact = next((c for c in site.contacts if c.id == contact_id), None) if site else None
            urls = list(contact.apprise) if contact else []
        return next((u for u in urls if channel_hash(u) == n.channel_hash), None)

    async def deliver_due(self, now: float, wait: bool = True) -> int:
        """Start sending every pending message whose time has come, each in a task of
        its own so that a slow channel never holds up another; with `wait`, return
        when they have all finished. Returns how many sends were started."""
        due = await self.store.due_notifications(now)
        index = self.index_provider()
        severity = await self._severities([n.alert_id for n in due if n.alert_id])
        due = await self._within_limits(due, index, severity, now)
        started = 0
        for n in due:
            if n.id in self._in_flight:
                continue
            kind = notify_type(n.purpose, severity.get(n.alert_id) if n.alert_id else None)
            task = asyncio.create_task(self._deliver(n, index, kind), name=f"notify-{n.id}")
            self._in_flight[n.id] = task
            task.add_done_callback(partial(self._forget, n.id))
            started += 1
        if wait:
            await self.settle()
        return started

    async def _within_limits(
        self,
        due: list[NotificationRecord],
        index: RegistryIndex,
        severity: Mapping[int, str],
        now: float,
    ) -> list[NotificationRecord]:
        """The due messages that may go now, per destination's limits: the rest are held
        for their slot, folded into one digest (a group bot in a storm), or, when the
        slot is too far (a night call already made), failed as throttled."""
        go: list[NotificationRecord] = []
        hold: list[tuple[int, float]] = []
        groups: dict[str, list[tuple[NotificationRecord, str, ChannelLimit]]] = {}
        for n in due:
            if n.id in self._in_flight:
                continue
            site = index.sites.get(n.site)
            tz = site.timezone if site else "Asia/Shanghai"
            # A safety alert's messages (its follow-up too) never wait for quiet hours.
            safety = is_safety(severity.get(n.alert_id or 0, ""))
            quiet_end = None if safety else self.throttle.quiet_until(now, tz, n.role)
            if quiet_end is not None and n.purpose != "digest":
                hold.append((n.id, quiet_end))
                _THROTTLED.inc(channel=n.channel_kind or "unknown")
                continue
            url = self._urls_by_channel(n, index)
            limit = self.throttle.limits.for_url(url) if url else None
            if limit is None:
                go.append(n)
                continue
            groups.setdefault(n.channel_hash, []).append((n, tz, limit))
        for dest, items in groups.items():
            # A digest waiting for a retry goes first and alone: never a digest of digests.
            items.sort(key=lambda item: item[0].purpose != "digest")
            first, tz, limit = items[0]
            kind = first.channel_kind or "unknown"
            slot = self.throttle.slot(dest, limit, now, tz)
            if slot.at > now:
                for n, _, _ in items:
                    if slot.refused and not limit.digest:
                        self._throttled.add(n.id)
                        self._results.append((n, "throttled: the destination's limit"))
                        _DROPPED.inc(channel=kind)
                        self.counters["dropped"] += 1
                    else:
                        hold.append((n.id, slot.at))
                        _THROTTLED.inc(channel=kind)
                        self.counters["throttled"] += 1
                continue
            self.throttle.note_sent(dest, limit, now, tz)
            if len(items) == 1 or not limit.digest or first.purpose == "digest":
                go.append(first)
                for n, _, _ in items[1:]:  # one at a time: the rest wait for their slot
                    hold.append((n.id, self.throttle.slot(dest, limit, now, tz).at))
                    _THROTTLED.inc(channel=kind)
                    self.counters["throttled"] += 1
                continue
            digest = await self._digest([n for n, _, _ in items], index, now)
            if digest is not None:
                go.append(digest)
                _DIGESTED.inc(len(items), channel=kind)
                self.counters["digested"] += len(items)
        await self.store.defer_notifications(hold, now)
        if self._results:
            await self._record_results()
        return go

    async def _digest(
        self, items: list[NotificationRecord], index: RegistryIndex, now: float
    ) -> NotificationRecord | None:
        """One pending digest message in place of `items` (all for one destination)."""
        first = items[0]
        alerts = await self.store.get_many([n.alert_id for n in items if n.alert_id])
        covered = [alerts[n.alert_id] for n in items if n.alert_id in alerts]
        link = f"{self.public_url.rstrip('/')}/console"
        title, body = digest_message(
            covered, len(items) - len(covered), index, first.language, link
        )
        planned = PlannedNotification(
            idempotency_key=f"digest/{first.channel_hash}/{items[0].id}-{items[-1].id}",
            alert_id=None,
            purpose="digest",
            step=0,
            round=0,
            site=first.site,
            recipient=first.recipient,
            role=first.role,
            language=first.language,
            channel_hash=first.channel_hash,
            title=title,
            body=body,
            channel_kind=first.channel_kind,
        )
        return await self.store.fold_into_digest([n.id for n in items], planned, now)

    async def follow_receipts(self, now: float) -> int:
        """Ask providers what became of calls and SMS (Aliyun answers queries; Tencent
        calls report by callback, `record_call_outcomes`); a call with no answer
        after `ANSWER_TIMEOUT_S` counts as not answered. Returns outcomes recorded."""
        waiting = await self.store.awaiting_receipts(now - RECEIPTS_FOR_S)
        if not waiting:
            return 0
        query = getattr(self.sender, "query", None)
        index = self.index_provider()
        updates: list[tuple[int, str]] = []
        self._asked = {i: t for i, t in self._asked.items() if i in {n.id for n in waiting}}
        for n in waiting:
            sent_at = n.sent_at or now
            if n.outcome == "calling" and now - sent_at >= ANSWER_TIMEOUT_S:
                updates.append((n.id, "not_answered"))
                continue
            # Asked often at first, then less: an SMS receipt may take a while.
            every = max(RECEIPT_POLL_S, (now - sent_at) / 6)
            if query is None or now - self._asked.get(n.id, 0.0) < every:
                continue
            url = self._urls_by_channel(n, index)
            if url is None or n.provider_ref is None:
                continue
            self._asked[n.id] = now
            try:
                receipt = await query(url, n.provider_ref, sent_at, 10.0)
            except Exception as exc:  # a provider that cannot answer now is asked again
                log.warning("receipt query failed", extra={"error": type(exc).__name__})
                continue
            if receipt is not None and receipt.outcome != n.outcome:
                updates.append((n.id, receipt.outcome))
        return await self._settle(updates, now)

    async def record_call_outcomes(self, outcomes: Sequence[tuple[str, Outcome]]) -> int:
        """Call status callbacks (provider call id, outcome), e.g. Tencent's."""
        recorded, pulled = await receipts.record_call_outcomes(
            self.store, self.policies, outcomes, self.clock.now()
        )
        if pulled:
            self._timers.wake()
        return recorded

    async def _settle(self, updates: list[tuple[int, str]], now: float) -> int:
        if not updates:
            return 0
        for notification_id, _ in updates:
            self._asked.pop(notification_id, None)
        unanswered = await self.store.settle_receipts(updates, now)
        for outcome in (o for _, o in updates):
            self.counters[f"receipt_{outcome}"] += 1
        await self._move_on(unanswered, now)
        return len(updates)

    async def _move_on(self, unanswered: list[tuple[int, int]], wall: float) -> None:
        """Steps nobody answered: the next step is due at once."""
        if await receipts.move_on(self.store, self.policies, unanswered, wall):
            self._timers.wake()

    async def _severities(self, alert_ids: list[int]) -> dict[int, str]:
        """Severity of each alert, from the escalations this process fired (no query on
        the way to a first notification), else from the store (after a restart)."""
        missing = [i for i in alert_ids if i not in self._severity_of]
        if missing:
            for alert_id, alert in (await self.store.get_many(missing)).items():
                self._severity_of[alert_id] = alert.severity
        known = {i: self._severity_of[i] for i in alert_ids if i in self._severity_of}
        if len(self._severity_of) > 100_000:  # bounded: old alerts' sends are long done
            self._severity_of = dict(known)
        return known

    def _forget(self, notification_id: int, _task: asyncio.Task[None]) -> None:
        self._in_flight.pop(notification_id, None)

    async def settle(self) -> None:
        """Wait until every send in flight has finished and been logged."""
        while self._in_flight:
            await asyncio.gather(*list(self._in_flight.values()), return_exceptions=True)

    async def _deliver(self, n: NotificationRecord, index: RegistryIndex, kind: NotifyType) -> None:
        error, receipt = await self._send_one(n, index, kind)
        if receipt is not None:
            self._receipts[n.id] = receipt
        if error is not None and self._limited(n, index):
            # The provider refused a limited destination: it may block it for a while.
            url = self._urls_by_channel(n, index)
            limit = self.throttle.limits.for_url(url) if url else None
            if limit is not None:
                self.throttle.note_refused(n.channel_hash, limit, self.clock.now())
        self._results.append((n, error))
        try:
            await self._record_results()
        except StoreWriteAbandoned as exc:
            # The message stays pending in the store: sent again after a restart, so at
            # least once rather than never.
            log.error("send not logged at stop", extra={"key": n.idempotency_key, "error": exc})
        except Exception:
            # The send is logged; what follows it failed (its "notified" events, pulling
            # an unanswered step forward): that step still comes due at its own time.
            log.exception("follow-up of a logged send failed", extra={"key": n.idempotency_key})

    def _limited(self, n: NotificationRecord, index: RegistryIndex) -> bool:
        url = self._urls_by_channel(n, index)
        return url is not None and self.throttle.limits.for_url(url) is not None

    async def _record_results(self) -> None:
        """Log finished sends. While one batch is being written the next accumulates,
        so a thousand sends cost a few transactions, not a thousand."""
        async with self._results_lock:
            batch, self._results = self._results, []
            if not batch:
                return
            wall = self.clock.now()
            rows: list[tuple[NotificationRecord, str | None, float | None]] = []
            for n, error in batch:
                if error is None:
                    self.counters["sent"] += 1
                    rows.append((n, None, None))
                    continue
                delivery = self.policies.for_site(n.site).delivery
                final = n.id in self._throttled
                retry = None if final else decisions.retry_at(n.attempts + 1, delivery, wall)
                self.counters["retrying" if retry is not None else "failed"] += 1
                log.warning(
                    "notification failed",
                    extra={
                        "key": n.idempotency_key,
                        "attempt": n.attempts + 1,
                        "error": error,
                        "final": retry is None,
                    },
                )
                rows.append((n, error, retry))
            ids = [n.id for n, _ in batch]
            receipts = {i: self._receipts.pop(i) for i in ids if i in self._receipts}
            throttled = {i for i in ids if i in self._throttled}
            self._throttled -= throttled
            # A send that happened must be logged before anything else: were the log lost,
            # the message would still be pending and go out a second time. The write
            # only touches rows still pending, so it is safe to retry.
            unanswered = await self._until_stored(
                partial(self.store.record_deliveries, rows, wall, receipts, throttled)
            )
            alerts = await self.store.get_many([n.alert_id for n, _ in batch if n.alert_id])
            events = [
                AlertEvent(
                    "notified",
                    alerts[n.alert_id],
                    wall,
                    self._org(n.site),
                    step=n.step,
                    discriminator=f"{n.round}/{n.recipient}/{n.channel_hash}",
                )
                for n, error in batch
                if error is None and n.alert_id in alerts and n.purpose == "alert"
            ]
            self._record(events)
            await self._move_on(unanswered, wall)

    async def _send_one(
        self, n: NotificationRecord, index: RegistryIndex, kind: NotifyType
    ) -> tuple[str | None, Receipt | None]:
        """(None when delivered, else why not; the channel's receipt if it gave one)."""
        url = self._urls_by_channel(n, index)
        if url is None:
            return "channel no longer configured in the registry or policy", None
        delivery = self.policies.for_site(n.site).delivery
        limit = self._channel_limits.setdefault(
            n.channel_hash, asyncio.Semaphore(delivery.per_channel_concurrency)
        )
        params = TemplateParams.from_json(n.params) if n.params else None
        async with limit:
            try:
                receipt = await self.sender.send(
                    url, n.title, n.body, delivery.timeout_s, kind, params
                )
            except DeliveryError as exc:
                return str(exc), None
            except Exception as exc:  # any failure of one channel stays with that channel
                return f"{type(exc).__name__}: {exc}", None
        return None, receipt
