"""The alert pipeline: detector transitions in; stored alerts, escalation and
notifications out.

    transitions ─▶ store (merge by identity) ─┬▶ auto-resolve ─▶ inhibit ─▶ silence
                                               │    ─▶ dedup ─▶ schedule escalation
                                               └▶ record (alongside, to InfluxDB)
    tick(now): release inhibitions ─▶ escalate due steps (pending log rows)
        ─▶ send with retry ─▶ record

The InfluxDB copy of the events is written alongside the later stages and the
sends start before a step's events are recorded: the first notification of a new
alert waits for the store, never for InfluxDB.

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
from typing import Any

from alerts import decisions
from alerts.events import AlertEvent, AlertEventRecorder, NullRecorder
from alerts.messages import alert_message
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
    is_safety,
    resolve_all,
)
from alerts.records import AlertChange, EscalationState, NotificationRecord, PlannedNotification
from alerts.sender import (
    AppriseSender,
    DeliveryError,
    NotificationSender,
    NotifyType,
    notify_type,
)
from alerts.store import AlertStore
from eldercare.clock import Clock
from eldercare.domain import Severity, Transition
from eldercare.logs import get_logger
from eldercare.periodic import Periodic
from eldercare.registry_index import RegistryIndex

log = get_logger(__name__)

IndexProvider = Callable[[], RegistryIndex]
Stage = Callable[[list[AlertChange]], Awaitable[list[AlertChange]]]


@dataclass
class TickReport:
    rescheduled: int = 0
    released: int = 0
    escalated: int = 0
    summaries: int = 0
    sends_started: int = 0


class AlertPipeline:
    """`eldercare.pipeline.TransitionSink` and `Component`."""

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
    ) -> None:
        self.store = store
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
        # After the store; `record_changes` runs alongside them.
        self.stages: list[Stage] = [
            self.auto_resolve,
            self.inhibit,
            self.silence,
            self.dedup,
            self.schedule,
        ]
        # Escalation timers; woken at once when a transition arrives or a send settles.
        self._timers = Periodic(
            "alerts-timers", partial(self.tick, wait=False), tick_interval_s, first_after_s=0
        )
        self._warm_task: asyncio.Task[None] | None = None
        self._tick_lock = asyncio.Lock()
        self._channel_limits: dict[str, asyncio.Semaphore] = {}
        self._in_flight: dict[int, asyncio.Task[None]] = {}
        self._results: list[tuple[NotificationRecord, str | None]] = []
        self._results_lock = asyncio.Lock()
        self.counters: Counter[str] = Counter()
        # Clients the pipeline's builder opened (e.g. InfluxDB), closed by `close_alerts`.
        self.resources: list[Any] = []

    # ---- Component -------------------------------------------------------------------

    async def start(self) -> None:
        self._timers.start()
        if isinstance(self.sender, AppriseSender) and self._warm_task is None:
            # Apprise loads its plugins on first use (~0.2 s, seconds on a busy box):
            # not on the first SOS.
            self._warm_task = asyncio.create_task(self.sender.warm(), name="apprise-warm")

    async def stop(self) -> None:
        await self._timers.stop()
        if self._warm_task is not None:
            with contextlib.suppress(Exception):
                await self._warm_task
            self._warm_task = None
        # Sends in flight finish (each is bounded by its timeout) and get logged.
        await self.settle()
        if isinstance(self.sender, AppriseSender):
            self.sender.close()

    # ---- TransitionSink --------------------------------------------------------------

    async def handle_transitions(self, transitions: Sequence[Transition]) -> None:
        """Store the batch and schedule escalation; returns when both are durable."""
        if not transitions:
            return
        recording: asyncio.Task[list[AlertChange]] | None = None
        try:
            # Under the tick lock, so a tick never sees an alert whose stages are half run.
            async with self._tick_lock:
                changes = await self.store.apply_transitions(transitions, self.clock.now())
                if changes:
                    recording = asyncio.create_task(self.record_changes(changes))
                for stage in self.stages:
                    if not changes:
                        break
                    changes = await stage(changes)
            self._timers.wake()
        finally:
            if recording is not None:
                await recording  # recorded (or kept for retry) before we return, as before

    # ---- transition stages -----------------------------------------------------------

    def _org(self, site_id: str) -> str | None:
        site = self.index_provider().sites.get(site_id)
        return site.organisation if site else None

    async def record_changes(self, changes: list[AlertChange]) -> list[AlertChange]:
        names = {"raised": "raised", "cleared": "cleared"}
        events = [
            AlertEvent(
                names.get(c.change, "updated"),
                c.alert,
                c.alert.cleared_at
                if c.change == "cleared" and c.alert.cleared_at
                else c.alert.last_update,
                self._org(c.alert.site),
            )
            for c in changes
        ]
        await self.recorder.record(events)
        return changes

    async def auto_resolve(self, changes: list[AlertChange]) -> list[AlertChange]:
        out: list[AlertChange] = []
        events: list[AlertEvent] = []
        for c in changes:
            policy = self.policies.for_site(c.alert.site).severities[Severity(c.alert.severity)]
            if c.change == "cleared" and decisions.should_auto_resolve(c.alert, policy):
                now = self.clock.now()
                resolved = await self.store.auto_resolve(c.alert.id, c.alert.last_update, now)
                events.append(
                    AlertEvent(
                        "resolved",
                        resolved,
                        now,
                        self._org(resolved.site),
                        resolve_seconds=now - resolved.created_at,
                        outcome=resolved.outcome,
                    )
                )
                continue
            out.append(c)
        await self.recorder.record(events)
        return out

    async def inhibit(self, changes: list[AlertChange]) -> list[AlertChange]:
        """Mark new alerts that an active alert inhibits; and when an inhibiting alert is
        raised, the unacknowledged alerts it inhibits that were already open (their
        escalation pauses until it ends)."""
        news = [c for c in changes if decisions.should_notify(c) and c.alert.inhibited_by is None]
        sources = [
            c
            for c in changes
            if c.change == "raised" and decisions.inhibits_any(c.alert.kind, self.inhibit_rules)
        ]
        if not news and not sources:
            return changes
        active = await self.store.active_alerts([c.alert.site for c in [*news, *sources]])
        targets = {c.alert.id: c.alert for c in news}
        source_sites = {c.alert.site for c in sources}
        for a in active:
            if (
                a.site in source_sites
                and a.id not in targets
                and a.status == "open"
                and a.inhibited_by is None
            ):
                targets[a.id] = a
        marks: list[tuple[int, int, str]] = []
        for alert in targets.values():
            found = decisions.inhibitor_of(alert, active, self.inhibit_rules)
            if found is not None:
                source, rule = found
                marks.append((alert.id, source.id, rule.name))
        if not marks:
            return changes
        inhibited = {a for a, _, _ in marks}
        now = self.clock.now()
        await self.store.mark_inhibited(marks, now, now)
        await self.recorder.record(
            [
                AlertEvent("inhibited", targets[a], now, self._org(targets[a].site))
                for a, _, _ in marks
            ]
        )
        log.info("alerts inhibited", extra={"count": len(marks)})
        return [c for c in changes if c.alert.id not in inhibited]

    async def silence(self, changes: list[AlertChange]) -> list[AlertChange]:
        now = self.clock.now()
        marks: list[tuple[int, str]] = []
        for c in changes:
            if not decisions.should_notify(c) or c.alert.silenced_by is not None:
                continue
            found = decisions.silence_of(
                c.alert, self.policies.for_site(c.alert.site).silences, now
            )
            if found is not None:
                marks.append((c.alert.id, found.reason))
        if not marks:
            return changes
        await self.store.mark_silenced(marks, now, now)
        silenced = {a for a, _ in marks}
        return [c for c in changes if c.alert.id not in silenced]

    async def dedup(self, changes: list[AlertChange]) -> list[AlertChange]:
        """Keep the news only, once per alert (the latest change of a batch wins)."""
        latest: dict[int, AlertChange] = {}
        for c in changes:
            if decisions.should_notify(c):
                latest[c.alert.id] = c
        return list(latest.values())

    async def schedule(self, changes: list[AlertChange]) -> list[AlertChange]:
        """Start escalation at step 0, due now; a severity without steps (info: the
        console only) has nothing to escalate."""
        now = self.clock.now()
        paged = [
            c
            for c in changes
            if self.policies.for_site(c.alert.site).severities[Severity(c.alert.severity)].steps
        ]
        await self.store.start_escalations(
            [(c.alert.id, c.alert.severity) for c in paged], now, now
        )
        return paged

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
            report.escalated, escalated = await self._fire_due_steps(now)
            # The sends first: recording the steps (InfluxDB) and looking for daily
            # summaries must not hold up the first notification of a new alert.
            report.sends_started = await self.deliver_due(now, wait=False)
            await self.recorder.record(escalated)
            if self.daily_summaries is not None:
                report.summaries = await self.daily_summaries(now)
                if report.summaries:
                    report.sends_started += await self.deliver_due(now, wait=False)
        if wait:
            await self.settle()
        return report

    async def schedule_unscheduled(self, now: float) -> int:
        """Start escalation for open alerts that have none: a batch stored before a
        later stage failed must still reach people (the redelivered batch only merges)."""
        found = [
            a
            for a in await self.store.unscheduled_alerts()
            if self.policies.for_site(a.site).severities[Severity(a.severity)].steps
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
        await self.recorder.record(events)
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
            severity_policy = policy.severities[Severity(alert.severity)]
            fired_step = state.step
            new_state, specs, what = decisions.next_state(state, severity_policy, now)
            site = index.sites.get(alert.site)
            recipients = resolve_all(
                specs, site, alert.resident, policy.centre, prefs, is_safety(alert.severity)
            )
            planned: list[PlannedNotification] = []
            for r in recipients:
                title, body = alert_message(alert, site, r, policy.centre, self.public_url, now)
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
        error = await self._send_one(n, index, kind)
        self._results.append((n, error))
        await self._record_results()

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
                retry = decisions.retry_at(n.attempts + 1, delivery, wall)
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
            unanswered = await self.store.record_deliveries(rows, wall)
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
            await self.recorder.record(events)
            for alert_id, round_ in unanswered:
                alert = alerts.get(alert_id)
                state = await self.store.escalation_state(alert_id)
                if alert is None or state is None:
                    continue
                policy = self.policies.for_site(alert.site).severities[Severity(alert.severity)]
                if decisions.has_next_step(state, policy):
                    await self.store.pull_forward(alert_id, round_, wall, wall)
                    self._timers.wake()

    async def _send_one(
        self, n: NotificationRecord, index: RegistryIndex, kind: NotifyType
    ) -> str | None:
        """None when delivered, else why not."""
        url = self._urls_by_channel(n, index)
        if url is None:
            return "channel no longer configured in the registry or policy"
        delivery = self.policies.for_site(n.site).delivery
        limit = self._channel_limits.setdefault(
            n.channel_hash, asyncio.Semaphore(delivery.per_channel_concurrency)
        )
        async with limit:
            try:
                await self.sender.send(url, n.title, n.body, delivery.timeout_s, kind)
            except DeliveryError as exc:
                return str(exc)
            except Exception as exc:  # any failure of one channel stays with that channel
                return f"{type(exc).__name__}: {exc}"
        return None
