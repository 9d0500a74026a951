"""A changed password ends every session of the account (`eldercare users passwd`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest
from typer.testing import CliRunner

from eldercare.db import create_engine, session_factory
from gateway import users
from gateway.app import init_gateway_store
from gateway.auth import issue_token, principal_for_token
from gateway.cli import users_app
from gateway.users import Role, Sessions

T = TypeVar("T")
OLD, NEW = "old-password-1", "new-password-22"


def _in_store(url: str, work: Callable[[Sessions], Awaitable[T]]) -> T:
    async def main() -> T:
        engine = create_engine(url)
        try:
            sessions = session_factory(engine)
            await init_gateway_store(sessions)
            return await work(sessions)
        finally:
            await engine.dispose()

    return asyncio.run(main())


@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    database = f"sqlite+aiosqlite:///{tmp_path}/gw.db"
    monkeypatch.setenv("ELDERCARE_DATABASE_URL", database)
    monkeypatch.setenv("ELDERCARE_RUN_DIR", str(tmp_path / "run"))
    return database


def test_passwd_replaces_the_password_and_revokes_every_token(url: str) -> None:
    async def setup(s: Sessions) -> list[str]:
        account = await users.create_user(
            s, username="ops-li", role=Role.OPERATOR, password=OLD, now=time.time(), scope="滨州市"
        )
        tokens = [
            await issue_token(s, account, kind=k, now=time.time()) for k in ("session", "bearer")
        ]
        return [t.token for t in tokens]

    tokens = _in_store(url, setup)
    done = CliRunner().invoke(
        users_app, ["passwd", "--username", "ops-li", "--password-stdin"], input=NEW + "\n"
    )
    assert done.exit_code == 0, done.output
    assert "2 session(s) and token(s) revoked" in done.output

    async def check(s: Sessions) -> tuple[bool, bool, list[bool]]:
        old = await users.authenticate(s, "ops-li", OLD)
        new = await users.authenticate(s, "ops-li", NEW)
        alive = [await principal_for_token(s, t, now=time.time()) is not None for t in tokens]
        return old is not None, new is not None, alive

    assert _in_store(url, check) == (False, True, [False, False])


def test_passwd_refuses_short_passwords_and_unknown_accounts(url: str) -> None:
    async def setup(s: Sessions) -> str:
        account = await users.create_user(
            s, username="ops-wu", role=Role.OPERATOR, password=OLD, now=time.time(), scope="滨州市"
        )
        return (await issue_token(s, account, kind="session", now=time.time())).token

    token = _in_store(url, setup)
    runner = CliRunner()
    short = runner.invoke(
        users_app, ["passwd", "--username", "ops-wu", "--password-stdin"], input="short\n"
    )
    assert short.exit_code == 2 and "at least" in short.output
    nobody = runner.invoke(
        users_app, ["passwd", "--username", "nobody", "--password-stdin"], input=NEW + "\n"
    )
    assert nobody.exit_code == 2 and "no account" in nobody.output

    async def check(s: Sessions) -> tuple[bool, bool]:
        still = await users.authenticate(s, "ops-wu", OLD) is not None
        alive = await principal_for_token(s, token, now=time.time()) is not None
        return still, alive

    assert _in_store(url, check) == (True, True)  # a refused change leaves everything as it was
