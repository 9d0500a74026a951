"""The field-service API against a real SQLite store and the real alert store: dispatch
from an alert, the responder's steps, and who may see what (a responder only their
orders and their area's residents, a family only their relative's helpers, an operator
only their subtree). Deadlines are driven by a fake clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from eldercare.clock import FakeClock
from eldercare.settings import Settings
from gateway.field_context import FieldContext
from tests.helpers.field import add_responders
from tests.helpers.gateway import (
    Gateway,
    build_gateway,
    db_url,
    in_process_client,
    login,
    sos,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")
T0 = 1_770_000_000.0
GW = tuple[Gateway, httpx.AsyncClient, FakeClock]


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[GW]:
    clock = FakeClock(T0)
    settings = Settings(run_dir=tmp_path / "run", database_url=db_url(tmp_path))
    gateway = await build_gateway(settings, clock)
    await add_responders(gateway.sessions, clock.now())
    await gateway.store.apply_transitions(
        [
            sos("hh-401", "zhang-xiuying", clock.now() - 30),
            sos("zh-12", "liu-jianguo", clock.now() - 20),
            sos("yiyang", "sun-lan", clock.now() - 10, room="r301"),
        ],
        clock.now(),
    )
    async with in_process_client(gateway) as client:
        yield gateway, client, clock


def field_of(gateway: Gateway) -> FieldContext:
    field: FieldContext = gateway.app.state.field
    return field


async def _alert_id(client: httpx.AsyncClient, headers: dict[str, str], site: str) -> str:
    resp = await client.get("/api/alerts", headers=headers)
    return str(next(a["id"] for a in resp.json() if a["site_id"] == site))


async def _dispatch(
    client: httpx.AsyncClient, op: dict[str, str], site: str = "hh-401", who: str = "wang-grid"
) -> dict[str, object]:
    alert_id = await _alert_id(client, op, site)
    resp = await client.post(
        "/api/field/orders", json={"alert_id": alert_id, "responder": who}, headers=op
    )
    assert resp.status_code == 201, resp.text
    body: dict[str, object] = resp.json()
    return body


async def test_the_site_communitys_on_duty_responders_are_proposed_first(gw: GW) -> None:
    _, client, _ = gw
    op = await login(client, "op-bincheng")
    resp = await client.get("/api/field/responders", params={"site_id": "hh-401"}, headers=op)
    assert [r["username"] for r in resp.json()] == ["wang-grid", "li-volunteer"]
    resp = await client.get("/api/field/responders", params={"site_id": "zh-12"}, headers=op)
    assert resp.status_code == 404  # not in this operator's subtree
    listed = {r["username"] for r in (await client.get("/api/field/responders", headers=op)).json()}
    assert listed == {"wang-grid", "li-volunteer", "chen-nurse"}


async def test_dispatch_accept_on_the_way_arrive_done(gw: GW) -> None:
    _, client, clock = gw
    op = await login(client, "op-bincheng")
    order = await _dispatch(client, op)
    assert order["state"] == "dispatched"
    assert order["responder_name"] == "王强"
    assert order["requested_at"] == T0 - 30  # the alert's event time
    assert order["arrive_due"] == T0 - 30 + 1800
    oid = order["id"]
    wang = await login(client, "wang-grid")
    mine = (await client.get("/api/field/orders", params={"open": True}, headers=wang)).json()
    assert [o["id"] for o in mine] == [oid]
    for step, state in (
        ("accept", "accepted"),
        ("on_the_way", "on_the_way"),
        ("arrive", "arrived"),
    ):
        clock.advance(60)
        resp = await client.post(f"/api/field/orders/{oid}/{step}", json={}, headers=wang)
        assert resp.status_code == 200, resp.text
        assert resp.json()["state"] == state
    resp = await client.post(
        f"/api/field/orders/{oid}/done", json={"outcome": "nope"}, headers=wang
    )
    assert resp.status_code == 422
    resp = await client.post(
        f"/api/field/orders/{oid}/done",
        json={"outcome": "assisted_on_site", "note": "扶起，无外伤"},
        headers=wang,
    )
    assert resp.json()["state"] == "done"
    resp = await client.post(f"/api/field/orders/{oid}/accept", json={}, headers=wang)
    assert resp.status_code == 409
    card = (await client.get(f"/api/field/orders/{oid}", headers=op)).json()
    assert [(h["event"], h["actor"]) for h in card["history"]] == [
        ("dispatched", "op-bincheng"),
        ("accept", "wang-grid"),
        ("on_the_way", "wang-grid"),
        ("arrive", "wang-grid"),
        ("done", "wang-grid"),
    ]


async def test_the_responder_card_has_what_is_needed_at_the_door(gw: GW) -> None:
    _, client, _ = gw
    op = await login(client, "op-bincheng")
    oid = (await _dispatch(client, op))["id"]
    wang = await login(client, "wang-grid")
    card = (await client.get(f"/api/field/orders/{oid}", headers=wang)).json()
    assert card["resident"]["name"] == "张秀英"
    assert card["resident"]["address"] == "黄河社区 3-2-401"
    assert card["resident"]["phone"] == "13800000001"
    assert card["resident"]["flags"] == ["dementia", "hypertension"]
    assert [c["phone"] for c in card["contacts"]][:1] == ["13900000002"]
    assert card["alert"]["kind"] == "sos"
    assert card["alert"]["evidence"][0]["phrases"][0]["key"] == "sos_pressed"


async def test_a_responder_sees_only_their_own_orders(gw: GW) -> None:
    _, client, _ = gw
    op = await login(client, "op-bincheng")
    oid = (await _dispatch(client, op))["id"]
    li = await login(client, "li-volunteer")
    assert (await client.get("/api/field/orders", headers=li)).json() == []
    assert (await client.get(f"/api/field/orders/{oid}", headers=li)).status_code == 404
    resp = await client.post(f"/api/field/orders/{oid}/accept", json={}, headers=li)
    assert resp.status_code == 404
    # Responders do not work the alert queue: alerts reach them through their orders.
    assert (await client.get("/api/alerts", headers=li)).json() == []
    # The operator cannot take the responder's steps, nor the responder the operator's.
    assert (
        await client.post(f"/api/field/orders/{oid}/accept", json={}, headers=op)
    ).status_code == 403
    wang = await login(client, "wang-grid")
    resp = await client.post(
        f"/api/field/orders/{oid}/redispatch", json={"responder": "li-volunteer"}, headers=wang
    )
    assert resp.status_code == 403


async def test_a_responder_sees_their_areas_residents_only(gw: GW) -> None:
    _, client, _ = gw
    wang = await login(client, "wang-grid")
    assert (await client.get("/api/residents/zhang-xiuying", headers=wang)).status_code == 200
    assert (await client.get("/api/residents/sun-lan", headers=wang)).status_code == 404
    assert (await client.get("/api/residents/liu-jianguo", headers=wang)).status_code == 404


async def test_an_operator_works_only_their_subtree(gw: GW) -> None:
    _, client, _ = gw
    op = await login(client, "op-bincheng")
    oid = (await _dispatch(client, op))["id"]
    other = await login(client, "op-zhanhua")
    assert (await client.get(f"/api/field/orders/{oid}", headers=other)).status_code == 404
    assert (await client.get("/api/field/orders", headers=other)).json() == []
    # Dispatch for an alert outside the subtree, or someone whose area does not cover it.
    bincheng_alert = await _alert_id(client, op, "hh-401")
    resp = await client.post(
        "/api/field/orders",
        json={"alert_id": bincheng_alert, "responder": "liu-zhanhua"},
        headers=other,
    )
    assert resp.status_code == 404
    resp = await client.post(
        "/api/field/orders",
        json={"alert_id": bincheng_alert, "responder": "liu-zhanhua"},
        headers=op,
    )
    assert resp.status_code == 422
    resp = await client.post(
        "/api/field/orders",
        json={"alert_id": bincheng_alert, "responder": "chen-nurse"},  # the institution's
        headers=op,
    )
    assert resp.status_code == 422


async def test_a_family_sees_only_their_relatives_helper(gw: GW) -> None:
    _, client, clock = gw
    op = await login(client, "op-bincheng")
    oid = (await _dispatch(client, op))["id"]
    wang = await login(client, "wang-grid")
    await client.post(f"/api/field/orders/{oid}/accept", json={}, headers=wang)
    clock.advance(600)
    await client.post(f"/api/field/orders/{oid}/arrive", json={}, headers=wang)
    family = await login(client, "family-zhang")
    resp = await client.get(
        "/api/field/sites/hh-401/residents/zhang-xiuying/helpers", headers=family
    )
    [helper] = resp.json()
    assert (helper["state"], helper["responder_name"], helper["arrived_at"]) == (
        "arrived",
        "王强",
        T0 + 600,
    )
    assert "note" not in helper and "phone" not in helper
    resp = await client.get("/api/field/sites/zh-12/residents/liu-jianguo/helpers", headers=family)
    assert resp.status_code == 404
    assert (await client.get("/api/field/orders", headers=family)).status_code == 403
    assert (await client.get(f"/api/field/orders/{oid}", headers=family)).status_code == 404


async def test_unaccepted_dispatch_goes_back_to_the_operator_on_the_alert(gw: GW) -> None:
    gateway, client, clock = gw
    op = await login(client, "op-bincheng")
    order = await _dispatch(client, op)
    clock.advance(301)
    fired = await field_of(gateway).timers.tick()
    assert [n.kind for n in fired] == ["accept_overdue"]
    await field_of(gateway).timers.tick()  # nothing new, nothing sent twice
    detail = (await client.get(f"/api/alerts/{order['alert_id']}", headers=op)).json()
    notes = [h for h in detail["history"] if h["event"] == "note"]
    assert len(notes) == 1
    assert notes[0]["actor"] == "field-service" and "王强" not in notes[0]["text"]
    assert "wang-grid" in notes[0]["text"]
    listed = (await client.get("/api/field/orders", headers=op)).json()
    assert listed[0]["accept_overdue"] is True
    # The operator sends someone else.
    resp = await client.post(
        f"/api/field/orders/{order['id']}/redispatch",
        json={"responder": "li-volunteer"},
        headers=op,
    )
    assert resp.status_code == 200
    assert (resp.json()["responder"], resp.json()["accept_overdue"]) == ("li-volunteer", False)


async def test_a_decline_reaches_the_operator_with_its_reason(gw: GW) -> None:
    gateway, client, _ = gw
    op = await login(client, "op-bincheng")
    order = await _dispatch(client, op)
    wang = await login(client, "wang-grid")
    resp = await client.post(f"/api/field/orders/{order['id']}/decline", json={}, headers=wang)
    assert resp.status_code == 409  # a reason is needed
    resp = await client.post(
        f"/api/field/orders/{order['id']}/decline",
        json={"reason": "正在另一户处置"},
        headers=wang,
    )
    assert resp.json()["state"] == "declined"
    await field_of(gateway).timers.tick()
    detail = (await client.get(f"/api/alerts/{order['alert_id']}", headers=op)).json()
    assert any("正在另一户处置" in (h["text"] or "") for h in detail["history"])


async def test_a_gateway_restarted_mid_order_sends_no_notice_twice(gw: GW) -> None:
    from gateway.alert_adapter import PipelineAlertService
    from gateway.app import create_app

    gateway, client, clock = gw
    op = await login(client, "op-bincheng")
    order = await _dispatch(client, op)
    clock.advance(301)
    await field_of(gateway).timers.tick()
    # Another gateway process over the same store (a restart, or a second replica).
    settings = Settings(run_dir=Path("/nonexistent"), database_url="sqlite://")
    again = create_app(
        settings,
        sessions=gateway.sessions,
        index_provider=gateway.index,
        alert_service=PipelineAlertService(gateway.service),
        influx=None,
        clock=clock,
    )
    field: FieldContext = again.state.field
    assert await field.timers.tick() == []
    clock.advance(3600)  # past the promise too: that one is new, and fires once
    assert [n.kind for n in await field.timers.tick()] == ["late"]
    assert await field_of(gateway).timers.tick() == []
    detail = (await client.get(f"/api/alerts/{order['alert_id']}", headers=op)).json()
    notes = [h["text"] for h in detail["history"] if h["event"] == "note"]
    assert len(notes) == 2 and "未按时到达" in notes[1]
