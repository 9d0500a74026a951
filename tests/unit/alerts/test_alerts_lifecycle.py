"""Alert lifecycle and the public API, on SQLite and PostgreSQL: identity and
merging, severity rising in place, clear vs resolve, human actions with who and
when, auto-resolve, the change feed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import text

from alerts.service import AlertService
from alerts.store import AlertFilter, AlertNotFound, AlertStateError, AlertStore, init_store
from eldercare.clock import FakeClock
from eldercare.db import create_engine
from eldercare.domain import AlertKind, Severity, TransitionAction
from tests.helpers.alerts import (
    T0,
    HttpReceiver,
    make_pipeline,
    policies,
    registry,
    sqlite_url,
    transition,
)


@pytest_asyncio.fixture(
    loop_scope="function",
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)],
)
async def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AlertStore]:
    url = sqlite_url(tmp_path) if request.param == "sqlite" else request.getfixturevalue("pg_url")
    engine = create_engine(url)
    await init_store(engine)
    if request.param == "postgresql":
        # The session's database is shared by every PostgreSQL test: start from empty.
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "TRUNCATE alert_history, notification_log, escalation_state, alerts "
                    "RESTART IDENTITY"
                )
            )
    yield AlertStore(engine)
    await engine.dispose()


def _setup(store: AlertStore, clock: FakeClock):  # type: ignore[no-untyped-def]
    # No channels: these tests are about the lifecycle, not about sending.
    return make_pipeline(store, registry([]), clock, policies([]))


async def test_repeated_triggers_merge_and_severity_rises_in_place(any_store: AlertStore) -> None:
    clock = FakeClock(T0 + 5)
    pipeline, service = _setup(any_store, clock)
    await pipeline.handle_transitions(
        [
            transition(AlertKind.BATHROOM_TOO_LONG, T0, room="bathroom", minutes=15),
            transition(
                AlertKind.BATHROOM_TOO_LONG, T0 + 1, TransitionAction.UPDATE, room="bathroom"
            ),
        ]
    )
    await pipeline.tick()
    fired = await any_store.escalation_state(1)
    assert fired is not None and fired.step == 1 and fired.severity == "high"
    await pipeline.handle_transitions(
        [
            transition(
                AlertKind.BATHROOM_TOO_LONG,
                T0 + 600,
                TransitionAction.UPDATE,
                Severity.CRITICAL,
                room="bathroom",
                minutes=25,
            )
        ]
    )
    [alert] = await service.list_alerts()
    assert alert.severity == "critical" and alert.details["minutes"] == 25
    assert alert.raised_at == T0 and alert.last_update == T0 + 600
    assert alert.created_at == T0 + 5
    detail = await service.get_alert(alert.id)
    assert detail is not None
    assert [h.action for h in detail.history] == ["raised", "updated", "escalated", "updated"]
    rise = detail.history[3]
    assert rise.data["change"] == "severity_raised" and rise.data["previous_severity"] == "high"
    assert rise.event_time == T0 + 600 and rise.wall_time == T0 + 5
    # A severity rise of an unacknowledged alert restarts its escalation at step 0.
    state = await any_store.escalation_state(alert.id)
    assert state is not None and state.severity == "critical" and state.step == 0
    assert state.next_due == T0 + 5 and state.round == 1

    # Another resident's or another kind's trigger is another alert.
    await pipeline.handle_transitions(
        [
            transition(AlertKind.BATHROOM_TOO_LONG, T0 + 700, resident="other"),
            transition(AlertKind.INACTIVITY, T0 + 700),
        ]
    )
    assert len(await service.list_alerts()) == 3


async def test_clear_keeps_handling_open_until_a_person_resolves(any_store: AlertStore) -> None:
    clock = FakeClock(T0)
    pipeline, service = _setup(any_store, clock)
    await pipeline.handle_transitions([transition(AlertKind.FALL, T0)])
    await pipeline.handle_transitions([transition(AlertKind.FALL, T0 + 90, TransitionAction.CLEAR)])
    [alert] = await service.list_alerts()
    assert alert.condition == "cleared" and alert.status == "open" and alert.cleared_at == T0 + 90
    # Triggered again while still open: the same alert, active again.
    await pipeline.handle_transitions([transition(AlertKind.FALL, T0 + 120)])
    [again] = await service.list_alerts()
    assert again.id == alert.id and again.condition == "active" and again.cleared_at is None

    clock.set(T0 + 300)
    resolved = await service.resolve(alert.id, "resident_fine", "她说没事", by="王敏")
    assert resolved.status == "resolved" and resolved.outcome == "resident_fine"
    assert resolved.resolved_by == "王敏" and resolved.resolved_at == T0 + 300
    # Resolving answers the alarm: the acknowledgement is implied and recorded.
    assert resolved.acknowledged_at == T0 + 300 and resolved.acknowledged_by == "王敏"
    # After resolution a new trigger opens a new alert.
    await pipeline.handle_transitions([transition(AlertKind.FALL, T0 + 400)])
    alerts = await service.list_alerts()
    assert sorted(a.id for a in alerts) == [alert.id, alert.id + 1]
    # A clear for a resolved alert changes nothing and is counted.
    await pipeline.handle_transitions([transition(AlertKind.SOS, T0 + 500, TransitionAction.CLEAR)])
    assert any_store.orphan_clears == 1


async def test_human_actions_record_who_and_when(any_store: AlertStore) -> None:
    clock = FakeClock(T0)
    pipeline, service = _setup(any_store, clock)
    await pipeline.handle_transitions([transition(AlertKind.SOS, T0)])
    clock.set(T0 + 20)
    await service.acknowledge(1, by="王敏")
    clock.set(T0 + 21)
    again = await service.acknowledge(1, by="someone else")  # idempotent: first one stands
    assert again.acknowledged_by == "王敏" and again.acknowledged_at == T0 + 20
    clock.set(T0 + 30)
    await service.assign(1, to="responder:li-gang", by="王敏")
    clock.set(T0 + 40)
    await service.add_note(1, "已电话联系，无人接听，派社区网格员上门", by="王敏")
    clock.set(T0 + 600)
    done = await service.resolve(1, "assisted_on_site", "网格员已上门", by="王敏")
    assert done.assigned_to == "responder:li-gang" and done.note == "网格员已上门"

    detail = await service.get_alert(1)
    assert detail is not None
    doc = detail.to_dict()
    for key in ("id", "site", "resident", "room", "kind", "severity", "condition", "status"):
        assert key in doc
    assert doc["raised_at"] == "2026-11-22T18:41:00.000Z"
    assert doc["acknowledged_at"] == "2026-11-22T18:41:20.000Z"
    assert doc["resolved_at"] == "2026-11-22T18:51:00.000Z"
    steps = [(h["action"], h["actor"], h["wall_time"]) for h in doc["history"]]
    assert steps == [
        ("raised", "system", "2026-11-22T18:41:00.000Z"),
        ("acknowledged", "王敏", "2026-11-22T18:41:20.000Z"),
        ("assigned", "王敏", "2026-11-22T18:41:30.000Z"),
        ("note", "王敏", "2026-11-22T18:41:40.000Z"),
        ("resolved", "王敏", "2026-11-22T18:51:00.000Z"),
    ]
    assert doc["history"][1]["data"]["ack_seconds"] == 20
    assert doc["history"][4]["data"]["resolve_seconds"] == 600

    with pytest.raises(AlertStateError):
        await service.resolve(1, "other", None, by="x")
    with pytest.raises(AlertStateError):
        await service.acknowledge(1, by="x")
    with pytest.raises(AlertNotFound):
        await service.acknowledge(99, by="x")
    with pytest.raises(ValueError, match="unknown outcome"):
        await service.resolve(1, "fixed_it", None, by="x")
    with pytest.raises(ValueError, match="system only"):
        await service.resolve(1, "auto_cleared", None, by="x")


async def test_warning_auto_resolves_when_cleared_but_critical_does_not(
    any_store: AlertStore,
) -> None:
    clock = FakeClock(T0)
    pipeline, service = _setup(any_store, clock)
    await pipeline.handle_transitions(
        [
            transition(AlertKind.DEVICE_OFFLINE, T0, resident=None),
            transition(AlertKind.FALL, T0),
        ]
    )
    clock.set(T0 + 100)
    await pipeline.handle_transitions(
        [
            transition(AlertKind.DEVICE_OFFLINE, T0 + 90, TransitionAction.CLEAR, resident=None),
            transition(AlertKind.FALL, T0 + 90, TransitionAction.CLEAR),
        ]
    )
    by_kind = {a.kind: a for a in await service.list_alerts()}
    offline, fall = by_kind["device_offline"], by_kind["fall"]
    assert offline.status == "resolved" and offline.outcome == "auto_cleared"
    assert offline.resolved_by == "system"
    assert fall.status == "open" and fall.condition == "cleared"


async def test_filters_and_queue(any_store: AlertStore) -> None:
    clock = FakeClock(T0)
    pipeline, service = _setup(any_store, clock)
    await pipeline.handle_transitions(
        [
            transition(AlertKind.LOW_BATTERY, T0, resident=None),
            transition(AlertKind.SOS, T0 + 10),
            transition(AlertKind.NOT_UP, T0 + 20, site="other-site"),
        ]
    )
    assert [a.kind for a in await service.queue()] == ["sos", "not_up", "low_battery"]
    assert [a.kind for a in await service.list_alerts(AlertFilter(sites=["other-site"]))] == [
        "not_up"
    ]
    assert len(await service.list_alerts(AlertFilter(since=T0 + 5))) == 2
    assert len(await service.list_alerts(AlertFilter(kinds=["sos"], status=["open"]))) == 1
    await service.acknowledge(2, by="op")
    assert [a.kind for a in await service.queue()][-1] == "sos"  # acknowledged go last


async def test_change_feed_replays_and_streams(any_store: AlertStore) -> None:
    clock = FakeClock(T0)
    pipeline, service = _setup(any_store, clock)
    assert await service.last_seq() == 0
    await pipeline.handle_transitions([transition(AlertKind.SOS, T0)])
    await service.acknowledge(1, by="op")
    everything = await service.changes_since(0)
    seqs = [i.seq for i in everything]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert [i.entry.action for i in everything] == ["raised", "acknowledged"]
    assert everything[0].alert.status == "acknowledged"  # the alert as it is now
    last = everything[-1].seq
    assert await service.changes_since(last) == []

    # A reconnecting client gives its last seq and gets exactly what it missed, then
    # live changes as they happen.
    stream = service.subscribe(since=last)
    got: list[str] = []

    async def consume() -> None:
        async for item in stream:
            got.append(item.entry.action)
            if len(got) == 2:
                return

    task = asyncio.create_task(consume())
    await service.add_note(1, "note", by="op")
    await service.resolve(1, "false_alarm", None, by="op")
    await asyncio.wait_for(task, 5)
    assert got == ["note", "resolved"]
    assert (await service.changes_since(last))[0].to_dict()["change"]["action"] == "note"


def test_service_docstring_lists_the_public_api() -> None:
    doc = AlertService.__module__
    import importlib

    text_ = importlib.import_module(doc).__doc__ or ""
    for name in ("list_alerts", "get_alert", "acknowledge", "assign", "add_note", "resolve"):
        assert name in text_ and hasattr(AlertService, name)
    assert "changes_since" in text_ and "subscribe" in text_


async def test_escalation_and_notification_log_on_both_databases(
    any_store: AlertStore, http_receiver: HttpReceiver
) -> None:
    rx = http_receiver
    clock = FakeClock(T0)
    index = registry([rx.url("daughter")], [rx.url("son")])
    pipeline, service = make_pipeline(any_store, index, clock, policies([rx.url("centre")]))
    await pipeline.handle_transitions(
        [transition(AlertKind.SOS, T0, resident=f"r{i}") for i in range(20)]
    )
    await pipeline.tick()
    clock.set(T0 + 60)
    await pipeline.tick()
    await pipeline.tick()
    # Site-wide contacts? No: the daughter and son look after zhang-xiuying only, so the
    # twenty alerts of other residents reach the centre alone.
    assert len(rx.to("centre")) == 20 and rx.to("daughter") == []
    await pipeline.handle_transitions([transition(AlertKind.SOS, T0 + 61)])
    clock.set(T0 + 61)
    await pipeline.tick()
    clock.set(T0 + 121)
    await pipeline.tick()
    assert len(rx.to("daughter")) == 1 and len(rx.to("son")) == 1
    log = await any_store.notifications()
    assert len(log) == 23 and {n.state for n in log} == {"sent"}
    await service.acknowledge(21, by="op")
    clock.set(T0 + 1000)
    await pipeline.tick()
    assert len(rx.to("daughter")) == 1


async def test_odd_detail_values_are_kept_as_text(any_store: AlertStore) -> None:
    from datetime import UTC, datetime

    clock = FakeClock(T0)
    pipeline, service = _setup(any_store, clock)
    when = datetime(2026, 11, 23, tzinfo=UTC)
    await pipeline.handle_transitions([transition(AlertKind.VITALS, T0, since=when, rate=72.5)])
    await pipeline.handle_transitions(
        [transition(AlertKind.VITALS, T0 + 1, TransitionAction.UPDATE, rate=float("nan"))]
    )
    [alert] = await service.list_alerts()
    assert alert.details["since"] == str(when) and alert.details["rate"] == "nan"


async def test_unresolved_alerts_are_counted_per_site(any_store: AlertStore) -> None:
    """The map's open-alert count per site: open and acknowledged alerts, not resolved."""
    clock = FakeClock(T0 + 5)
    pipeline, service = _setup(any_store, clock)
    await pipeline.handle_transitions(
        [
            transition(AlertKind.SOS, T0, site="home-a"),
            transition(AlertKind.BATHROOM_TOO_LONG, T0, site="home-a", room="bathroom"),
            transition(AlertKind.SOS, T0, site="home-b"),
            transition(AlertKind.SOS, T0, site="home-c"),
        ]
    )
    by_site = {a.site: a for a in await service.list_alerts() if a.kind == AlertKind.SOS}
    await service.acknowledge(by_site["home-b"].id, by="operator-1")
    await service.resolve(by_site["home-c"].id, "false_alarm", None, by="operator-1")
    assert await any_store.unresolved_by_site() == {"home-a": 2, "home-b": 1}
