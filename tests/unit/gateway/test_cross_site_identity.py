"""A resident is `(site, resident)`: the same resident and contact ids in two sites
never let one site's family or staff see the other's person or alerts, through any
path (lists, single reads, alerts, the live stream, declared absences)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from eldercare.clock import FakeClock
from eldercare.registry_model import RegistryDocument
from eldercare.settings import Settings
from gateway.family_link import create_family_account
from gateway.users import AccountError, Role, create_user
from tests.helpers.gateway import (
    PASSWORD,
    Gateway,
    build_gateway,
    db_url,
    login,
    serve,
    sos,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

NOW = 1_770_000_000.0


def _home(site_id: str, district: str, name: str, phone: str) -> dict[str, Any]:
    return {
        "id": site_id,
        "kind": "home",
        "name": f"{name}家",
        "organisation": f"滨州市/{district}/社区",
        "address": f"{district} 1-1-101",
        "rooms": [{"id": "bedroom", "kind": "bedroom", "name": "卧室"}],
        "residents": [{"id": "wang", "name": name, "phone": phone, "notes": f"{name}的病历"}],
        "devices": [{"id": f"{site_id}-sos", "kind": "sos_button", "room": "bedroom"}],
        "contacts": [
            {"id": "daughter", "name": f"{name}的女儿", "role": "family", "phone": phone + "9"}
        ],
    }


REGISTRY = {
    "sites": [
        _home("home-a", "滨城区", "王秀兰", "13900000001"),
        _home("home-b", "沾化区", "王建国", "13900000002"),
    ]
}


@pytest.fixture
async def two_wangs(tmp_path: Path) -> AsyncIterator[tuple[Gateway, httpx.AsyncClient]]:
    clock = FakeClock(NOW)
    settings = Settings(run_dir=tmp_path / "run", database_url=db_url(tmp_path))
    gateway = await build_gateway(settings, clock, with_accounts=False, registry=REGISTRY)
    sessions = gateway.sessions
    index = await gateway.index.refresh()
    await create_family_account(
        sessions, index, username="family-a", password=PASSWORD, now=NOW, contact="home-a/daughter"
    )
    for username, role, scope in (
        ("op-b", Role.OPERATOR, "滨州市/沾化区"),
        ("op-a", Role.OPERATOR, "滨州市/滨城区"),
        ("admin1", Role.ADMIN, None),
    ):
        await create_user(
            sessions, username=username, role=role, password=PASSWORD, now=NOW, scope=scope
        )
    async with (
        serve(gateway.app) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as client,
    ):
        yield gateway, client
    await gateway.engine.dispose()


async def _raise_sos(gateway: Gateway, site: str) -> None:
    await gateway.store.apply_transitions([sos(site, "wang", NOW)], NOW)


async def _sse_events(lines: AsyncIterator[str]) -> AsyncIterator[tuple[str, str]]:
    """(event, data) pairs of an SSE body."""
    event: dict[str, str] = {}
    async for line in lines:
        if line == "":
            if "event" in event:
                yield event["event"], event.get("data", "")
            event.clear()
        elif not line.startswith(":"):
            key, _, value = line.partition(":")
            event[key] = value.lstrip(" ")


async def test_same_device_id_in_two_sites_is_refused() -> None:
    doc = json.loads(json.dumps(REGISTRY))
    doc["sites"][1]["devices"][0]["id"] = "home-a-sos"
    with pytest.raises(ValidationError, match="device id 'home-a-sos' used by sites"):
        RegistryDocument.model_validate(doc)


async def test_family_of_one_wang_sees_nothing_of_the_other(
    two_wangs: tuple[Gateway, httpx.AsyncClient],
) -> None:
    gateway, client = two_wangs
    family = await login(client, "family-a")
    streamed: list[str] = []

    async def follow(stream: httpx.Response) -> None:
        # B's SOS is raised first; the feed is ordered, so by the time A's arrives
        # B's would have been sent had she been allowed to see it.
        async for event, data in _sse_events(stream.aiter_lines()):
            if event == "hello":
                await _raise_sos(gateway, "home-b")
                await _raise_sos(gateway, "home-a")
            elif event == "alert":
                streamed.append(json.loads(data)["alert"]["site_id"])
                if streamed[-1] == "home-a":
                    return

    async with client.stream("GET", "/api/stream", headers=family) as stream:
        assert stream.status_code == 200
        await asyncio.wait_for(follow(stream), 5.0)
    assert streamed == ["home-a"]

    residents = (await client.get("/api/residents", headers=family)).json()
    assert [(r["site_id"], r["id"], r["name"]) for r in residents] == [("home-a", "wang", "王秀兰")]
    # The bare id names one resident she may see: hers, never the other home's.
    mine = (await client.get("/api/residents/wang", headers=family)).json()
    assert mine["site_id"] == "home-a" and mine["phone"] == "13900000001"
    for path in (
        "/api/sites/home-b/residents/wang",
        "/api/sites/home-b/residents/wang/contacts",
        "/api/sites/home-b/residents/wang/away",
        "/api/family/sites/home-b/residents/wang",
        "/api/residents/wang?site_id=home-b",
    ):
        resp = await client.get(path, headers=family)
        assert resp.status_code == 404, (path, resp.text)
    declare = await client.put(
        "/api/sites/home-b/residents/wang/away",
        headers=family,
        json={"until": "2026-02-05T18:00"},
    )
    assert declare.status_code == 404

    alerts = (await client.get("/api/alerts", headers=family)).json()
    assert {a["site_id"] for a in alerts} == {"home-a"}
    admin = await login(client, "admin1")
    by_site = {
        a["site_id"]: a["id"] for a in (await client.get("/api/alerts", headers=admin)).json()
    }
    assert (await client.get(f"/api/alerts/{by_site['home-b']}", headers=family)).status_code == 404
    assert (await client.get(f"/api/alerts/{by_site['home-a']}", headers=family)).status_code == 200
    portal = (await client.get("/api/family/residents", headers=family)).json()
    assert [(r["site_id"], r["id"]) for r in portal] == [("home-a", "wang")]


async def test_each_operator_sees_their_own_wang(
    two_wangs: tuple[Gateway, httpx.AsyncClient],
) -> None:
    _, client = two_wangs
    for username, site, phone in (
        ("op-b", "home-b", "13900000002"),
        ("op-a", "home-a", "13900000001"),
    ):
        op = await login(client, username)
        bare = await client.get("/api/residents/wang", headers=op)
        assert bare.status_code == 200, bare.text
        assert (bare.json()["site_id"], bare.json()["phone"]) == (site, phone)
        qualified = await client.get(f"/api/sites/{site}/residents/wang", headers=op)
        assert qualified.status_code == 200 and qualified.json()["site_id"] == site
        contacts = await client.get(f"/api/sites/{site}/residents/wang/contacts", headers=op)
        assert [c["name"] for c in contacts.json()] == [f"{bare.json()['name']}的女儿"]
        other = "home-a" if site == "home-b" else "home-b"
        assert (
            await client.get(f"/api/sites/{other}/residents/wang", headers=op)
        ).status_code == 404


async def test_an_ambiguous_bare_id_is_a_clear_conflict(
    two_wangs: tuple[Gateway, httpx.AsyncClient],
) -> None:
    _, client = two_wangs
    admin = await login(client, "admin1")
    resp = await client.get("/api/residents/wang", headers=admin)
    assert resp.status_code == 409
    detail = resp.json()["detail"]
    assert "home-a, home-b" in detail and "/api/sites/{site_id}/residents/wang" in detail
    for site in ("home-a", "home-b"):
        resp = await client.get(f"/api/sites/{site}/residents/wang", headers=admin)
        assert resp.status_code == 200 and resp.json()["site_id"] == site


async def test_declared_absence_belongs_to_one_site(
    two_wangs: tuple[Gateway, httpx.AsyncClient],
) -> None:
    _, client = two_wangs
    admin = await login(client, "admin1")
    resp = await client.put(
        "/api/sites/home-a/residents/wang/away", headers=admin, json={"until": "2026-02-05T18:00"}
    )
    assert resp.status_code == 200, resp.text
    a = await client.get("/api/sites/home-a/residents/wang/away", headers=admin)
    b = await client.get("/api/sites/home-b/residents/wang/away", headers=admin)
    assert a.json()["until"] == "2026-02-05T18:00" and b.json() is None
    gone = await client.delete("/api/sites/home-b/residents/wang/away", headers=admin)
    assert gone.status_code == 404
    assert (await client.get("/api/sites/home-a/residents/wang/away", headers=admin)).json()


async def test_accounts_name_residents_with_their_site(
    two_wangs: tuple[Gateway, httpx.AsyncClient],
) -> None:
    gateway, _ = two_wangs
    with pytest.raises(AccountError, match="site_id/resident_id"):
        await create_user(
            gateway.sessions,
            username="bare",
            role=Role.FAMILY,
            password=PASSWORD,
            now=NOW,
            residents=["wang"],
        )
    index = await gateway.index.refresh()
    with pytest.raises(AccountError, match="do not live at home-a"):
        await create_family_account(
            gateway.sessions,
            index,
            username="stray",
            password=PASSWORD,
            now=NOW,
            contact="home-a/daughter",
            residents=["home-b/wang"],
        )
