"""Visits and coverage through the API on a real SQLite store: a responder logs visits
in their area only, the owed list turns a visit due into overdue, a family sees their
relative's last visit (without the worker's note), coverage and its CSV return are
scoped to the operator's subtree."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from eldercare import registry_store
from eldercare.clock import FakeClock
from eldercare.registry_model import RegistryDocument
from eldercare.settings import Settings
from tests.helpers.field import add_responders
from tests.helpers.gateway import (
    REGISTRY,
    Gateway,
    build_gateway,
    db_url,
    in_process_client,
    login,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")
ZONE = ZoneInfo("Asia/Shanghai")
GW = tuple[Gateway, httpx.AsyncClient, FakeClock]


def at(month: int, day: int, hour: int = 10) -> float:
    return datetime(2026, month, day, hour, 0, tzinfo=ZONE).timestamp()


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[GW]:
    clock = FakeClock(at(12, 10))
    settings = Settings(run_dir=tmp_path / "run", database_url=db_url(tmp_path))
    gateway = await build_gateway(settings, clock)
    # 张秀英 is in special hardship (monthly); 刘建国 lives alone at 88 (weekly).
    doc = RegistryDocument.model_validate(REGISTRY)
    sites = []
    for s in doc.sites:
        if s.id == "hh-401":
            r = s.residents[0].model_copy(
                update={"flags": [*s.residents[0].flags, "special_hardship"]}
            )
            s = s.model_copy(update={"residents": [r]})
        if s.id == "zh-12":
            r = s.residents[0].model_copy(update={"flags": ["lives_alone"]})
            s = s.model_copy(update={"residents": [r]})
        sites.append(s)
    await registry_store.apply_document(gateway.sessions, RegistryDocument(sites=sites))
    await gateway.index.refresh()
    await add_responders(gateway.sessions, clock.now())
    async with in_process_client(gateway) as client:
        yield gateway, client, clock


def visit(site: str, resident: str, **extra: object) -> dict[str, object]:
    return {
        "site_id": site,
        "resident_id": resident,
        "mode": "in_person",
        "outcome": "resident_fine",
        **extra,
    }


async def test_a_responder_logs_visits_in_their_area_only(gw: GW) -> None:
    _, client, _ = gw
    wang = await login(client, "wang-grid")
    resp = await client.post(
        "/api/field/visits", json=visit("hh-401", "zhang-xiuying", note="血压正常"), headers=wang
    )
    assert resp.status_code == 201, resp.text
    resp = await client.post("/api/field/visits", json=visit("zh-12", "liu-jianguo"), headers=wang)
    assert resp.status_code == 404
    family = await login(client, "family-zhang")
    resp = await client.post(
        "/api/field/visits", json=visit("hh-401", "zhang-xiuying"), headers=family
    )
    assert resp.status_code == 403
    resp = await client.post(
        "/api/field/visits",
        json=visit("hh-401", "zhang-xiuying", at=at(12, 10) + 3600),
        headers=wang,
    )
    assert resp.status_code == 422  # not ahead of now


async def test_owed_visits_turn_overdue_when_a_period_passes_unvisited(gw: GW) -> None:
    _, client, clock = gw
    wang = await login(client, "wang-grid")
    [owed] = (await client.get("/api/field/visits/owed", headers=wang)).json()
    assert (owed["resident_id"], owed["category"], owed["status"]) == (
        "zhang-xiuying",
        "special_hardship",
        "overdue",
    )
    await client.post("/api/field/visits", json=visit("hh-401", "zhang-xiuying"), headers=wang)
    [owed] = (await client.get("/api/field/visits/owed", headers=wang)).json()
    assert owed["status"] == "visited"
    assert owed["period_end"] == datetime(2027, 1, 1, tzinfo=ZONE).timestamp()
    clock.set(datetime(2027, 1, 5, 10, tzinfo=ZONE).timestamp())
    [owed] = (await client.get("/api/field/visits/owed", headers=wang)).json()
    assert owed["status"] == "due"  # visited last month: due this month, not overdue
    clock.set(datetime(2027, 2, 2, 10, tzinfo=ZONE).timestamp())
    wang = await login(client, "wang-grid")  # a month on: a fresh token
    [owed] = (
        await client.get(
            "/api/field/visits/owed", params={"status_filter": "overdue"}, headers=wang
        )
    ).json()
    assert owed["resident_id"] == "zhang-xiuying"
    op_zh = await login(client, "op-zhanhua")
    owed_zh = (await client.get("/api/field/visits/owed", headers=op_zh)).json()
    assert [(o["resident_id"], o["category"]) for o in owed_zh] == [("liu-jianguo", "alone_80")]


async def test_a_family_sees_the_last_visit_but_not_the_workers_note(gw: GW) -> None:
    _, client, _ = gw
    wang = await login(client, "wang-grid")
    await client.post(
        "/api/field/visits",
        json=visit("hh-401", "zhang-xiuying", mode="phone", note="血压正常"),
        headers=wang,
    )
    family = await login(client, "family-zhang")
    [seen] = (
        await client.get("/api/field/sites/hh-401/residents/zhang-xiuying/visits", headers=family)
    ).json()
    assert (seen["mode"], seen["responder_name"], seen["note"]) == ("phone", "王强", None)
    op = await login(client, "op-bincheng")
    [full] = (
        await client.get("/api/field/sites/hh-401/residents/zhang-xiuying/visits", headers=op)
    ).json()
    assert full["note"] == "血压正常"
    resp = await client.get("/api/field/sites/zh-12/residents/liu-jianguo/visits", headers=family)
    assert resp.status_code == 404


async def test_coverage_and_the_csv_return_are_scoped_to_the_subtree(gw: GW) -> None:
    _, client, clock = gw
    wang = await login(client, "wang-grid")
    await client.post("/api/field/visits", json=visit("hh-401", "zhang-xiuying"), headers=wang)
    liu = await login(client, "liu-zhanhua")
    await client.post(
        "/api/field/visits", json=visit("zh-12", "liu-jianguo", outcome="not_reached"), headers=liu
    )
    clock.set(datetime(2027, 1, 4, 10, tzinfo=ZONE).timestamp())  # the last week ended
    admin = await login(client, "admin1")
    rows = (
        await client.get(
            "/api/field/coverage", params={"month": "2026-12", "depth": 2}, headers=admin
        )
    ).json()
    # December 2026: 张秀英 1 of 1; 刘建国 0 of 5 weeks (a not-reached visit does not count).
    assert [(r["unit"], r["needed"], r["visited"], r["overdue"], r["rate"]) for r in rows] == [
        ("滨州市/沾化区", 5, 0, 5, 0.0),
        ("滨州市/滨城区", 1, 1, 0, 1.0),
        ("", 6, 1, 5, pytest.approx(1 / 6)),
    ]
    op = await login(client, "op-bincheng")
    resp = await client.get("/api/field/coverage.csv", params={"month": "2026-12"}, headers=op)
    assert resp.headers["content-type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(resp.text.lstrip("\ufeff"))))
    assert lines[1:] == [
        ["2026-12", "滨州市/滨城区/市中街道/黄河社区", "1", "1", "0", "0", "100.0"],
        ["2026-12", "合计 total", "1", "1", "0", "0", "100.0"],
    ]
    assert (
        await client.get("/api/field/coverage", params={"month": "2026-13"}, headers=op)
    ).status_code == 422
    assert (
        await client.get("/api/field/coverage", params={"month": "2026-12"}, headers=wang)
    ).status_code == 403


async def test_an_admin_sets_an_organisations_visit_categories(gw: GW) -> None:
    _, client, _ = gw
    admin = await login(client, "admin1")
    resp = await client.put(
        "/api/field/visit-categories/bincheng-80",
        json={
            "organisation": "滨州市/滨城区",
            "period": "month",
            "min_age": 80,
            "name_zh": "80岁以上",
        },
        headers=admin,
    )
    assert resp.status_code == 200
    op = await login(client, "op-bincheng")
    cats = (await client.get("/api/field/visit-categories", headers=op)).json()
    assert [c["id"] for c in cats] == ["bincheng-80"]  # the defaults give way
    owed = (await client.get("/api/field/visits/owed", headers=op)).json()
    assert {o["resident_id"] for o in owed} == {"zhang-xiuying", "sun-lan", "zhao-hua"}
    resp = await client.put("/api/field/visit-categories/x", json={"period": "week"}, headers=op)
    assert resp.status_code == 403
