"""Accounts: argon2 hashes, the first admin from the environment (never a default
password), and the `eldercare users` commands."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from eldercare.clock import FakeClock
from eldercare.db import Base, create_engine, session_factory
from eldercare.registry_store import Sessions
from eldercare.settings import Settings
from gateway.users import (
    AccountError,
    Role,
    UserRow,
    authenticate,
    create_user,
    ensure_first_admin,
    list_users,
)
from tests.helpers.gateway import PASSWORD, build_gateway, db_url

on_session_loop = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[Sessions]:
    engine = create_engine(db_url(tmp_path))
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield session_factory(engine)
    await engine.dispose()


@on_session_loop
async def test_passwords_are_argon2_hashes(sessions: Sessions) -> None:
    await create_user(
        sessions,
        username="op1",
        role=Role.OPERATOR,
        password=PASSWORD,
        now=0,
        scope="滨州市/滨城区",
    )
    async with sessions() as s:
        stored = await s.scalar(select(UserRow.password_hash))
    assert stored is not None
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert (await authenticate(sessions, "op1", PASSWORD)) is not None
    assert (await authenticate(sessions, "op1", PASSWORD.upper())) is None


@on_session_loop
async def test_account_rules(sessions: Sessions) -> None:
    with pytest.raises(AccountError, match="at least"):
        await create_user(sessions, username="a1", role=Role.ADMIN, password="short", now=0)
    with pytest.raises(AccountError, match="scope"):
        await create_user(sessions, username="o1", role=Role.OPERATOR, password=PASSWORD, now=0)
    with pytest.raises(AccountError, match="residents"):
        await create_user(sessions, username="f1", role=Role.FAMILY, password=PASSWORD, now=0)
    with pytest.raises(AccountError, match="only family"):
        await create_user(
            sessions,
            username="o2",
            role=Role.OPERATOR,
            password=PASSWORD,
            now=0,
            scope="滨州市",
            residents=["zhang"],
        )


@on_session_loop
async def test_first_admin_only_from_the_environment(sessions: Sessions) -> None:
    assert await ensure_first_admin(sessions, None, 0) is False
    assert await list_users(sessions) == []  # no built-in account, no default password
    assert await ensure_first_admin(sessions, PASSWORD, 0) is True
    assert await ensure_first_admin(sessions, "another-password-1", 0) is False
    assert (await authenticate(sessions, "admin", PASSWORD)) is not None


@on_session_loop
async def test_app_start_creates_the_first_admin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ELDERCARE_ADMIN_PASSWORD", "first-start-secret")
    settings = Settings(run_dir=tmp_path / "run", database_url=db_url(tmp_path))
    gateway = await build_gateway(settings, FakeClock(), with_accounts=False)
    transport = httpx.ASGITransport(app=gateway.app)
    async with (
        gateway.app.router.lifespan_context(gateway.app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as client,
    ):
        resp = await client.post(
            "/api/auth/login", json={"username": "admin", "password": "first-start-secret"}
        )
        assert resp.status_code == 200
        assert resp.json()["account"]["role"] == "admin"
    await gateway.engine.dispose()


def test_users_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from eldercare_app import cli

    monkeypatch.setenv("ELDERCARE_DATABASE_URL", db_url(tmp_path))
    monkeypatch.setenv("ELDERCARE_RUN_DIR", str(tmp_path / "run"))
    cli._register_subcommands()
    runner = CliRunner()
    result = runner.invoke(
        cli.app,
        [
            "users",
            "add",
            "--username",
            "li-mei",
            "--role",
            "family",
            "--residents",
            "hh-401/zhang-xiuying",
            "--password-stdin",
        ],
        input=PASSWORD + "\n",
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        cli.app,
        ["users", "add", "--username", "op7", "--role", "operator", "--password-stdin"],
        input=PASSWORD + "\n",
    )
    assert result.exit_code == 2 and "scope" in result.output
    result = runner.invoke(cli.app, ["users", "list"])
    assert result.exit_code == 0
    assert "li-mei" in result.output and "zhang-xiuying" in result.output
    assert "op7" not in result.output


def test_users_command_links_a_family_contact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio
    import copy

    from eldercare import registry_store
    from eldercare.registry_model import RegistryDocument
    from eldercare_app import cli
    from tests.helpers.gateway import REGISTRY

    async def apply_registry() -> None:
        engine = create_engine(db_url(tmp_path))
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        registry: dict[str, Any] = copy.deepcopy(REGISTRY)
        home = next(site for site in registry["sites"] if site["id"] == "hh-401")
        home["contacts"].append({"id": "grandson", "name": "张伟", "phone": "13500000009"})
        doc = RegistryDocument.model_validate(registry)
        await registry_store.apply_document(session_factory(engine), doc)
        await engine.dispose()

    asyncio.run(apply_registry())
    monkeypatch.setenv("ELDERCARE_DATABASE_URL", db_url(tmp_path))
    monkeypatch.setenv("ELDERCARE_RUN_DIR", str(tmp_path / "run"))
    cli._register_subcommands()
    runner = CliRunner()
    add = ["users", "add", "--role", "family", "--password-stdin"]
    result = runner.invoke(
        cli.app, [*add, "--username", "li-mei", "--contact", "hh-401/daughter"], input=PASSWORD
    )
    assert result.exit_code == 0, result.output
    assert "linked to contact hh-401/daughter" in result.output
    result = runner.invoke(
        cli.app, [*add, "--username", "li-mei2", "--contact", "hh-401/daughter"], input=PASSWORD
    )
    assert result.exit_code == 2 and "linked to an account already" in result.output
    result = runner.invoke(
        cli.app, [*add, "--username", "liu", "--contact-phone", "13600000004"], input=PASSWORD
    )
    assert result.exit_code == 0, result.output
    listing = runner.invoke(cli.app, ["users", "list"]).output
    assert "zhang-xiuying" in listing and "liu-jianguo" in listing
    assert "contact hh-401/daughter" in listing
    # An account made before links existed is linked afterwards.
    result = runner.invoke(
        cli.app, [*add, "--username", "old-family", "--residents", "hh-9/sun-lan"], input=PASSWORD
    )
    assert result.exit_code == 0, result.output
    link = ["users", "link", "--username", "old-family", "--contact", "hh-401/neighbour"]
    result = runner.invoke(cli.app, link)
    assert result.exit_code == 2 and "not family" in result.output
    result = runner.invoke(cli.app, [*link[:4], "--contact", "hh-401/daughter"])
    assert result.exit_code == 2 and "do not live at hh-401" in result.output
    result = runner.invoke(
        cli.app,
        [*add, "--username", "zhang-wei", "--residents", "hh-401/zhang-xiuying"],
        input=PASSWORD,
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        cli.app, ["users", "link", "--username", "zhang-wei", "--contact-phone", "135-0000-0009"]
    )
    assert result.exit_code == 0 and "linked zhang-wei to contact hh-401/grandson" in result.output


def test_login_guard_forgets_old_failures() -> None:
    from gateway.login_guard import MAX_TRACKED, LoginGuard

    guard = LoginGuard(max_failures=3, window_s=60)
    for i in range(3):
        guard.failed("op", "10.0.0.1", now=float(i))
    assert guard.retry_after("op", "10.0.0.1", now=10) == 50
    assert guard.retry_after("op", "10.0.0.2", now=10) is None
    assert guard.retry_after("op", "10.0.0.1", now=61) is None
    for i in range(MAX_TRACKED):  # a guesser cycling through names
        guard.failed(f"name{i}", "10.0.0.9", now=100.0)
    guard.failed("last", "10.0.0.9", now=500.0)
    assert len(guard) == 1


def test_a_storm_of_fresh_names_sweeps_once_per_doubling_not_per_failure() -> None:
    from gateway.login_guard import MAX_TRACKED, LoginGuard

    class Counting(LoginGuard):
        sweeps = 0

        def _sweep(self, now: float) -> None:
            self.sweeps += 1
            super()._sweep(now)

    guard = Counting(max_failures=3, window_s=60)
    for i in range(2 * MAX_TRACKED):  # nothing expires: every sweep finds nothing to drop
        guard.failed(f"name{i}", f"10.0.{i % 250}.{i // 250 % 250}", now=100.0)
    assert len(guard) == 2 * MAX_TRACKED
    assert 1 <= guard.sweeps <= 4
    guard.failed("late", "10.9.9.9", now=100.0 + 60)  # a window later: swept at once
    assert guard.sweeps <= 5 and len(guard) == 1
