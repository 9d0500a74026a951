"""Detector snapshots in the relational store: real SQLite and real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from detectors.snapshot_store import SiteStates, SnapshotStore
from eldercare.db import create_all, create_engine


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/snapshots.db"
    make: Callable[[str], str] = request.getfixturevalue("pg_database")
    return make("detsnap")


@pytest_asyncio.fixture(loop_scope="function")
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(db_url)
    await create_all(eng)
    yield eng
    await eng.dispose()


async def test_save_load_replace(engine: AsyncEngine) -> None:
    store = SnapshotStore(engine)
    assert await store.load_all() == {}
    state = {"beds": {"res-1": {"occupied": False, "since": 1.5, "evidence": {"ts": 1.5}}}}
    await store.save({"home-1": {"bed_exit_no_return": state, "sos": {"open": {}}}}, 100.0)
    await store.save({"home-2": {"sos": {"open": {}}}}, 101.0)
    assert await store.load_all() == {
        "home-1": {"bed_exit_no_return": state, "sos": {"open": {}}},
        "home-2": {"sos": {"open": {}}},
    }
    # A later save replaces the site's rows: updated states stay, dropped detectors go.
    await store.save({"home-1": {"sos": {"open": {"res-1": {"presses": 1}}}}}, 102.0)
    loaded = await store.load_all()
    assert loaded["home-1"] == {"sos": {"open": {"res-1": {"presses": 1}}}}
    assert loaded["home-2"] == {"sos": {"open": {}}}
    await store.delete_site("home-2")
    assert set(await store.load_all()) == {"home-1"}


async def test_many_sites_in_one_save_replace_their_rows(engine: AsyncEngine) -> None:
    """More sites than one statement takes: every site's dropped detectors still go."""
    store = SnapshotStore(engine)
    sites = [f"home-{i}" for i in range(250)]
    await store.save({s: {"sos": {"open": {}}, "fall": {"falls": {}}} for s in sites}, 1.0)
    # Every other site no longer has a fall radar; the rest keep both.
    later: dict[str, SiteStates] = {
        s: ({"sos": {"open": {"": i}}} if i % 2 else {"sos": {}, "fall": {}})
        for i, s in enumerate(sites)
    }
    await store.save(later, 2.0)
    loaded = await store.load_all()
    assert loaded == later
