"""Sign-in work and request bodies cannot stall the gateway: password hashing runs off
the event loop a few at a time, guesses from many addresses at one account are
throttled, and oversized bodies are refused with 413 while they stream in."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Literal

import httpx
import pytest
from argon2 import PasswordHasher

from eldercare.clock import FakeClock
from eldercare.settings import Settings
from gateway import users
from gateway.body_limit import DEFAULT_LIMIT
from gateway.login_guard import LoginGuard
from gateway.password_work import HASH_WORKERS
from gateway.sign_in_throttle import LocalSignInThrottle
from tests.helpers.gateway import (
    PASSWORD,
    Gateway,
    build_gateway,
    db_url,
    in_process_client,
    login,
    serve,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")
CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


class GatedHasher(PasswordHasher):
    """Cheap argon2 whose checks wait at a gate the test opens: while one waits, the
    test can see whether the event loop is still free, and how many run at once."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.gate = threading.Event()
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0
        self.threads: set[str] = set()
        self.timed_out = False

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
            self.threads.add(threading.current_thread().name)
        try:
            if not self.gate.wait(10):
                self.timed_out = True
            return super().verify(hash, password)
        finally:
            with self.lock:
                self.running -= 1


@pytest.fixture
def gated() -> Iterator[GatedHasher]:
    hasher = GatedHasher()
    users.set_password_hasher(hasher)
    yield hasher
    hasher.gate.set()
    users.set_password_hasher(CHEAP)


Gw = tuple[Gateway, httpx.AsyncClient]  # what the `gw` fixture yields


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[Gw]:
    clock = FakeClock(1_770_000_000.0)
    settings = Settings(run_dir=tmp_path / "run", database_url=db_url(tmp_path))
    gateway = await build_gateway(settings, clock)
    async with in_process_client(gateway) as client:
        yield gateway, client


async def _until(condition, within_s: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + within_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def test_the_loop_answers_while_passwords_are_checked(gw: Gw, gated: GatedHasher) -> None:
    _, client = gw
    body = {"username": "admin1", "password": PASSWORD, "token_kind": "bearer"}
    sign_ins = [asyncio.create_task(client.post("/api/auth/login", json=body)) for _ in range(6)]
    await _until(lambda: gated.running == HASH_WORKERS)
    # The hashes are blocked at the gate; the loop still serves other requests.
    health = await asyncio.wait_for(client.get("/healthz"), 5)
    assert health.status_code == 200
    assert gated.running == HASH_WORKERS  # no more than the pool at once
    gated.gate.set()
    results = await asyncio.gather(*sign_ins)
    assert [r.status_code for r in results] == [200] * 6
    assert not gated.timed_out
    assert gated.most == HASH_WORKERS
    assert all(name.startswith("password-hash") for name in gated.threads)


async def test_guesses_from_many_addresses_lock_the_account_for_unknown_ones() -> None:
    guard = LoginGuard(max_failures=10, max_client_failures=30, max_account_failures=50)
    now = 1000.0
    guard.succeeded("op-li", "10.0.0.1")  # her own desk
    for i in range(50):
        client = f"10.1.{i // 250}.{i % 250}"
        assert guard.retry_after("op-li", client, now) is None
        guard.failed("op-li", client, now)
    # A fresh address is now refused for this account, even with the right password...
    wait = guard.retry_after("op-li", "10.9.9.9", now)
    assert wait is not None and 0 < wait <= guard.window_s
    # ...but her desk, which signed in before, still gets in; other accounts are untouched.
    assert guard.retry_after("op-li", "10.0.0.1", now) is None
    assert guard.retry_after("op-wang", "10.9.9.9", now) is None
    # The window passes: everyone may try again.
    assert guard.retry_after("op-li", "10.9.9.9", now + guard.window_s) is None


async def test_account_throttle_through_the_api(gw: Gw) -> None:
    gateway, client = gw
    throttle = gateway.app.state.gateway.login_guard
    assert isinstance(throttle, LocalSignInThrottle)  # one gateway process: in memory
    guard = throttle.guard
    guard.max_account_failures = 5
    wrong = {"username": "op-bincheng", "password": "not-the-password"}
    for i in range(5):
        # httpx's in-process transport reports one client address: vary it per guess.
        guard.failed("op-bincheng", f"192.0.2.{i}", gateway.app.state.gateway.clock.now())
    resp = await client.post("/api/auth/login", json={**wrong, "password": PASSWORD})
    assert resp.status_code == 429 and "Retry-After" in resp.headers


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[tuple[Gateway, str]]:
    clock = FakeClock(1_770_000_000.0)
    settings = Settings(run_dir=tmp_path / "run", database_url=db_url(tmp_path))
    gateway = await build_gateway(settings, clock)
    async with serve(gateway.app) as url:
        yield gateway, url
    await gateway.engine.dispose()


async def test_an_oversized_declared_body_is_refused_unread(live: tuple[Gateway, str]) -> None:
    _, url = live
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        big = b'{"username": "' + b"x" * (DEFAULT_LIMIT + 1) + b'", "password": "p"}'
        resp = await client.post(
            "/api/auth/login", content=big, headers={"content-type": "application/json"}
        )
        assert resp.status_code == 413
        assert "request body too large" in resp.json()["detail"]
        assert (await client.get("/healthz")).status_code == 200


async def test_a_streamed_body_is_cut_off_at_the_limit(live: tuple[Gateway, str]) -> None:
    _, url = live
    sent = 0
    chunk = b"x" * 65536

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"username": "'
        while sent < 200 * 1024 * 1024:
            sent += len(chunk)
            yield chunk

    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        try:
            resp = await client.post(
                "/api/auth/login", content=endless(), headers={"content-type": "application/json"}
            )
        except (httpx.WriteError, httpx.RemoteProtocolError, httpx.ReadError):
            resp = None  # the server stopped reading and closed: also a refusal
        if resp is not None:
            assert resp.status_code == 413, resp.text
            assert "request body too large" in resp.json()["detail"]
    assert sent < 32 * 1024 * 1024, f"the server read {sent} bytes before refusing"


async def test_a_whole_site_may_be_larger_than_a_json_body(live: tuple[Gateway, str]) -> None:
    _, url = live
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        admin = await login(client, "admin1")
        site = {
            "id": "big",
            "kind": "home",
            "name": "big",
            "organisation": "滨州市",
            "address": "x" * 100,
            "notes": "",
        }
        padded = {**site, "residents": [{"id": f"r{i}", "name": "n" * 100} for i in range(3000)]}
        resp = await client.put("/api/sites/big", json=padded, headers=admin)
        assert resp.status_code != 413, resp.text
        too_big = await client.post(
            "/api/alerts/x/notes", json={"text": "n" * (DEFAULT_LIMIT + 10)}, headers=admin
        )
        assert too_big.status_code == 413
