"""Alembic environment: the whole relational store, SQLite or PostgreSQL, over the async
engine the platform uses. The URL comes from the Alembic config (set by
`eldercare.migrate`) so the same code runs from the CLI, `eldercare run` and tests."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from eldercare.db import Base, create_engine

# The caller (eldercare_app.wiring.prepare_store) has imported every table's module.
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things in place: batch mode copies the table.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_run)
            await conn.commit()
    finally:
        await engine.dispose()


def run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL given to the migrations")
    asyncio.run(_run_async(url))


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported; run them online")
run()
