"""The Alembic migrations build exactly the schema the code declares, on SQLite and
PostgreSQL, and a store made before migrations existed is adopted without loss."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from eldercare.db import Base, create_engine
from eldercare.migrate import at_head, upgrade
from eldercare_app.wiring import import_all_tables


def _differences(sync_conn) -> list[object]:  # type: ignore[no-untyped-def]
    ctx = MigrationContext.configure(sync_conn, opts={"compare_type": True})
    return list(compare_metadata(ctx, Base.metadata))


async def _check(url: str) -> None:
    import_all_tables()
    engine = create_engine(url)
    try:
        await upgrade(engine)
        await upgrade(engine)  # idempotent: nothing pending the second time
        async with engine.connect() as conn:
            diffs = await conn.run_sync(_differences)
            version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
        assert diffs == [], f"migrations and models disagree: {diffs}"
        assert len(version) == 1
    finally:
        await engine.dispose()


async def test_sqlite_from_empty(tmp_path: Path) -> None:
    await _check(f"sqlite+aiosqlite:///{tmp_path}/m.db")


@pytest.mark.integration
async def test_postgresql_from_empty(pg_database: Callable[[str], str]) -> None:
    await _check(pg_database("migrations"))


async def test_a_store_made_before_migrations_is_adopted(tmp_path: Path) -> None:
    import_all_tables()
    url = f"sqlite+aiosqlite:///{tmp_path}/old.db"
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            # An older store: some of today's tables, with a row that must survive.
            await conn.run_sync(
                lambda c: Base.metadata.create_all(c, tables=[Base.metadata.tables["alerts"]])
            )
            await conn.execute(
                text(
                    "INSERT INTO alerts (site, kind, severity, condition, status, raised_at,"
                    " created_at, last_update, details, evidence) VALUES ('s', 'sos',"
                    " 'critical', 'active', 'open', 1, 1, 1, '{}', '[]')"
                )
            )
        await upgrade(engine)
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
            kept = (await conn.execute(text("SELECT count(*) FROM alerts"))).scalar_one()
            diffs = await conn.run_sync(_differences)
        assert {t.name for t in Base.metadata.sorted_tables} <= names
        assert kept == 1
        assert diffs == []
    finally:
        await engine.dispose()


async def test_at_head_tells_a_store_that_needs_no_migration(tmp_path: Path) -> None:
    """A detector worker skips importing every stage's tables when the store is current."""
    import_all_tables()
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/h.db")
    try:
        assert not await at_head(engine)  # empty
        await upgrade(engine)
        assert await at_head(engine)
        async with engine.begin() as conn:  # one revision behind
            await conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
        assert not await at_head(engine)
    finally:
        await engine.dispose()
