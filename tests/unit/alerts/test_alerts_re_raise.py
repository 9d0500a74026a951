"""A second press is news: a new SOS press or a new fall on an acknowledged, unresolved
alert re-raises it (open again, escalation from the centre, notified again); a
condition still true, a redelivered trigger, or a press on an alert still open does
not. Real store (SQLite) and a real HTTP receiver; a fake clock."""

from __future__ import annotations

import json

import pytest

from alerts.decisions import re_raise_of
from alerts.pipeline import AlertPipeline
from alerts.service import AlertService
from alerts.store import AlertStore
from eldercare.clock import FakeClock
from eldercare.domain import AlertKind, AlertStatus, TransitionAction
from tests.helpers.alerts import (
    T0,
    HttpReceiver,
    make_pipeline,
    policies,
    registry,
    transition,
)

UPDATE = TransitionAction.UPDATE


async def _acknowledged(
    store: AlertStore, rx: HttpReceiver, kind: AlertKind, clock: FakeClock
) -> tuple[AlertPipeline, AlertService]:
    """A pipeline with an alert of `kind` raised at T0, notified and acknowledged."""
    pipeline, service = make_pipeline(store, registry([]), clock, policies([rx.url("centre")]))
    await pipeline.handle_transitions([transition(kind, T0)])
    await pipeline.tick()
    assert len(rx.to("centre")) == 1
    clock.set(T0 + 20)
    await service.acknowledge(1, by="operator-1")
    return pipeline, service


async def test_a_new_press_on_an_acknowledged_sos_re_raises_it_and_notifies_again(
    store: AlertStore, http_receiver: HttpReceiver
) -> None:
    rx = http_receiver
    clock = FakeClock(T0)
    pipeline, service = await _acknowledged(store, rx, AlertKind.SOS, clock)
    clock.set(T0 + 40)
    # The SOS detector reports a press within its repeat window as an update.
    await pipeline.handle_transitions([transition(AlertKind.SOS, T0 + 40, UPDATE, presses=2)])
    alert = await store.get(1)
    assert alert is not None
    assert alert.status == "open" and alert.acknowledged_at is None
    assert alert.details["re_raised"] == {
        "what": "pressed_again",
        "count": 1,
        "ts": T0 + 40,
        "at": T0 + 40,
    }
    await pipeline.tick()
    assert len(rx.to("centre")) == 2, "escalation starts over from the centre"
    text = json.dumps(rx.to("centre")[1].doc, ensure_ascii=False)
    assert "再次按下" in text
    history = [h.action for h in await store.history(1)]
    assert history[-3:] == ["re_raised", "escalated", "notified"]
    # The next acknowledgement's response time counts from the re-raise.
    clock.set(T0 + 55)
    await service.acknowledge(1, by="operator-2")
    ack = [h for h in await store.history(1) if h.action == "acknowledged"][-1]
    assert ack.data["ack_seconds"] == pytest.approx(15.0)


async def test_a_press_after_the_sos_condition_cleared_re_raises_too(
    store: AlertStore, http_receiver: HttpReceiver
) -> None:
    """After the repeat window the SOS detector clears; the next press is a raise."""
    rx = http_receiver
    clock = FakeClock(T0)
    pipeline, _ = await _acknowledged(store, rx, AlertKind.SOS, clock)
    clear = transition(AlertKind.SOS, T0 + 300, TransitionAction.CLEAR)
    await pipeline.handle_transitions([clear])
    clock.set(T0 + 400)
    await pipeline.handle_transitions([transition(AlertKind.SOS, T0 + 400)])
    alert = await store.get(1)
    assert alert is not None and alert.status == "open" and alert.condition == "active"
    await pipeline.tick()
    assert len(rx.to("centre")) == 2


async def test_a_redelivered_press_is_not_a_second_press(
    store: AlertStore, http_receiver: HttpReceiver
) -> None:
    rx = http_receiver
    clock = FakeClock(T0)
    pipeline, _ = await _acknowledged(store, rx, AlertKind.SOS, clock)
    await pipeline.handle_transitions([transition(AlertKind.SOS, T0)])  # the same press
    alert = await store.get(1)
    assert alert is not None and alert.status == "acknowledged"
    await pipeline.tick()
    assert len(rx.to("centre")) == 1


async def test_a_new_fall_re_raises_but_the_same_fall_changing_status_does_not(
    store: AlertStore, http_receiver: HttpReceiver
) -> None:
    rx = http_receiver
    clock = FakeClock(T0)
    pipeline, _ = await _acknowledged(store, rx, AlertKind.FALL, clock)
    await pipeline.handle_transitions([transition(AlertKind.FALL, T0 + 30, UPDATE)])
    alert = await store.get(1)
    assert alert is not None and alert.status == "acknowledged"
    await pipeline.handle_transitions([transition(AlertKind.FALL, T0 + 90)])
    alert = await store.get(1)
    assert alert is not None and alert.status == "open"
    assert alert.details["re_raised"]["what"] == "fell_again"
    await pipeline.tick()
    assert len(rx.to("centre")) == 2
    assert "再次跌倒" in json.dumps(rx.to("centre")[1].doc, ensure_ascii=False)


async def test_a_condition_still_true_does_not_re_raise(
    store: AlertStore, http_receiver: HttpReceiver
) -> None:
    rx = http_receiver
    clock = FakeClock(T0)
    pipeline, _ = await _acknowledged(store, rx, AlertKind.BATHROOM_TOO_LONG, clock)
    await pipeline.handle_transitions(
        [
            transition(AlertKind.BATHROOM_TOO_LONG, T0 + 600, UPDATE, minutes=25),
            transition(AlertKind.BATHROOM_TOO_LONG, T0 + 700),
        ]
    )
    alert = await store.get(1)
    assert alert is not None and alert.status == "acknowledged"
    await pipeline.tick()
    assert len(rx.to("centre")) == 1


async def test_a_press_on_an_alert_still_open_only_updates_it(
    store: AlertStore, http_receiver: HttpReceiver
) -> None:
    """Unacknowledged, its escalation is still running: nothing to start over."""
    rx = http_receiver
    clock = FakeClock(T0)
    pipeline, _ = make_pipeline(store, registry([]), clock, policies([rx.url("centre")]))
    await pipeline.handle_transitions([transition(AlertKind.SOS, T0)])
    await pipeline.tick()
    await pipeline.handle_transitions([transition(AlertKind.SOS, T0 + 10, UPDATE, presses=2)])
    await pipeline.tick()
    alert = await store.get(1)
    assert alert is not None and "re_raised" not in alert.details
    assert len(rx.to("centre")) == 1


def test_which_triggers_re_raise() -> None:
    raise_, update = TransitionAction.RAISE, TransitionAction.UPDATE
    sos, acked = AlertKind.SOS, AlertStatus.ACKNOWLEDGED
    assert re_raise_of(sos, acked, update, 2.0, 1.0) == "pressed_again"
    assert re_raise_of(AlertKind.WEARABLE_FALL, acked, raise_, 2.0, 1.0) == "fell_again"
    assert re_raise_of(sos, acked, update, 1.0, 1.0) is None  # not newer
    assert re_raise_of(sos, AlertStatus.OPEN, update, 2.0, 1.0) is None
    assert re_raise_of(sos, acked, TransitionAction.CLEAR, 2.0, 1.0) is None
    assert re_raise_of(AlertKind.INACTIVITY, acked, raise_, 2.0, 1.0) is None
