"""A responder whose phone page is closed learns of a new order: on a dispatch, and on a
service request sent to them, by SMS through the Aliyun SMS API (the local stand-in of
tests/helpers/china_providers.py, signatures checked) and by their own Apprise URL (a
real HTTP receiver), with the order's link. Each channel once per assignment, across
ticks and restarts; a failed channel is retried alone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from eldercare.clock import FakeClock
from eldercare.settings import Settings
from field_service.responder_messages import messages_of
from gateway.field_context import FieldContext
from tests.helpers.alerts import HttpReceiver
from tests.helpers.china_providers import ALIYUN_KEY_ID, ALIYUN_SECRET, FakeChinaProviders
from tests.helpers.field import add_responders
from tests.helpers.gateway import Gateway, build_gateway, db_url, in_process_client, login

pytestmark = pytest.mark.asyncio(loop_scope="session")
T0 = 1_770_000_000.0
PUBLIC = "https://care.example.org"


def sms_template(p: FakeChinaProviders) -> str:
    sign = quote("养老平台")
    return f"aliyunsms://{ALIYUN_KEY_ID}:{ALIYUN_SECRET}@SMS_1/{{phone}}?sign={sign}&{p.url_args()}"


def _settings(tmp_path: Path, providers: FakeChinaProviders) -> Settings:
    return Settings(
        run_dir=tmp_path / "run",
        database_url=db_url(tmp_path),
        public_url=PUBLIC,
        field_responder_sms_url=sms_template(providers),
    )


@pytest.fixture
async def gw(
    tmp_path: Path, providers: FakeChinaProviders
) -> AsyncIterator[tuple[Gateway, httpx.AsyncClient, FakeClock]]:
    clock = FakeClock(T0)
    gateway = await build_gateway(_settings(tmp_path, providers), clock)
    await add_responders(gateway.sessions, clock.now())
    async with in_process_client(gateway) as client:
        field: FieldContext = gateway.app.state.field
        await field.timers.stop()  # the test drives the ticks
        yield gateway, client, clock


async def _tick(gateway: Gateway) -> None:
    field: FieldContext = gateway.app.state.field
    await field.timers.tick()


async def test_a_dispatch_is_sent_to_the_responder_once_by_sms_and_apprise(
    gw: tuple[Gateway, httpx.AsyncClient, FakeClock],
    providers: FakeChinaProviders,
    http_receiver: HttpReceiver,
    tmp_path: Path,
) -> None:
    gateway, client, clock = gw
    admin = await login(client, "admin1")
    resp = await client.put(
        "/api/field/responders/wang-grid",
        json={"name": "王强", "kind": "grid_worker", "area": "滨州市/滨城区/市中街道/黄河社区",
              "phone": "13500000002", "on_duty": True, "notify": [http_receiver.url("wang")]},
        headers=admin,
    )  # fmt: skip
    assert resp.status_code == 200, resp.text
    assert resp.json()["notify_channels"] == 1 and "notify" not in resp.json()  # no secrets
    op = await login(client, "op-bincheng")
    resp = await client.post(
        "/api/field/orders",
        json={"responder": "wang-grid", "site_id": "hh-401", "resident_id": "zhang-xiuying"},
        headers=op,
    )
    assert resp.status_code == 201, resp.text
    order_id = resp.json()["id"]
    link = f"{PUBLIC}/field#order={order_id}"
    http_receiver.status = 500  # the responder's own channel is down at first
    await _tick(gateway)
    [sms] = providers.of("SendSms")
    assert sms.params["PhoneNumbers"] == "13500000002"
    assert order_id in sms.params["TemplateParam"]  # the link itself is too long for a variable
    assert "张秀英" in sms.params["TemplateParam"]
    [failed] = await messages_of(gateway.sessions, order_id)
    assert failed.delivered_at is None and failed.last_error
    # The receiver is back: the next tick sends it there, and not the SMS again.
    http_receiver.status = 200
    clock.advance(5)
    await _tick(gateway)
    assert len(providers.of("SendSms")) == 1
    got = [r for r in http_receiver.to("wang")]
    assert len(got) == 2  # the refused try and the delivered one
    assert link in got[-1].doc["message"] and "张秀英" in got[-1].doc["message"]
    [row] = await messages_of(gateway.sessions, order_id)
    assert row.delivered_at == T0 + 5
    # More ticks, and a restarted gateway on the same store: nothing sent again.
    await _tick(gateway)
    again = await build_gateway(_settings(tmp_path, providers), clock, with_accounts=False)
    try:
        await again.app.state.field.timers.tick()
    finally:
        await again.engine.dispose()
    assert len(providers.of("SendSms")) == 1 and len(http_receiver.to("wang")) == 2


async def test_a_service_request_sent_to_a_responder_tells_them_and_a_redispatch_tells_the_next(
    gw: tuple[Gateway, httpx.AsyncClient, FakeClock], providers: FakeChinaProviders
) -> None:
    gateway, client, clock = gw
    family = await login(client, "family-zhang")
    resp = await client.post(
        "/api/field/requests",
        json={"site_id": "hh-401", "resident_id": "zhang-xiuying", "kind": "meal"},
        headers=family,
    )
    order_id = resp.json()["order_id"]
    await _tick(gateway)
    assert providers.of("SendSms") == []  # a request waits for the operator: nobody yet
    op = await login(client, "op-bincheng")
    for who in ("wang-grid", "li-volunteer"):
        clock.advance(60)
        resp = await client.post(
            f"/api/field/orders/{order_id}/redispatch", json={"responder": who}, headers=op
        )
        assert resp.status_code == 200, resp.text
        await _tick(gateway)
    sent = providers.of("SendSms")
    assert len(sent) == 2 and all("助餐" in c.params["TemplateParam"] for c in sent)
    rows = await messages_of(gateway.sessions, order_id)
    assert [(r.responder, r.attempt, r.delivered_at is not None) for r in rows] == [
        ("wang-grid", 1, True),
        ("li-volunteer", 2, True),
    ]
