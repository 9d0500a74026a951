"""Bringing a relational store to the current schema (Alembic, SQLite or PostgreSQL).

`upgrade(url)` is what `eldercare db upgrade` and `eldercare run` call. A store
created before migrations existed (tables made by `create_all`, no
`alembic_version`) is brought level with `create_all` for missing tables and then
stamped, once; from then on every change is a revision in
`eldercare/migrations/versions/`.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from eldercare.db import Base
from eldercare.logs import get_logger

log = get_logger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _state(sync_conn) -> tuple[bool, bool]:  # type: ignore[no-untyped-def]
    names = set(inspect(sync_conn).get_table_names())
    ours = {t.name for t in Base.metadata.sorted_tables}
    return "alembic_version" in names, bool(names & ours)


async def upgrade(engine: AsyncEngine) -> None:
    """Run every pending revision on the engine's database.

    The kernel does not know the stages' tables: the caller imports every module that
    declares one first (`eldercare_app.wiring.prepare_store` does), so `Base.metadata`
    is the whole store when an old store is brought level."""
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    async with engine.begin() as conn:
        versioned, has_tables = await conn.run_sync(_state)

        def _migrate(sync_conn):  # type: ignore[no-untyped-def]
            cfg.attributes["connection"] = sync_conn
            if not versioned and has_tables:
                log.info("store predates migrations: creating missing tables and stamping")
                Base.metadata.create_all(sync_conn)
                command.stamp(cfg, "head")
            else:
                command.upgrade(cfg, "head")

        await conn.run_sync(_migrate)


async def at_head(engine: AsyncEngine) -> bool:
    """Whether the store is at the newest revision already: a process that needs no
    migration then need not import every stage's tables (`upgrade`'s caller does)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    heads = set(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())

    def _current(sync_conn):  # type: ignore[no-untyped-def]
        return set(MigrationContext.configure(sync_conn).get_current_heads())

    async with engine.connect() as conn:
        current: set[str] = await conn.run_sync(_current)
    return current == heads
