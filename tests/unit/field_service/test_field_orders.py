"""Dispatch work orders on a fake clock: the lifecycle, the accept timeout that goes
back to the operator, the arrival promise, and a restart mid-order that resumes
without sending any notice twice. A real SQLite store; no sleeping."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import field_service.models  # noqa: F401  (registers the tables)
from eldercare.clock import FakeClock
from eldercare.db import Base, create_engine, session_factory
from eldercare.registry_model import Site
from field_service.lifecycle import OrderState, Step, StepRefused
from field_service.notices import deliver_pending
from field_service.orders import Notice, OrderStore, WorkOrder
from field_service.policy import DeadlineOverride, FieldPolicy
from field_service.responders import Responder, ResponderKind, propose
from field_service.timers import FieldTimers

T0 = 1_765_000_000.0
HOME = Site.model_validate(
    {
        "id": "hh-401",
        "kind": "home",
        "name": "张秀英家",
        "organisation": "滨州市/滨城区/市中街道/黄河社区",
        "residents": [{"id": "zhang-xiuying", "name": "张秀英"}],
    }
)
INSTITUTION = Site.model_validate(
    {
        "id": "yiyang",
        "kind": "institution",
        "name": "颐养院",
        "organisation": "滨州市/滨城区/颐养院",
        "residents": [{"id": "sun-lan", "name": "孙兰"}],
    }
)


class RecordingSink:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[tuple[str, str, int]] = []
        self.fail = fail

    async def deliver(self, notice: Notice, order: WorkOrder) -> None:
        if self.fail:
            raise ConnectionError("operator channel down")
        self.sent.append((notice.kind, order.id, notice.attempt))


@pytest.fixture
async def db_url(tmp_path: Path) -> AsyncIterator[str]:
    url = f"sqlite+aiosqlite:///{tmp_path}/field.db"
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    await engine.dispose()
    yield url


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[OrderStore]:
    engine = create_engine(db_url)
    yield OrderStore(session_factory(engine))
    await engine.dispose()


async def _dispatch(store: OrderStore, at: float, site: Site = HOME) -> WorkOrder:
    resident = site.residents[0].id
    return await store.dispatch(
        site=site, resident_id=resident, alert_id="a-1", requested_at=at - 60,
        responder="wang-grid", actor="op-bincheng", at=at,
    )  # fmt: skip


async def test_an_order_goes_from_dispatch_to_done_and_every_step_is_audited(
    store: OrderStore,
) -> None:
    order = await _dispatch(store, T0)
    assert order.state is OrderState.DISPATCHED
    assert order.accept_due == T0 + 300
    assert order.arrive_due == T0 - 60 + 1800  # the promise runs from the need
    for step, at, state in (
        (Step.ACCEPT, T0 + 40, OrderState.ACCEPTED),
        (Step.ON_THE_WAY, T0 + 50, OrderState.ON_THE_WAY),
        (Step.ARRIVE, T0 + 900, OrderState.ARRIVED),
    ):
        order = await store.step(order.id, step, actor="wang-grid", at=at)
        assert order.state is state
    done = await store.step(
        order.id, Step.DONE, actor="wang-grid", at=T0 + 1500,
        outcome="assisted_on_site", note="扶起，无外伤",
    )  # fmt: skip
    assert (done.state, done.outcome, done.note) == (
        OrderState.DONE,
        "assisted_on_site",
        "扶起，无外伤",
    )
    assert (done.accepted_at, done.on_the_way_at, done.arrived_at, done.closed_at) == (
        T0 + 40, T0 + 50, T0 + 900, T0 + 1500,
    )  # fmt: skip
    history = await store.history(order.id)
    assert [(e.event, e.actor, e.at) for e in history] == [
        ("dispatched", "op-bincheng", T0),
        ("accept", "wang-grid", T0 + 40),
        ("on_the_way", "wang-grid", T0 + 50),
        ("arrive", "wang-grid", T0 + 900),
        ("done", "wang-grid", T0 + 1500),
    ]
    assert history[3].details == {"within_promise": True}
    assert not done.is_open


async def test_steps_out_of_order_or_missing_parts_are_refused(store: OrderStore) -> None:
    order = await _dispatch(store, T0)
    with pytest.raises(StepRefused):
        await store.step(order.id, Step.ARRIVE, actor="wang-grid", at=T0 + 1)
    with pytest.raises(StepRefused, match="reason"):
        await store.step(order.id, Step.DECLINE, actor="wang-grid", at=T0 + 1, reason="  ")
    await store.step(order.id, Step.ACCEPT, actor="wang-grid", at=T0 + 2)
    await store.step(order.id, Step.ARRIVE, actor="wang-grid", at=T0 + 3)
    with pytest.raises(StepRefused, match="outcome"):
        await store.step(order.id, Step.DONE, actor="wang-grid", at=T0 + 4, outcome="auto_cleared")
    assert (await store.get(order.id)).state is OrderState.ARRIVED  # type: ignore[union-attr]


async def test_unaccepted_in_five_minutes_goes_back_to_the_operator_once(
    store: OrderStore,
) -> None:
    clock = FakeClock(T0)
    sink = RecordingSink()
    timers = FieldTimers(store, sink, clock)
    order = await _dispatch(store, T0)
    clock.advance(299)
    assert await timers.tick() == []
    clock.advance(2)
    fired = await timers.tick()
    assert [(n.kind, n.at) for n in fired] == [("accept_overdue", T0 + 300)]  # its due time
    assert sink.sent == [("accept_overdue", order.id, 1)]
    clock.advance(60)
    assert await timers.tick() == []
    assert sink.sent == [("accept_overdue", order.id, 1)]
    overdue = await store.get(order.id)
    assert overdue is not None and overdue.accept_overdue and overdue.state is OrderState.DISPATCHED

    # The operator sends someone else: a fresh five minutes, a second notice if missed again.
    again = await store.step(
        order.id, Step.REDISPATCH, actor="op-bincheng", at=clock.now(), responder="li-volunteer"
    )
    assert (again.responder, again.attempt, again.accept_overdue) == ("li-volunteer", 2, False)
    assert again.accept_due == clock.now() + 300
    clock.advance(301)
    await timers.tick()
    assert sink.sent == [("accept_overdue", order.id, 1), ("accept_overdue", order.id, 2)]


async def test_a_decline_returns_the_order_to_the_operator_with_the_reason(
    store: OrderStore,
) -> None:
    order = await _dispatch(store, T0)
    declined = await store.step(
        order.id, Step.DECLINE, actor="wang-grid", at=T0 + 30, reason="在另一户处置中"
    )
    assert (declined.state, declined.decline_reason) == (OrderState.DECLINED, "在另一户处置中")
    sink = RecordingSink()
    await deliver_pending(store, sink, T0 + 31)
    assert sink.sent == [("declined", order.id, 1)]
    # A declined order is not "unaccepted": no accept-timeout notice on top.
    await store.advance(T0 + 400)
    await deliver_pending(store, sink, T0 + 400)
    assert sink.sent == [("declined", order.id, 1)]


async def test_not_at_the_door_within_the_promise_is_flagged_late(store: OrderStore) -> None:
    order = await _dispatch(store, T0)
    await store.step(order.id, Step.ACCEPT, actor="wang-grid", at=T0 + 20)
    assert await store.advance(T0 - 60 + 1799) == []
    fired = await store.advance(T0 + 3600)
    assert [(n.kind, n.at) for n in fired] == [("late", T0 - 60 + 1800)]
    late = await store.get(order.id)
    assert late is not None and late.late
    arrived = await store.step(order.id, Step.ARRIVE, actor="wang-grid", at=T0 + 3700)
    assert arrived.late and (await store.history(order.id))[-1].details == {"within_promise": False}


async def test_arrival_in_time_is_never_flagged(store: OrderStore) -> None:
    order = await _dispatch(store, T0)
    await store.step(order.id, Step.ACCEPT, actor="wang-grid", at=T0 + 20)
    await store.step(order.id, Step.ARRIVE, actor="wang-grid", at=T0 + 600)
    assert await store.advance(T0 + 86400) == []


async def test_a_restart_mid_order_resumes_without_duplicate_notices(db_url: str) -> None:
    clock = FakeClock(T0)
    sink = RecordingSink()
    engine = create_engine(db_url)
    first = OrderStore(session_factory(engine))
    order = await _dispatch(first, T0)
    clock.advance(400)
    await FieldTimers(first, sink, clock).tick()
    assert sink.sent == [("accept_overdue", order.id, 1)]
    await engine.dispose()  # the process stops

    engine = create_engine(db_url)  # and starts again, over the same store
    second = OrderStore(session_factory(engine))
    timers = FieldTimers(second, sink, clock)
    assert await timers.tick() == []
    assert sink.sent == [("accept_overdue", order.id, 1)]
    await second.step(order.id, Step.ACCEPT, actor="wang-grid", at=clock.now())
    clock.set(T0 - 60 + 1800)
    await timers.tick()
    assert sink.sent == [("accept_overdue", order.id, 1), ("late", order.id, 1)]
    assert len(await second.all_notices()) == 2
    await engine.dispose()


async def test_a_notice_whose_delivery_failed_is_sent_after_the_restart(db_url: str) -> None:
    engine = create_engine(db_url)
    store = OrderStore(session_factory(engine))
    order = await _dispatch(store, T0)
    down = RecordingSink(fail=True)
    await FieldTimers(store, down, FakeClock(T0 + 400)).tick()
    assert down.sent == []
    await engine.dispose()

    engine = create_engine(db_url)
    store = OrderStore(session_factory(engine))
    up = RecordingSink()
    await FieldTimers(store, up, FakeClock(T0 + 410)).tick()
    await FieldTimers(store, up, FakeClock(T0 + 420)).tick()
    assert up.sent == [("accept_overdue", order.id, 1)]
    await engine.dispose()


async def test_an_institution_has_its_own_promise_and_an_organisation_may_set_one(
    db_url: str,
) -> None:
    policy = FieldPolicy(
        overrides=[DeadlineOverride(organisation="滨州市/滨城区/市中街道", arrival_promise_s=900)]
    )
    engine = create_engine(db_url)
    store = OrderStore(session_factory(engine), policy)
    home = await _dispatch(store, T0)
    nursing = await _dispatch(store, T0, INSTITUTION)
    assert home.arrive_due == T0 - 60 + 900
    assert nursing.arrive_due == T0 - 60 + 600
    await engine.dispose()


def test_on_duty_responders_of_the_sites_community_are_proposed_first() -> None:
    def r(user: str, area: str, on_duty: bool, active: bool = True) -> Responder:
        return Responder(
            user, user, ResponderKind.GRID_WORKER, tuple(area.split("/")), None, on_duty, active
        )

    district = r("district-nurse", "滨州市/滨城区", True)
    community_off = r("community-off", "滨州市/滨城区/市中街道/黄河社区", False)
    community_on = r("community-on", "滨州市/滨城区/市中街道/黄河社区", True)
    elsewhere = r("zhanhua", "滨州市/沾化区", True)
    gone = r("gone", "滨州市/滨城区/市中街道/黄河社区", True, active=False)
    proposed = propose([district, community_off, elsewhere, community_on, gone], HOME.org_path)
    assert [p.username for p in proposed] == ["community-on", "district-nurse", "community-off"]


async def test_the_policy_is_data_from_a_file_and_a_bad_file_says_so(tmp_path: Path) -> None:
    path = tmp_path / "field-policy.yaml"
    path.write_text(
        "accept_timeout_s: 120\n"
        "arrival_promise_s: {home: 900, institution: 300}\n"
        "overrides: [{organisation: 滨州市/滨城区/颐养院, arrival_promise_s: 180}]\n",
        encoding="utf-8",
    )
    policy = FieldPolicy.load(path)
    assert policy.accept_timeout(HOME.org_path) == 120
    assert policy.arrival_promise("home", HOME.org_path) == 900
    assert policy.arrival_promise("institution", INSTITUTION.org_path) == 180
    assert FieldPolicy.load(None) == FieldPolicy()
    path.write_text("accept_timeout_s: -5\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"field-policy\.yaml"):
        FieldPolicy.load(path)
