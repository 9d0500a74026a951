"""A SQLite connection opened while the database file could not be written stays
read-only even after the file is writable again (found in CI: a send logged through
such a pooled connection failed, and the message went out twice). The engine drops
such a connection on its refusal, so the next write goes through. Real SQLite on a
file made immutable with `chattr +i`."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from eldercare.db import create_engine


@contextmanager
def immutable(path: Path) -> Iterator[None]:
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not installed")
    done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"this filesystem cannot make files immutable: {done.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


async def test_a_connection_opened_while_the_file_was_read_only_is_replaced(
    tmp_path: Path,
) -> None:
    path = tmp_path / "store.db"
    url = f"sqlite+aiosqlite:///{path}"
    setup = create_engine(url)
    async with setup.begin() as conn:
        await conn.execute(text("CREATE TABLE t (a INTEGER)"))
    await setup.dispose()
    (tmp_path / "store.db-wal").unlink(missing_ok=True)

    engine = create_engine(url)
    try:
        with immutable(path):
            async with engine.connect() as conn:  # the pool's connection opens read-only
                assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar() == 0
        # The file is writable again. The pooled connection refuses once and is dropped.
        with pytest.raises(OperationalError, match="readonly"):
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO t VALUES (1)"))
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO t VALUES (2)"))
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT a FROM t"))).scalars().all() == [2]
    finally:
        await engine.dispose()
