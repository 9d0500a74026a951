"""The relational store's engine: SQLite by default, PostgreSQL by URL."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    """Declarative base of every table of the relational store."""


def create_engine(url: str) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        db = parsed.database
        if db and db != ":memory:":
            Path(db).parent.mkdir(parents=True, exist_ok=True)
        # How long a write waits for another connection's lock before failing ("database
        # is locked"): 30 s, or the URL's `?timeout=` (tests of a locked store use less).
        busy = parsed.query.get("timeout", "30")
        timeout = float(busy if isinstance(busy, str) else busy[-1])
        engine = create_async_engine(url, connect_args={"timeout": timeout})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            # WAL: readers (the gateway) don't block the writer (ingest/alerts).
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        event.listen(engine.sync_engine, "handle_error", _reopen_read_only_connections)
        return engine
    return create_async_engine(url, pool_pre_ping=True)


def session_factory(engine: AsyncEngine) -> async_sessionmaker:  # type: ignore[type-arg]
    return async_sessionmaker(engine, expire_on_commit=False)


async def create_all(engine: AsyncEngine) -> None:
    """Create every table the imported modules declared (tests and first start)."""
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)


def _reopen_read_only_connections(context: ExceptionContext) -> None:
    """A connection SQLite opened while the file could not be written (made read-only or
    immutable) stays read-only for good, even once the file is writable again: treat its
    refusal like a lost connection, so the pool drops it and the next attempt opens a
    fresh one that can write."""
    error = context.original_exception
    code = getattr(error, "sqlite_errorcode", None)
    if isinstance(code, int) and code & 0xFF == sqlite3.SQLITE_READONLY:
        context.is_disconnect = True
