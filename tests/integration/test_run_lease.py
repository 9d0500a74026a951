"""One `eldercare run` per store: a second one refuses to start, naming the first, and a
`kill -9`'d holder blocks a restart only until its lease expires."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from eldercare.db import create_engine, session_factory
from eldercare.migrate import upgrade
from eldercare.registry_store import Sessions
from eldercare_app.run_lease import LeaseHeld, RunLease
from eldercare_app.wiring import import_all_tables

pytestmark = pytest.mark.asyncio(loop_scope="session")


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[tuple[str, Sessions]]:
    import_all_tables()
    url = f"sqlite+aiosqlite:///{tmp_path}/store.db"
    engine = create_engine(url)
    await upgrade(engine)
    yield url, session_factory(engine)
    await engine.dispose()


async def test_a_second_holder_is_refused_until_the_first_expires(
    store: tuple[str, Sessions],
) -> None:
    _, sessions = store
    clock = Clock(1_770_000_000.0)
    first = RunLease(sessions, ttl_s=30, now=clock)
    second = RunLease(sessions, ttl_s=30, now=clock)
    await first.acquire()
    clock.t += 10
    assert await first.renew()
    clock.t += 29  # 29 s after the renewal: still live
    with pytest.raises(LeaseHeld) as held:
        await second.acquire()
    message = str(held.value)
    assert f"pid {os.getpid()}" in message and "started 2026-02-02 02:40:00 UTC" in message
    assert "renewed 29 s ago" in message
    # The first stops renewing (killed): past the expiry the second takes over...
    clock.t += 2
    await second.acquire()
    # ...and the first, should it wake up, learns it lost the store.
    assert not await first.renew()
    assert first.lost.is_set()
    # A clean stop releases at once.
    await second.release()
    await first.acquire()


HOLDER = """
import asyncio, sys
from eldercare.db import create_engine, session_factory
from eldercare_app.run_lease import RunLease

async def main() -> None:
    lease = RunLease(session_factory(create_engine(sys.argv[1])), ttl_s=float(sys.argv[2]))
    await lease.acquire()
    print("held", flush=True)
    await lease.keep()

asyncio.run(main())
"""


@pytest.mark.integration
async def test_eldercare_run_refuses_a_held_store_and_a_killed_holder_expires(
    store: tuple[str, Sessions], tmp_path: Path
) -> None:
    url, sessions = store
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOLDER, url, "3", stdout=asyncio.subprocess.PIPE
    )
    try:
        assert holder.stdout is not None
        assert (await asyncio.wait_for(holder.stdout.readline(), 30)).strip() == b"held"
        env = {
            **os.environ,
            "ELDERCARE_DATABASE_URL": url,
            "ELDERCARE_RUN_DIR": str(tmp_path / "run"),
            "ELDERCARE_MQTT_HOST": "127.0.0.1",
            "ELDERCARE_MQTT_PORT": "9",  # nothing listens: it must stop before connecting
            "ELDERCARE_HTTP_PORT": "9",
        }
        second = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).parent / "eldercare"),
            "run",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(second.communicate(), 60)
        stderr = err.decode()
        assert second.returncode == 2, stderr
        assert "another `eldercare run` is using this store" in stderr
        assert f"pid {holder.pid}" in stderr
        # kill -9: no release; the lease frees itself once its 3 s have passed.
        holder.send_signal(signal.SIGKILL)
        await asyncio.wait_for(holder.wait(), 10)
        mine = RunLease(sessions, ttl_s=30)
        deadline = time.monotonic() + 15
        while True:
            try:
                await mine.acquire()
                break
            except LeaseHeld:
                assert time.monotonic() < deadline, "the killed holder's lease never expired"
                await asyncio.sleep(0.2)
        await mine.release()
    finally:
        if holder.returncode is None:
            holder.kill()
            await holder.wait()


async def test_cluster_roles_share_the_store_while_two_plain_runs_are_refused(
    store: tuple[str, Sessions], tmp_path: Path
) -> None:
    """The lease is the single-process platform's: a cluster's gateways (and the other
    roles, which never take it) run side by side on one store."""
    from eldercare.settings import Settings
    from eldercare_app.wiring import build_platform

    url, _ = store

    def settings(name: str) -> Settings:
        return Settings(run_dir=tmp_path / name, database_url=url, http_port=0)

    # Two gateway roles, built as `eldercare run --role gateway` builds them, both start.
    gateways = [
        await build_platform(settings(f"gw{i}"), serve_http=True, stages=False) for i in (1, 2)
    ]
    try:
        for gateway in gateways:
            assert gateway.lease is None
            await gateway.start()
            assert gateway.http_server is not None and gateway.http_server.started
    finally:
        for gateway in gateways:
            await gateway.stop()
    # Two plain `eldercare run`s on the same store: the second is refused.
    first = await build_platform(settings("run1"), serve_http=False)
    try:
        assert first.lease is not None
        with pytest.raises(LeaseHeld):
            await build_platform(settings("run2"), serve_http=False)
    finally:
        if first.lease is not None:
            await first.lease.release()
        await first.engine.dispose()
