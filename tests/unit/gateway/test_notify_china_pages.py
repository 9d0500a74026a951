"""The operator's alert detail and the family portal say, for each notification,
which channel it went by and what became of it: here a night call to the daughter
that was not answered and an SMS that was delivered (real SDKs against the local
provider stand-in; the gateway in process over the same store)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from alerts.policy import EscalationPolicy, PolicySet
from eldercare.clock import FakeClock
from eldercare.domain import AlertKind
from eldercare.settings import Settings
from gateway.i18n import catalogue
from tests.helpers.alerts import make_pipeline, policies, transition
from tests.helpers.china_providers import (
    ALIYUN_KEY_ID,
    ALIYUN_SECRET,
    TENCENT_SECRET_ID,
    TENCENT_SECRET_KEY,
    FakeChinaProviders,
)
from tests.helpers.gateway import (
    Gateway,
    build_gateway,
    current_index,
    db_url,
    in_process_client,
    login,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")
T0 = 1_795_372_860.0  # 02:41 in Binzhou


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[tuple[Gateway, httpx.AsyncClient, FakeClock]]:
    clock = FakeClock(T0)
    settings = Settings(run_dir=tmp_path / "run", database_url=db_url(tmp_path))
    gateway = await build_gateway(settings, clock)
    async with in_process_client(gateway) as client:
        yield gateway, client, clock


async def test_pages_show_each_notifications_channel_and_outcome(
    gw: tuple[Gateway, httpx.AsyncClient, FakeClock], providers: FakeChinaProviders
) -> None:
    gateway, client, clock = gw
    providers.call_states["13900000002"] = "200005"  # she does not pick up
    args = providers.url_args()
    voice = f"aliyunvoice://{ALIYUN_KEY_ID}:{ALIYUN_SECRET}@TTS_1/13900000002?{args}"
    sms = f"aliyunsms://{ALIYUN_KEY_ID}:{ALIYUN_SECRET}@SMS_1/13900000002?sign=x&{args}"
    admin = await login(client, "admin1")
    contact = {
        "id": "daughter",
        "name": "李梅",
        "role": "family",
        "phone": "13900000002",
        "residents": ["zhang-xiuying"],
        "apprise": [voice, sms],
    }
    resp = await client.put("/api/sites/hh-401/contacts/daughter", json=contact, headers=admin)
    assert resp.status_code in (200, 201), resp.text
    await gateway.index.refresh()
    index = current_index(gateway.index)
    pipeline, _ = make_pipeline(gateway.store, index, clock, policies([]))
    try:
        await pipeline.handle_transitions([transition(AlertKind.SOS, T0, site="hh-401")])
        await pipeline.tick()
        clock.set(T0 + 60)  # the family step: a call and an SMS
        await pipeline.tick()
        clock.set(T0 + 90)  # the providers' receipts
        await pipeline.tick()
    finally:
        await pipeline.stop()

    [alert] = (await client.get("/api/alerts", headers=admin)).json()
    detail = (await client.get(f"/api/alerts/{alert['id']}", headers=admin)).json()
    seen = {(n["recipient"], n["channel"], n["outcome"]) for n in detail["notifications"]}
    assert seen == {("李梅", "voice", "not_answered"), ("李梅", "sms", "delivered")}

    family = await login(client, "family-zhang")
    view = (await client.get("/api/family/residents/zhang-xiuying", headers=family)).json()
    [item] = view["alerts"]
    assert {(n["channel"], n["outcome"]) for n in item["notifications"]} == {
        ("voice", "not_answered"),
        ("sms", "delivered"),
    }
    # Both languages name every channel and outcome the pages show.
    for lang in ("zh-CN", "en"):
        texts = catalogue()[lang]
        for n in detail["notifications"]:
            assert f"channel.{n['channel']}" in texts
            assert f"notify.outcome.{n['outcome']}" in texts
    assert catalogue()["zh-CN"]["notify.outcome.not_answered"] == "未接听"
    assert catalogue()["en"]["notify.outcome.digested"] == "sent in a digest"


async def test_tencent_voice_status_callback_moves_escalation_on(
    tmp_path: Path, providers: FakeChinaProviders
) -> None:
    clock = FakeClock(T0)
    settings = Settings(
        run_dir=tmp_path / "run",
        database_url=db_url(tmp_path),
        provider_callback_token="cb-secret-0123",
    )
    gateway = await build_gateway(settings, clock)
    args = providers.url_args()
    voice = (
        f"tencentvoice://{TENCENT_SECRET_ID}:{TENCENT_SECRET_KEY}@1400000002/13900000002"
        f"?template=200&{args}"
    )
    sms = f"aliyunsms://{ALIYUN_KEY_ID}:{ALIYUN_SECRET}@SMS_1/13700000003?sign=x&{args}"
    async with in_process_client(gateway) as client:
        admin = await login(client, "admin1")
        for cid, role, phone, url in (
            ("daughter", "family", "13900000002", voice),
            ("neighbour", "neighbour", "13700000003", sms),
        ):
            contact = {"id": cid, "name": cid, "role": role, "phone": phone, "apprise": [url]}
            if role == "family":
                contact["residents"] = ["zhang-xiuying"]
            resp = await client.put(
                f"/api/sites/hh-401/contacts/{cid}", json=contact, headers=admin
            )
            assert resp.status_code in (200, 201), resp.text
        await gateway.index.refresh()
        index = current_index(gateway.index)
        steps = [{"notify": ["family"], "wait_s": 900}, {"notify": ["neighbour"], "wait_s": 900}]
        doc = policies([]).default.model_dump(mode="json")
        doc["severities"]["critical"] = {"steps": steps, "repeat": None}
        policy_set = PolicySet(EscalationPolicy.model_validate(doc))
        pipeline, _ = make_pipeline(gateway.store, index, clock, policy_set)
        try:
            await pipeline.handle_transitions([transition(AlertKind.SOS, T0, site="hh-401")])
            await pipeline.tick()
            [call] = await gateway.store.notifications(purpose="alert")
            assert call.outcome == "calling" and call.provider_ref
            callback = providers.tencent_voice_callback(call.provider_ref)
            assert callback["voiceprompt_callback"]["result"] == "0"
            callback["voiceprompt_callback"]["result"] = "1"  # she did not pick up

            path = "/api/providers/tencent/voice-status"
            bad = await client.post(path + "?token=wrong", json=callback)
            assert bad.status_code == 403
            clock.set(T0 + 40)
            ok = await client.post(path + "?token=cb-secret-0123", json=callback)
            assert ok.status_code == 200 and ok.json() == {"result": 0, "errmsg": "OK"}
            junk = await client.post(path + "?token=cb-secret-0123", json={"x": 1})
            assert junk.json()["result"] == 1

            await pipeline.tick()  # the neighbour's step is due at once
            rows = {r.recipient: r for r in await gateway.store.notifications(purpose="alert")}
            assert rows["family:daughter"].outcome == "not_answered"
            assert rows["neighbour:neighbour"].created_at == T0 + 40
            assert [c.params["PhoneNumbers"] for c in providers.of("SendSms")] == ["13700000003"]
        finally:
            await pipeline.stop()

    # Without a configured token the callback route does not exist.
    plain = await build_gateway(
        Settings(run_dir=tmp_path / "run2", database_url=db_url(tmp_path / "b")), clock
    )
    async with in_process_client(plain) as client:
        resp = await client.post("/api/providers/tencent/voice-status?token=x", json=callback)
        assert resp.status_code == 404
