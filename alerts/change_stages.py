"""The stages an alert change goes through after the store merged it, each an object
with what it needs handed in (the store, the policies, the clock):

    record ─▶ auto-resolve ─▶ inhibit ─▶ silence ─▶ dedup ─▶ schedule escalation

Each is `async (changes) -> changes`: it passes on the changes still to be acted on.
Decisions are the pure predicates of `alerts.decisions`; the pipeline
(`alerts.pipeline`) chains the stages under its tick lock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from alerts import decisions
from alerts.events import AlertEvent
from alerts.policy import InhibitRules, PolicySet
from alerts.records import AlertChange
from alerts.store import AlertStore
from eldercare.clock import Clock
from eldercare.domain import AlertChangeKind
from eldercare.logs import get_logger

log = get_logger(__name__)

# Hands alert events to the recorder (InfluxDB, in the background).
RecordEvents = Callable[[Sequence[AlertEvent]], None]
# The organisation a site belongs to, for the recorded events (None if unknown).
OrganisationOf = Callable[[str], str | None]


class ChangeStage(Protocol):
    async def __call__(self, changes: list[AlertChange]) -> list[AlertChange]: ...


class RecordChanges:
    """Submit every stored change to the event recorder; passes all of them on."""

    def __init__(self, record: RecordEvents, organisation_of: OrganisationOf) -> None:
        self.record = record
        self.organisation_of = organisation_of

    async def __call__(self, changes: list[AlertChange]) -> list[AlertChange]:
        names = {
            AlertChangeKind.RAISED: "raised",
            AlertChangeKind.RE_RAISED: "re_raised",
            AlertChangeKind.CLEARED: "cleared",
        }
        events = [
            AlertEvent(
                names.get(c.change, "updated"),
                c.alert,
                c.alert.cleared_at
                if c.change == "cleared" and c.alert.cleared_at
                else c.alert.last_update,
                self.organisation_of(c.alert.site),
            )
            for c in changes
        ]
        self.record(events)
        return changes


class AutoResolve:
    """Resolve a cleared alert whose policy says clearing ends it."""

    def __init__(
        self,
        store: AlertStore,
        policies: PolicySet,
        clock: Clock,
        record: RecordEvents,
        organisation_of: OrganisationOf,
    ) -> None:
        self.store = store
        self.policies = policies
        self.clock = clock
        self.record = record
        self.organisation_of = organisation_of

    async def __call__(self, changes: list[AlertChange]) -> list[AlertChange]:
        out: list[AlertChange] = []
        events: list[AlertEvent] = []
        for c in changes:
            policy = self.policies.for_site(c.alert.site).for_alert(c.alert.kind, c.alert.severity)
            if c.change == "cleared" and decisions.should_auto_resolve(c.alert, policy):
                now = self.clock.now()
                resolved = await self.store.auto_resolve(c.alert.id, c.alert.last_update, now)
                events.append(
                    AlertEvent(
                        "resolved",
                        resolved,
                        now,
                        self.organisation_of(resolved.site),
                        resolve_seconds=now - resolved.created_at,
                        outcome=resolved.outcome,
                    )
                )
                continue
            out.append(c)
        self.record(events)
        return out


class Inhibit:
    """Mark new alerts that an active alert inhibits; and when an inhibiting alert is
    raised, the unacknowledged alerts it inhibits that were already open (their
    escalation pauses until it ends)."""

    def __init__(
        self,
        store: AlertStore,
        inhibit_rules: InhibitRules,
        clock: Clock,
        record: RecordEvents,
        organisation_of: OrganisationOf,
    ) -> None:
        self.store = store
        self.inhibit_rules = inhibit_rules
        self.clock = clock
        self.record = record
        self.organisation_of = organisation_of

    async def __call__(self, changes: list[AlertChange]) -> list[AlertChange]:
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
        self.record(
            [
                AlertEvent("inhibited", targets[a], now, self.organisation_of(targets[a].site))
                for a, _, _ in marks
            ]
        )
        log.info("alerts inhibited", extra={"count": len(marks)})
        return [c for c in changes if c.alert.id not in inhibited]


class Silence:
    """Hold back the news of an alert a maintenance window of its site covers: stored and
    shown, not notified."""

    def __init__(self, store: AlertStore, policies: PolicySet, clock: Clock) -> None:
        self.store = store
        self.policies = policies
        self.clock = clock

    async def __call__(self, changes: list[AlertChange]) -> list[AlertChange]:
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


class Dedup:
    """Keep the news only, once per alert (the latest change of a batch wins)."""

    async def __call__(self, changes: list[AlertChange]) -> list[AlertChange]:
        latest: dict[int, AlertChange] = {}
        for c in changes:
            if decisions.should_notify(c):
                latest[c.alert.id] = c
        return list(latest.values())


class ScheduleEscalation:
    """Start escalation at step 0, due now; a severity without steps (info: the
    console only) has nothing to escalate."""

    def __init__(self, store: AlertStore, policies: PolicySet, clock: Clock) -> None:
        self.store = store
        self.policies = policies
        self.clock = clock

    async def __call__(self, changes: list[AlertChange]) -> list[AlertChange]:
        now = self.clock.now()
        paged = [
            c
            for c in changes
            if self.policies.for_site(c.alert.site).for_alert(c.alert.kind, c.alert.severity).steps
        ]
        await self.store.start_escalations(
            [(c.alert.id, c.alert.severity) for c in paged], now, now
        )
        return paged
