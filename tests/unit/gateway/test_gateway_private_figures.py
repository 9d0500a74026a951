"""What the gateway's figures reveal and to whom: `/metrics` needs the scrape token or a
staff sign-in; a scoped operator's organisation tree counts only her own sites."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from eldercare.clock import FakeClock
from eldercare.settings import Settings
from gateway.metrics_access import token_file
from tests.helpers.gateway import (
    Gateway,
    build_gateway,
    db_url,
    in_process_client,
    login,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

# Two homes of one community, in two operators' scopes (the parent is shared).
SHARED = "滨州市/滨城区/市中街道"
REGISTRY = {
    "sites": [
        {
            "id": site_id,
            "kind": "home",
            "name": site_id,
            "organisation": f"{SHARED}/{community}",
            "rooms": [{"id": "bedroom", "kind": "bedroom"}],
        }
        for site_id, community in (("hh-1", "黄河社区"), ("hh-2", "渤海社区"))
    ]
}


Gw = tuple[Gateway, httpx.AsyncClient, Settings]  # what the `gw` fixture yields


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[Gw]:
    clock = FakeClock(1_770_000_000.0)
    settings = Settings(
        run_dir=tmp_path / "run", database_url=db_url(tmp_path), metrics_token="scrape-me-0123"
    )
    gateway = await build_gateway(settings, clock, registry=REGISTRY)
    from gateway.users import Role, create_user

    await create_user(
        gateway.sessions,
        username="op-huanghe",
        role=Role.OPERATOR,
        password="correct-horse-battery",
        now=clock.now(),
        scope=f"{SHARED}/黄河社区",
    )
    async with in_process_client(gateway) as client:
        yield gateway, client, settings


async def test_metrics_need_the_token_or_a_staff_sign_in(gw: Gw) -> None:
    _, client, _ = gw
    anonymous = await client.get("/metrics")
    assert anonymous.status_code == 401
    assert "ELDERCARE_METRICS_TOKEN" in anonymous.json()["detail"]
    wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    scraper = await client.get("/metrics", headers={"Authorization": "Bearer scrape-me-0123"})
    assert scraper.status_code == 200 and "eldercare_" in scraper.text
    operator = await client.get("/metrics", headers=await login(client, "op-bincheng"))
    assert operator.status_code == 200


async def test_without_a_configured_token_one_is_made_in_the_run_dir(tmp_path: Path) -> None:
    settings = Settings(run_dir=tmp_path / "run", database_url=db_url(tmp_path))
    gateway = await build_gateway(settings, FakeClock(1_770_000_000.0))
    path = token_file(settings.run_dir)
    token = path.read_text().strip()
    assert len(token) >= 32 and path.stat().st_mode & 0o077 == 0
    async with in_process_client(gateway) as client:
        assert (await client.get("/metrics")).status_code == 401
        ok = await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200


async def test_a_scoped_operator_counts_only_her_own_sites(gw: Gw) -> None:
    _, client, _ = gw
    op = await login(client, "op-huanghe")
    units = {
        u["path"]: u["site_count"] for u in (await client.get("/api/org-units", headers=op)).json()
    }
    assert units[SHARED] == 1  # the shared parent: her one home, not both
    assert units[f"{SHARED}/黄河社区"] == 1
    assert f"{SHARED}/渤海社区" not in units
    admin = await login(client, "admin1")
    all_units = {
        u["path"]: u["site_count"]
        for u in (await client.get("/api/org-units", headers=admin)).json()
    }
    assert all_units[SHARED] == 2
