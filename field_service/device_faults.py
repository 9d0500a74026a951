"""Raising `device_fault` notices: a device test overdue, or a fault not fixed in 2 hours.

JGJ/T 484-2019 asks for weekly tests of emergency buttons and fall devices and a remedy
for a fault not fixed within 2 hours. `device_tests.device_test_status` lists both; this
watch raises them through the alert pipeline as a `device_fault` alert of severity
`warning` (a notice for the centre: the warning policy tells the centre at once and
resolves the alert by itself once its condition clears).

Each device's trouble is an episode (`field_device_fault`): it begins at the due time
(the test's due date, or the failed test + 2 h), is raised once, stamped with that
time, and ends when a passed test is recorded (by a responder or by the device's own
test press), cleared at that test's time. The watch runs on the platform's clock
(event time in a replay), so a tick after a restart, or a second tick at the same
time, finds the episode already raised and raises nothing; the pipeline's notification
log does the rest.

A device never tested owes its first test one period after the watch first saw it (a
new installation is not overdue on its first day). Alerts are identified by (site,
resident, kind), so two devices in trouble at one home share the home's one open
`device_fault` alert: the second device's episode updates it (its evidence names the
device) instead of opening another, and the alert clears when the last one ends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import select, update

from eldercare.domain import AlertKind, Evidence, Severity, Transition, TransitionAction
from eldercare.evidence import EvidenceCode, Observation, describe
from eldercare.logs import get_logger
from eldercare.periodic import Periodic
from eldercare.registry_index import RegistryIndex
from eldercare.stage_contracts import TransitionSink
from field_service.device_tests import (
    FAULT_FIX_S,
    TEST_PERIOD_S,
    DeviceTestStatus,
    device_test_status,
    schedule_tests,
)
from field_service.models import DeviceFaultRow, DeviceWatchRow
from field_service.visit_store import Sessions

log = get_logger(__name__)
T = TypeVar("T")

TEST_OVERDUE = "test_overdue"
FAULT_UNFIXED = "fault_unfixed"
OBSERVED = {
    TEST_OVERDUE: EvidenceCode.DEVICE_TEST_OVERDUE,
    FAULT_UNFIXED: EvidenceCode.DEVICE_FAULT_UNFIXED,
}


@dataclass(frozen=True, slots=True)
class Problem:
    site_id: str
    device_id: str
    reason: str
    since: float  # event time it became a problem: a due time


def problems(
    statuses: Iterable[DeviceTestStatus],
    first_seen: dict[tuple[str, str], float],
    now: float,
    period_s: float = TEST_PERIOD_S,
) -> list[Problem]:
    """The devices in trouble as of `now`, each with the time its trouble began."""
    out = []
    for st in statuses:
        key = (st.site.id, st.device_id)
        if st.fault_overdue and st.fault_since is not None:
            out.append(Problem(*key, FAULT_UNFIXED, st.fault_since + FAULT_FIX_S))
        # Never passed a test: owed one period after it was first seen.
        due = st.next_due if st.last_test_at is not None else first_seen.get(key, now) + period_s
        if due <= now:
            out.append(Problem(*key, TEST_OVERDUE, due))
    return out


def _end_time(row: DeviceFaultRow, status: DeviceTestStatus | None, now: float) -> float:
    """A passed test ends the episode at its own time; a device gone from the registry
    ends it now."""
    if status is not None and status.last_test_at is not None:
        return max(status.last_test_at, row.since)
    return max(now, row.since)


def _transition(action: TransitionAction, row: DeviceFaultRow, ts: float) -> Transition:
    seen = Observation(OBSERVED.get(row.reason, EvidenceCode.DEVICE_TEST_OVERDUE))
    evidence = Evidence(
        ts=ts, device_id=row.device_id, stream="device_test", summary=describe([seen]),
        observations=(seen,),
    )  # fmt: skip
    return Transition(
        action=action,
        kind=AlertKind.DEVICE_FAULT,
        site_id=row.site_id,
        ts=ts,
        severity=Severity.WARNING,
        device_id=row.device_id,
        evidence=(evidence,),
        details={"reason": row.reason, "device_id": row.device_id, "since": row.since},
    )


class DeviceFaultWatch:
    """A component of `eldercare run`: ticks every `every_s` at `now()`, the platform's
    clock (live) or the detectors' watermark (a replay; None before the first reading)."""

    name = "field-device-faults"

    def __init__(
        self,
        sessions: Sessions,
        index: Callable[[], RegistryIndex],
        sink: TransitionSink,
        now: Callable[[], float | None],
        *,
        every_s: float = 30.0,
        period_s: float = TEST_PERIOD_S,
    ) -> None:
        self._sessions = sessions
        self._index = index
        self._sink = sink
        self._now = now
        self.period_s = period_s
        self._last_now = float("-inf")
        self.loop = Periodic(self.name, self.tick_now, every_s, first_after_s=0)

    async def start(self) -> None:
        self.loop.start()

    async def stop(self) -> None:
        await self.loop.stop()

    async def tick_now(self) -> None:
        """One tick at `now()`, as the loop runs it."""
        now = self._now()
        if now is not None:  # a replay before its first reading has no time yet
            await self.tick(now)

    async def tick(self, now: float) -> list[Transition]:
        """Open and end episodes as of `now`; hand the pipeline what it has not taken."""
        now = self._last_now = max(now, self._last_now)  # never back in time within a run
        sites = self._index().document.sites
        tests = await schedule_tests(self._sessions, [s.id for s in sites])
        statuses = device_test_status(sites, tests, now, self.period_s)
        by_device = {(s.site.id, s.device_id): s for s in statuses}
        async with self._sessions() as session:
            seen = {
                (r.site_id, r.device_id): r.first_seen
                for r in (await session.scalars(select(DeviceWatchRow))).all()
            }
            for key in by_device.keys() - seen.keys():
                session.add(DeviceWatchRow(site_id=key[0], device_id=key[1], first_seen=now))
                seen[key] = now
            current = {
                (p.site_id, p.device_id, p.reason): p
                for p in problems(statuses, seen, now, self.period_s)
            }
            open_rows = (
                await session.scalars(
                    select(DeviceFaultRow).where(DeviceFaultRow.ended_at.is_(None))
                )
            ).all()
            open_keys: set[tuple[str, str, str]] = set()
            for row in open_rows:
                episode = (row.site_id, row.device_id, row.reason)
                if episode in current:
                    open_keys.add(episode)
                else:
                    row.ended_at = _end_time(row, by_device.get(episode[:2]), now)
            fresh = [p for key, p in current.items() if key not in open_keys]
            # The same episode, ended by a tick at an earlier time (a clock set back, a
            # replay), is opened again rather than raised twice.
            ended: dict[tuple[str, str, str, float], DeviceFaultRow] = {}
            sinces = sorted({p.since for p in fresh})
            for chunk in _chunks(sinces):
                for row in (
                    await session.scalars(
                        select(DeviceFaultRow).where(
                            DeviceFaultRow.ended_at.is_not(None), DeviceFaultRow.since.in_(chunk)
                        )
                    )
                ).all():
                    ended[(row.site_id, row.device_id, row.reason, row.since)] = row
            for p in fresh:
                same = ended.get((p.site_id, p.device_id, p.reason, p.since))
                if same is not None:
                    same.ended_at, same.clear_handed = None, False
                else:
                    session.add(
                        DeviceFaultRow(
                            site_id=p.site_id, device_id=p.device_id, reason=p.reason,
                            since=p.since, raise_handed=False, clear_handed=False,
                        )
                    )  # fmt: skip
            await session.commit()
        return await self._hand_on()

    async def _hand_on(self) -> list[Transition]:
        """Raise every episode not yet raised; clear a home's alert when its last episode
        has ended. Marked handed only once the pipeline has stored them."""
        async with self._sessions() as session:
            rows = (
                await session.scalars(
                    select(DeviceFaultRow).where(
                        DeviceFaultRow.raise_handed.is_(False)
                        | (
                            DeviceFaultRow.ended_at.is_not(None)
                            & DeviceFaultRow.clear_handed.is_(False)
                        )
                    )
                )
            ).all()
            still_open = {
                r.site_id
                for r in (
                    await session.scalars(
                        select(DeviceFaultRow).where(DeviceFaultRow.ended_at.is_(None))
                    )
                ).all()
            }
            transitions: list[Transition] = []
            raised: list[int] = []
            cleared: list[int] = []
            clearing: set[str] = set()
            for row in sorted(rows, key=lambda r: r.since):
                if not row.raise_handed:
                    raised.append(row.id)
                    if row.ended_at is None:
                        transitions.append(_transition(TransitionAction.RAISE, row, row.since))
                    else:  # began and ended between two ticks (a restart): nothing to say
                        cleared.append(row.id)
                    continue
                cleared.append(row.id)
                if row.site_id not in still_open and row.site_id not in clearing:
                    clearing.add(row.site_id)  # one clear per home, at its last ending
                    ends = [r.ended_at for r in rows if r.site_id == row.site_id and r.ended_at]
                    transitions.append(_transition(TransitionAction.CLEAR, row, max(ends)))
        if transitions:
            await self._sink.handle_transitions(transitions)
            log.info(
                "device_fault transitions handed on",
                extra={"raised": len(raised), "cleared": len(cleared)},
            )
        if raised or cleared:
            async with self._sessions() as session:
                for chunk in _chunks(raised):
                    await session.execute(
                        update(DeviceFaultRow)
                        .where(DeviceFaultRow.id.in_(chunk))
                        .values(raise_handed=True)
                    )
                for chunk in _chunks(cleared):
                    await session.execute(
                        update(DeviceFaultRow)
                        .where(DeviceFaultRow.id.in_(chunk))
                        .values(clear_handed=True)
                    )
                await session.commit()
        return transitions


def _chunks(values: Sequence[T], size: int = 500) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


async def episodes(sessions: Sessions) -> list[DeviceFaultRow]:
    async with sessions() as session:
        return list(
            (await session.scalars(select(DeviceFaultRow).order_by(DeviceFaultRow.id))).all()
        )
