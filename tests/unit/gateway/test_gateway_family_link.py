"""A family account linked to its registry contact: her portal choices reach the alert
pipeline (the gateway's `ContactPreferences`), end to end over one SQLite store, a real
HTTP receiver and a real SMTP server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from alerts.recipients import ContactPreference
from eldercare.clock import FakeClock
from eldercare.domain import AlertKind
from eldercare.settings import Settings
from gateway.family_link import GatewayContactPreferences
from gateway.security import CSRF_COOKIE
from tests.helpers.alerts import (
    HttpReceiver,
    SmtpReceiver,
    make_pipeline,
    policies,
    transition,
)
from tests.helpers.gateway import (
    PASSWORD,
    Gateway,
    build_gateway,
    current_index,
    db_url,
    in_process_client,
    login,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

MAIL = "limei@example.org"


Gw = tuple[Gateway, httpx.AsyncClient, FakeClock]  # what the `gw` fixture yields


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[Gw]:
    clock = FakeClock(1_770_000_000.0)
    settings = Settings(run_dir=tmp_path / "run", database_url=db_url(tmp_path))
    gateway = await build_gateway(settings, clock)
    async with in_process_client(gateway) as client:
        yield gateway, client, clock


async def _give_daughter_channels(
    client: httpx.AsyncClient, admin: dict[str, str], urls: list[str]
) -> None:
    contact = {
        "id": "daughter",
        "name": "李梅",
        "role": "family",
        "phone": "139-0000-0002",
        "residents": ["zhang-xiuying"],
        "apprise": urls,
        "daily_summary": "20:00",
    }
    resp = await client.put("/api/sites/hh-401/contacts/daughter", json=contact, headers=admin)
    assert resp.status_code in (200, 201), resp.text


def _new_family(username: str, **link: str) -> dict[str, object]:
    return {"username": username, "password": PASSWORD, "role": "family", **link}


async def test_family_account_is_linked_to_a_registry_contact(gw: Gw) -> None:
    _, client, _ = gw
    admin = await login(client, "admin1")
    resp = await client.post(
        "/api/users", json=_new_family("li-mei", contact="hh-401/daughter"), headers=admin
    )
    assert resp.status_code == 201, resp.text
    account = resp.json()
    assert account["residents"] == ["hh-401/zhang-xiuying"] and account["display_name"] == "李梅"
    # One account per contact; unknown contacts and non-family contacts are refused.
    again = await client.post(
        "/api/users", json=_new_family("li-mei-2", contact="hh-401/daughter"), headers=admin
    )
    assert again.status_code == 409
    for ref in ("hh-401/nobody", "hh-401/neighbour", "nowhere/daughter"):
        bad = await client.post(
            "/api/users", json=_new_family("x-" + ref[-4:], contact=ref), headers=admin
        )
        assert bad.status_code == 422, ref
    # By the phone number the registry holds.
    by_phone = await client.post(
        "/api/users", json=_new_family("liu-qiang", contact_phone="136 0000 0004"), headers=admin
    )
    assert by_phone.status_code == 201, by_phone.text
    assert by_phone.json()["residents"] == ["zh-12/liu-jianguo"]


async def test_unsaved_preferences_show_what_the_registry_does(gw: Gw) -> None:
    _, client, _ = gw
    admin = await login(client, "admin1")
    await _give_daughter_channels(client, admin, ["mailto://a@b.example", "wecombot://k"])
    await client.post(
        "/api/users", json=_new_family("li-mei", contact="hh-401/daughter"), headers=admin
    )
    family = await login(client, "li-mei")
    prefs = (await client.get("/api/family/preferences", headers=family)).json()
    assert prefs["linked_contacts"] == ["hh-401/daughter"]
    assert prefs["available_channels"] == ["email", "wechat_work"]
    assert prefs["daily_summary"] is True and prefs["daily_summary_time"] == "20:00"
    # An unlinked account says so: its choices do not reach notifications.
    unlinked = await login(client, "family-zhang")
    assert (await client.get("/api/family/preferences", headers=unlinked)).json()[
        "linked_contacts"
    ] == []


async def test_portal_choices_decide_the_channels_end_to_end(
    gw: Gw, http_receiver: HttpReceiver, smtp_receiver: SmtpReceiver
) -> None:
    gateway, client, clock = gw
    rx, smtp = http_receiver, smtp_receiver
    admin = await login(client, "admin1")
    await _give_daughter_channels(client, admin, [smtp.url(MAIL), rx.url("daughter-push")])
    await client.post(
        "/api/users", json=_new_family("li-mei", contact="hh-401/daughter"), headers=admin
    )

    # She signs in to the portal (cookie session) and routes safety alerts to e-mail.
    resp = await client.post("/api/auth/login", json={"username": "li-mei", "password": PASSWORD})
    assert resp.status_code == 200
    body = {
        "safety_channels": ["email"],
        "other_channels": ["push"],
        "daily_summary": False,
        "daily_summary_time": "21:00",
    }
    csrf = {"X-CSRF-Token": client.cookies[CSRF_COOKIE]}
    saved = await client.put("/api/family/preferences", json=body, headers=csrf)
    assert saved.status_code == 200, saved.text
    # Safety alerts cannot be switched off.
    muted = await client.put(
        "/api/family/preferences", json={**body, "safety_channels": []}, headers=csrf
    )
    assert muted.status_code == 422

    source = GatewayContactPreferences(gateway.sessions)
    assert await source.contact_preferences() == {
        ("hh-401", "daughter"): ContactPreference(frozenset({"email"}), frozenset({"push"}), None)
    }

    await gateway.index.refresh()
    index = current_index(gateway.index)
    pipeline, _ = make_pipeline(
        gateway.store, index, clock, policies([rx.url("centre")]), preferences=source
    )
    t0 = clock.now()
    await pipeline.handle_transitions([transition(AlertKind.SOS, t0, site="hh-401")])
    await pipeline.tick()
    clock.set(t0 + 60)
    await pipeline.tick()
    assert len(smtp.to(MAIL)) == 1
    assert rx.to("daughter-push") == []
