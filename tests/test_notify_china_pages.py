"""The operator's alert detail and the family portal say, for each notification,
which channel it went by and what became of it: here a night call to the daughter
that was not answered and an SMS that was delivered (real SDKs against the local
provider stand-in; the gateway in process over the same store)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from eldercare.clock import FakeClock
from eldercare.domain import AlertKind
from eldercare.settings import Settings
from gateway.i18n import catalogue
from tests.china_providers_support import ALIYUN_KEY_ID, ALIYUN_SECRET, FakeChinaProviders
from tests.test_alerts_support import make_pipeline, policies, transition
from tests.test_gateway_support import (
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
def providers() -> Iterator[FakeChinaProviders]:
    with FakeChinaProviders() as p:
        yield p


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
