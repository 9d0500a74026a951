"""The simulated field people against the real gateway (in process, real SQLite, real
alert store, fake clock): the operator stand-in dispatches an SOS, the responder
accepts, travels for a time that follows the distance, arrives and closes it, a family
request goes the same way, visits are logged or skipped; the platform's record agrees
with the ground truth."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from device_sim.field_agents import (
    FamilyAgent,
    FieldAgents,
    OperatorAgent,
    ResponderAgent,
    Truth,
    check_truth,
    distance_km,
    login,
    travel_s,
)
from eldercare.clock import FakeClock
from eldercare.settings import Settings
from field_service.visit_store import put_category
from field_service.visits import VisitCategory, VisitPeriod
from tests.helpers.field import add_responders
from tests.helpers.gateway import PASSWORD, REGISTRY, Gateway, build_gateway, db_url, sos

pytestmark = pytest.mark.asyncio(loop_scope="session")
T0 = 1_770_000_000.0
SITES = {s["id"]: s for s in REGISTRY["sites"]}  # type: ignore[index]
BASE = (37.39, 117.99)  # the community office, ~2 km from 黄河社区 3-2-401


async def test_travel_time_follows_the_distance() -> None:
    rng = random.Random(1)
    near = [travel_s(BASE, (37.385, 117.985), rng) for _ in range(50)]
    far = [travel_s(BASE, (37.30, 117.90), rng) for _ in range(50)]
    assert distance_km(BASE, (37.30, 117.90)) == pytest.approx(12.5, abs=0.5)
    assert max(near) < 10 * 60 < min(far)  # a few minutes next door; over an hour across town
    assert all(
        60 <= t - distance_km(BASE, (37.385, 117.985)) * 1.3 / 15 * 3600 <= 180 for t in near
    )


@pytest.fixture
async def world(
    tmp_path: Path,
) -> AsyncIterator[tuple[Gateway, FakeClock, dict[str, httpx.AsyncClient]]]:
    clock = FakeClock(T0)
    settings = Settings(run_dir=tmp_path / "run", database_url=db_url(tmp_path))
    gateway = await build_gateway(settings, clock)
    await add_responders(gateway.sessions, clock.now())
    await put_category(
        gateway.sessions,
        VisitCategory("dementia", (), VisitPeriod.MONTH, flag="dementia"), clock.now(),
    )  # fmt: skip
    transport = httpx.ASGITransport(app=gateway.app)
    clients: dict[str, httpx.AsyncClient] = {}
    async with gateway.app.router.lifespan_context(gateway.app):
        for user in ("op-bincheng", "wang-grid", "li-volunteer", "family-zhang"):
            clients[user] = httpx.AsyncClient(transport=transport, base_url="http://testserver")
            await login(clients[user], user, PASSWORD)
        yield gateway, clock, clients
        for c in clients.values():
            await c.aclose()
    await gateway.engine.dispose()


def _agents(
    clients: dict[str, httpx.AsyncClient], clock: FakeClock, truth: Truth, decline: float
) -> FieldAgents:
    rng = random.Random(7)
    wang = ResponderAgent(
        clients["wang-grid"], "wang-grid", BASE, rng, truth, decline_share=decline,
        late_visit_share=0.0,
    )  # fmt: skip
    li = ResponderAgent(clients["li-volunteer"], "li-volunteer", BASE, rng, truth, decline_share=0)
    family = FamilyAgent(clients["family-zhang"], "hh-401", "zhang-xiuying", rng, truth, 3600)
    return FieldAgents(
        responders=[wang, li],
        families=[family],
        operator=OperatorAgent(clients["op-bincheng"], rng, truth),
        sites=SITES,
        now=clock.now,
    )  # fmt: skip


async def _run(gateway: Gateway, clock: FakeClock, agents: FieldAgents, minutes: int) -> None:
    for _ in range(minutes * 2):
        clock.advance(30)
        await agents.tick()
        await gateway.app.state.field.timers.tick()


@pytest.mark.slow  # 90 simulated minutes of agents over HTTP
async def test_the_loop_from_sos_to_the_door_matches_the_truth(world) -> None:  # type: ignore[no-untyped-def]
    gateway, clock, clients = world
    await gateway.store.apply_transitions([sos("hh-401", "zhang-xiuying", T0)], T0)
    truth = Truth(None)
    await _run(gateway, clock, _agents(clients, clock, truth, decline=0.0), minutes=90)

    op = clients["op-bincheng"]
    orders = (await op.get("/api/field/orders", params={"limit": 100})).json()
    sos_order = next(o for o in orders if o["alert_id"])
    assert (sos_order["state"], sos_order["responder"]) == ("done", "wang-grid")
    alert = (await op.get(f"/api/alerts/{sos_order['alert_id']}")).json()["alert"]
    assert (alert["handling"], alert["outcome"]) == ("resolved", sos_order["outcome"])
    planned = next(
        r
        for r in truth.records
        if r.get("order") == sos_order["id"] and r.get("planned") == "arrive"
    )
    # Taken at the first 30 s tick after the planned arrival.
    assert 0 <= sos_order["arrived_at"] - planned["at"] < 30
    assert sos_order["arrived_at"] <= sos_order["arrive_due"]  # ~2 km: well within 30 min
    requests = [o for o in orders if o["kind"] == "service_request"]
    assert requests and all(
        o["state"] in ("done", "arrived", "on_the_way", "accepted", "dispatched") for o in requests
    )
    assert any(o["state"] == "done" for o in requests)
    visits = (await op.get("/api/field/sites/hh-401/residents/zhang-xiuying/visits")).json()
    assert len(visits) == 1  # one visit this month, whoever of the area went first
    arrivals = {o["id"]: o["arrived_at"] for o in orders}
    checked = check_truth(truth.records, arrivals, clock.now(), tick_s=30)
    assert checked["planned"] >= 2 and checked["as_planned"] == checked["planned"], checked
    wrong = check_truth(truth.records, {k: None for k in arrivals}, clock.now(), tick_s=30)
    assert wrong["missing"] and wrong["as_planned"] == 0  # the check can fail
    took = [r for r in truth.records if r.get("took") not in (None, "none")]
    assert took and all(r["status"] in (200, 201) for r in took)


@pytest.mark.slow  # 60 simulated minutes of agents over HTTP
async def test_a_decline_is_re_dispatched_by_the_operator(world) -> None:  # type: ignore[no-untyped-def]
    gateway, clock, clients = world
    await gateway.store.apply_transitions([sos("hh-401", "zhang-xiuying", T0)], T0)
    truth = Truth(None)
    await _run(gateway, clock, _agents(clients, clock, truth, decline=1.0), minutes=60)
    op = clients["op-bincheng"]
    order = next(o for o in (await op.get("/api/field/orders")).json() if o["alert_id"])
    assert (order["responder"], order["attempt"], order["state"]) == ("li-volunteer", 2, "done")
    assert any(r.get("planned") == "decline" for r in truth.records)
