"""Visit coverage as InfluxDB points, read back by the Coverage dashboard's own panel
queries against the session's real InfluxDB (Debian's 1.x): the job writes what the
store holds, and a district's rate is its communities' visits over their needs."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import field_service.models  # noqa: F401  (registers the tables)
from dashboards.build import dashboard_docs
from dashboards.check import TimeRange, check_dashboard
from eldercare.db import Base, create_engine, session_factory
from eldercare.influx import InfluxClient
from eldercare.registry_model import Site
from field_service.coverage_job import CoverageJob
from field_service.visit_store import Sessions, log_visit
from field_service.visits import VisitMode, VisitOutcome

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]
ZONE = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 20, 12, 0, tzinfo=ZONE).timestamp()
DISTRICT = "滨州市/滨城区"


def _site(site_id: str, community: str, residents: int) -> Site:
    return Site.model_validate(
        {
            "id": site_id,
            "kind": "home",
            "name": site_id,
            "organisation": f"{DISTRICT}/市中街道/{community}",
            "residents": [
                {"id": f"{site_id}-r{i}", "name": f"老人{i}", "flags": ["special_hardship"]}
                for i in range(residents)
            ],
        }
    )


SITES = [_site("a", "黄河社区", 3), _site("b", "渤海社区", 1), _site("c", "黄河社区", 0)]


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[Sessions]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/f.db")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield session_factory(engine)
    await engine.dispose()


async def test_the_coverage_panels_read_what_the_job_wrote(
    sessions: Sessions, influx_url: str
) -> None:
    for rid in ("a-r0", "a-r1"):
        await log_visit(
            sessions, site_id="a", resident_id=rid, responder="wang", mode=VisitMode.IN_PERSON,
            outcome=VisitOutcome.RESIDENT_FINE, note=None, visited_at=NOW - 86400, logged_at=NOW,
        )  # fmt: skip
    db = f"cov_{secrets.token_hex(4)}"
    async with InfluxClient(influx_url) as client:
        await client.query(f'CREATE DATABASE "{db}"')
        try:

            async def sites() -> list[Site]:
                return SITES

            async def write(lines: list[str]) -> None:
                await client.write(lines, db)

            assert await CoverageJob(sessions, sites, write).run(NOW) == 2  # two communities
            doc = next(d for d in dashboard_docs(None) if d["uid"] == "eldercare-coverage")
            span = TimeRange(int((NOW - 3600) * 1000), int((NOW + 3600) * 1000))
            results = await check_dashboard(client, db, doc, span, {"org": DISTRICT})
            assert not [r for r in results if r.error], [r.error for r in results if r.error]
            sent = {r.ref.panel: r.sent for r in results}
            rate = await client.query(sent["本月探访率 Visits this month"], db)
            overdue = await client.query(sent["逾期未探访 Visits overdue"], db)
        finally:
            await client.query(f'DROP DATABASE "{db}"')
    by_org = {r["_tags"]["org"]: r for r in rate}
    assert by_org[f"{DISTRICT}/市中街道/黄河社区"]["rate"] == pytest.approx(100 * 2 / 3)
    assert by_org[f"{DISTRICT}/市中街道/渤海社区"]["rate"] == 0
    # Mid-December nothing monthly is overdue yet: the month has not ended.
    assert {r["_tags"]["org"]: r["overdue"] for r in overdue} == {
        f"{DISTRICT}/市中街道/黄河社区": 0,
        f"{DISTRICT}/市中街道/渤海社区": 0,
    }


async def test_the_operations_field_panels_read_what_the_response_job_wrote(
    sessions: Sessions, influx_url: str
) -> None:
    from field_service.lifecycle import Step
    from field_service.orders import OrderStore
    from field_service.response_points import ResponseJob

    store = OrderStore(sessions)
    home = SITES[0]  # 黄河社区; SITES[1] is 渤海社区
    other = SITES[1]
    # 黄河: one arrived in 10 min; one accepted but past its promise (late). 渤海: one waiting.
    a = await store.dispatch(
        site=home, resident_id="a-r0", alert_id=None, requested_at=NOW - 3000, responder="w",
        actor="op", at=NOW - 2950,
    )  # fmt: skip
    await store.step(a.id, Step.ACCEPT, actor="w", at=NOW - 2900)
    await store.step(a.id, Step.ARRIVE, actor="w", at=NOW - 2400)
    b = await store.dispatch(
        site=home, resident_id="a-r1", alert_id=None, requested_at=NOW - 2000, responder="w",
        actor="op", at=NOW - 1990,
    )  # fmt: skip
    await store.step(b.id, Step.ACCEPT, actor="w", at=NOW - 1900)
    await store.dispatch(
        site=other, resident_id="b-r0", alert_id=None, requested_at=NOW - 60, responder="v",
        actor="op", at=NOW - 30,
    )  # fmt: skip
    db = f"resp_{secrets.token_hex(4)}"
    async with InfluxClient(influx_url) as client:
        await client.query(f'CREATE DATABASE "{db}"')
        try:

            async def sites() -> list[Site]:
                return SITES

            async def write(lines: list[str]) -> None:
                await client.write(lines, db)

            assert await ResponseJob(store, sites, write).run(NOW) == 2
            doc = next(d for d in dashboard_docs(None) if d["uid"] == "eldercare-operations")
            span = TimeRange(int((NOW - 3600) * 1000), int((NOW + 3600) * 1000))
            results = await check_dashboard(client, db, doc, span)
            sent = {(r.ref.panel, r.ref.ref_id): r.sent for r in results}
            orders_panel = "上门派单 Work orders (24 h)"
            open_rows = await client.query(sent[(orders_panel, "A")], db)
            overdue_rows = await client.query(sent[(orders_panel, "B")], db)
            share = await client.query(sent[("承诺时间内到达 Arrived within the promise", "A")], db)
            p95 = await client.query(sent[("到达用时 P95 Time to the door (95th pct)", "A")], db)
        finally:
            await client.query(f'DROP DATABASE "{db}"')
    assert open_rows[0]["open"] == 3  # arrived, not yet closed: still open
    assert overdue_rows[0]["overdue"] == 1  # b: past the promise without arriving
    assert share[0]["share"] == pytest.approx(50.0)  # a within, b late
    assert p95[0]["p95"] == pytest.approx(600.0)
