"""`eldercare field ...` against a real SQLite store: responders, visit categories and
the coverage table with its CSV return."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from eldercare import registry_store
from eldercare.db import Base, create_engine, session_factory
from eldercare.registry_model import RegistryDocument
from eldercare_app.field_cli import app
from eldercare_app.wiring import import_all_tables
from field_service.visit_store import log_visit
from field_service.visits import VisitMode, VisitOutcome
from tests.helpers.gateway import REGISTRY

runner = CliRunner()


@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path}/cli.db"
    monkeypatch.setenv("ELDERCARE_DATABASE_URL", url)
    monkeypatch.setenv("ELDERCARE_RUN_DIR", str(tmp_path / "run"))

    async def seed() -> None:
        import_all_tables()
        engine = create_engine(url)
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        sessions = session_factory(engine)
        await registry_store.apply_document(sessions, RegistryDocument.model_validate(REGISTRY))
        await log_visit(
            sessions, site_id="hh-401", resident_id="zhang-xiuying", responder="wang",
            mode=VisitMode.PHONE, outcome=VisitOutcome.RESIDENT_FINE, note=None,
            visited_at=time.time() - 60, logged_at=time.time(),
        )  # fmt: skip
        await engine.dispose()

    asyncio.run(seed())
    return url


def test_responders_categories_and_coverage(url: str, tmp_path: Path) -> None:
    area = "滨州市/滨城区/市中街道"
    args = ["responders", "add", "--username", "wang-grid", "--name", "王强", "--kind",
            "grid_worker", "--area", area, "--on-duty", "--password-stdin"]  # fmt: skip
    result = runner.invoke(app, args, input="a-long-password\n")
    assert result.exit_code == 0, result.output
    assert "responder wang-grid created" in result.output
    again = runner.invoke(app, [*args[:-2], "--off-duty"])
    assert "responder wang-grid updated" in again.output
    listed = runner.invoke(app, ["responders", "list"])
    assert "wang-grid" in listed.output and "off duty" in listed.output
    bad = runner.invoke(app, ["responders", "add", "--username", "x", "--name", "x", "--kind",
                              "grid_worker", "--area", "//"])  # fmt: skip
    assert bad.exit_code == 1 and "area" in bad.output

    result = runner.invoke(
        app, ["categories", "set", "dementia", "--period", "month", "--flag", "dementia"]
    )
    assert result.exit_code == 0, result.output
    month = time.strftime("%Y-%m", time.localtime(time.time() - 60))
    out = tmp_path / "coverage.csv"
    result = runner.invoke(app, ["coverage", "--month", month, "--csv", str(out)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[1].split()[:3] == ["滨州市/滨城区/市中街道/黄河社区", "1", "1"]
    assert lines[2].split()[-1] == "100.0%"
    assert out.read_text(encoding="utf-8").startswith("\ufeffmonth,organisation")
    assert runner.invoke(app, ["coverage", "--month", "13-2026"]).exit_code == 1
