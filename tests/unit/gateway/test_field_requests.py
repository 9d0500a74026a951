"""Service requests through the API on a real SQLite store with a fake clock: a family
asks for a meal for their own relative only, the request waits for the operator (and
goes back as a notice when not dispatched in time), follows the dispatch path, and
the family sees how it ended."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from eldercare.clock import FakeClock
from eldercare.settings import Settings
from gateway.field_context import FieldContext
from tests.helpers.field import add_responders
from tests.helpers.gateway import Gateway, build_gateway, db_url, in_process_client, login

pytestmark = pytest.mark.asyncio(loop_scope="session")
T0 = 1_770_000_000.0
GW = tuple[Gateway, httpx.AsyncClient, FakeClock]
MEAL = {"site_id": "hh-401", "resident_id": "zhang-xiuying", "kind": "meal", "note": "午饭"}


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[GW]:
    clock = FakeClock(T0)
    settings = Settings(run_dir=tmp_path / "run", database_url=db_url(tmp_path))
    gateway = await build_gateway(settings, clock)
    await add_responders(gateway.sessions, clock.now())
    async with in_process_client(gateway) as client:
        yield gateway, client, clock


async def test_a_family_request_is_dispatched_done_and_seen_by_the_family(gw: GW) -> None:
    _, client, clock = gw
    family = await login(client, "family-zhang")
    resp = await client.post("/api/field/requests", json=MEAL, headers=family)
    assert resp.status_code == 201, resp.text
    assert (resp.json()["state"], resp.json()["request_kind"]) == ("requested", "meal")
    oid = resp.json()["order_id"]
    op = await login(client, "op-bincheng")
    [order] = (await client.get("/api/field/orders", params={"open": True}, headers=op)).json()
    assert (order["id"], order["requested_by"], order["request_note"]) == (
        oid,
        "family-zhang",
        "午饭",
    )
    assert order["arrive_due"] == T0 + 2 * 3600  # a meal: within two hours
    wang = await login(client, "wang-grid")
    assert (await client.get("/api/field/orders", headers=wang)).json() == []  # not yet his
    clock.advance(600)
    resp = await client.post(
        f"/api/field/orders/{oid}/redispatch", json={"responder": "wang-grid"}, headers=op
    )
    assert resp.json()["state"] == "dispatched"
    for step in ("accept", "on_the_way", "arrive"):
        clock.advance(300)
        await client.post(f"/api/field/orders/{oid}/{step}", json={}, headers=wang)
    await client.post(
        f"/api/field/orders/{oid}/done", json={"outcome": "assisted_on_site"}, headers=wang
    )
    [helper] = (
        await client.get("/api/field/sites/hh-401/residents/zhang-xiuying/helpers", headers=family)
    ).json()
    assert (helper["kind"], helper["state"], helper["outcome"]) == (
        "service_request",
        "done",
        "assisted_on_site",
    )
    assert helper["responder_name"] == "王强"


async def test_a_family_cannot_ask_for_someone_elses_relative(gw: GW) -> None:
    _, client, _ = gw
    family = await login(client, "family-zhang")
    other = {**MEAL, "site_id": "zh-12", "resident_id": "liu-jianguo"}
    assert (await client.post("/api/field/requests", json=other, headers=family)).status_code == 404
    bad = {**MEAL, "kind": "massage"}
    assert (await client.post("/api/field/requests", json=bad, headers=family)).status_code == 422
    wang = await login(client, "wang-grid")
    assert (await client.post("/api/field/requests", json=MEAL, headers=wang)).status_code == 403
    op_zh = await login(client, "op-zhanhua")
    assert (await client.post("/api/field/requests", json=MEAL, headers=op_zh)).status_code == 404


async def test_a_request_not_dispatched_in_30_minutes_is_a_notice_once(gw: GW) -> None:
    gateway, client, clock = gw
    op = await login(client, "op-bincheng")
    resp = await client.post("/api/field/requests", json={**MEAL, "kind": "repair"}, headers=op)
    assert resp.status_code == 201
    field: FieldContext = gateway.app.state.field
    clock.advance(1799)
    assert await field.timers.tick() == []
    clock.advance(2)
    assert [n.kind for n in await field.timers.tick()] == ["accept_overdue"]
    assert await field.timers.tick() == []
    [order] = (await client.get("/api/field/orders", headers=op)).json()
    assert order["accept_overdue"] is True and order["arrive_due"] == T0 + 48 * 3600
