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
