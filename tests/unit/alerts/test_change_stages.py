"""The change stages as objects, each with its clock handed in: a fake clock decides
whether a maintenance window silences an alert; dedup keeps one change per alert.
Real store (SQLite)."""

from __future__ import annotations

from datetime import UTC, datetime

from alerts.change_stages import Dedup, ScheduleEscalation, Silence
from alerts.policy import PolicySet
from alerts.policy import Silence as Window
from alerts.records import AlertChange
from alerts.store import AlertStore
from eldercare.clock import FakeClock
from eldercare.domain import AlertChangeKind, AlertKind, TransitionAction
from tests.helpers.alerts import T0, policies, transition


def _with_window(base: PolicySet, starts: float, ends: float) -> PolicySet:
    window = Window(
        kinds=[AlertKind.INACTIVITY],
        starts=datetime.fromtimestamp(starts, UTC),
        ends=datetime.fromtimestamp(ends, UTC),
        reason="sensor maintenance",
    )
    return PolicySet(base.default.model_copy(update={"silences": [window]}))


async def _raised(store: AlertStore, kind: AlertKind) -> list[AlertChange]:
    return await store.apply_transitions([transition(kind, T0)], T0)


async def test_silence_follows_its_clock_not_the_wall(store: AlertStore) -> None:
    changes = await _raised(store, AlertKind.INACTIVITY)
    window = _with_window(policies([]), T0 + 100, T0 + 200)
    before = Silence(store, window, FakeClock(T0 + 50))
    assert await before(changes) == changes
    during = Silence(store, window, FakeClock(T0 + 150))
    assert await during(changes) == []
    alert = await store.get(changes[0].alert.id)
    assert alert is not None and alert.silenced_by == "sensor maintenance"


async def test_dedup_keeps_the_latest_news_once_per_alert(store: AlertStore) -> None:
    raised = await _raised(store, AlertKind.INACTIVITY)
    update = await store.apply_transitions(
        [transition(AlertKind.INACTIVITY, T0 + 5, TransitionAction.UPDATE)], T0 + 5
    )
    assert update[0].change is AlertChangeKind.UPDATED
    assert await Dedup()([*raised, *update]) == raised


async def test_schedule_starts_escalation_due_at_its_clock(store: AlertStore) -> None:
    changes = await _raised(store, AlertKind.SOS)
    scheduled = await ScheduleEscalation(store, policies([]), FakeClock(T0 + 7))(changes)
    assert scheduled == changes
    state = await store.escalation_state(changes[0].alert.id)
    assert state is not None and (state.step, state.next_due, state.active) == (0, T0 + 7, True)
