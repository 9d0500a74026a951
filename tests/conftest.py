"""Shared fixtures: the test session starts its own real Mosquitto and InfluxDB.

They run on free ports in a temporary run directory, so tests never touch a
broker or database that happens to be on the machine, and parallel sessions
never fight over ports.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiosmtpd.controller import Controller
from hypothesis import settings as hypothesis_settings

from alerts.store import AlertStore, init_store
from eldercare.clock import FakeClock
from eldercare.db import create_engine
from eldercare.settings import Settings
from eldercare_app.local_services import ANY_PORT_ENV, LocalServices, NatsCluster
from eldercare_app.mqtt_accounts import PLATFORM_USER
from tests.helpers.alerts import HttpReceiver, Received, SmtpReceiver, free_port, sqlite_url
from tests.helpers.china_providers import FakeChinaProviders
from tests.helpers.examples import FAST_EXAMPLES, FAST_PROFILE

# Services on any free port, never a standard one: the suite's two processes (and the
# `eldercare` subprocesses it runs) start theirs side by side, and two finding 8086 free
# at once both took it (one InfluxDB then failed to listen).
os.environ[ANY_PORT_ENV] = "1"

# Tests that need a real service (one the session starts, or a receiver a test starts:
# HTTP, SMTP, the paid gateways' stand-ins); a test asking for one is an integration test
# wherever it lives (marked below), as is every test in integration/ and e2e/. A test
# that starts a server of its own carries the marker itself; a parameter that picks
# PostgreSQL is marked where it is declared.
SERVICE_FIXTURES = frozenset(
    {
        "local_services",
        "mqtt_addr",
        "influx_url",
        "mqtt_credentials",
        "settings",
        "pg_url",
        "pg_database",
        "nats_cluster",
        "http_receiver",
        "smtp_receiver",
        "providers",
    }
)
TESTS = Path(__file__).resolve().parent

# `make unit` passes --hypothesis-profile=fast: property tests without a count of their own
# draw this many examples, and those with one go through tests.helpers.examples.
hypothesis_settings.register_profile(FAST_PROFILE, max_examples=FAST_EXAMPLES)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark integration tests by what they use and where they live, so `-m "not
    integration"` runs without daemons and no file can forget the marker."""
    for item in items:
        folder = Path(item.path).resolve().relative_to(TESTS).parts[0]
        uses = set(getattr(item, "fixturenames", ()))
        if folder in ("integration", "e2e") or uses & SERVICE_FIXTURES:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """CLI commands run in-process configure logging onto the test's captured stderr;
    put the root logger back so later tests don't log into a closed stream."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(scope="session")
def local_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServices]:
    services = LocalServices(tmp_path_factory.mktemp("services"))
    try:
        services.up()
    except BaseException:
        services.down()  # what did start (the broker, when InfluxDB failed) must not linger
        raise
    yield services
    services.down()


@pytest.fixture(scope="session")
def mqtt_addr(local_services: LocalServices) -> tuple[str, int]:
    port = local_services.mosquitto.port
    assert port is not None
    return local_services.mosquitto.host, port


@pytest.fixture(scope="session")
def influx_url(local_services: LocalServices) -> str:
    return local_services.influxdb.url


@pytest.fixture(scope="session")
def mqtt_credentials(local_services: LocalServices) -> tuple[str, str]:
    """(user, password) of the platform's account on the session broker, which refuses
    anonymous clients: for tests that make their own MQTT clients."""
    password = local_services.mosquitto.platform_password()
    assert password is not None
    return PLATFORM_USER, password


@pytest.fixture
def settings(tmp_path: Path, local_services: LocalServices) -> Settings:
    """Settings pointing at the session's services, with a private run dir and SQLite file."""
    return Settings(
        run_dir=tmp_path / "run",
        mqtt_host=local_services.mosquitto.host,
        mqtt_port=local_services.mosquitto.port or 0,
        mqtt_username=PLATFORM_USER,
        mqtt_password=local_services.mosquitto.platform_password(),
        influx_url=local_services.influxdb.url,
        influx_db=local_services.influxdb.database,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/eldercare.db",
        # Tests publish thousands of readings of one site at once; per-site fairness is
        # tested on its own (tests/integration/test_ingest_fairness.py) with limits on.
        ingest_site_limits=False,
    )


@pytest.fixture(scope="session")
def nats_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    """A local three-node NATS JetStream cluster on free ports (tests wipe its streams)."""
    cluster = NatsCluster(tmp_path_factory.mktemp("nats"))
    for node in cluster.nodes:
        node.start()
    yield cluster
    for node in cluster.nodes:
        node.stop()


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


# --------------------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh, uniquely named PostgreSQL database for this test session (asyncpg URL).

    Uses the server on 127.0.0.1:5432 (trust auth, user postgres or the current
    user) if one answers, else a throwaway cluster started with Debian's
    initdb/pg_ctl on a free port (`ELDERCARE_TEST_PG_CLUSTER=1` forces that).
    The database is dropped at the end of the session.
    """
    import os

    if os.environ.get("ELDERCARE_TEST_PG_CLUSTER") != "1":
        for user in _pg_candidate_users():
            if _pg_run(_pg_ping("127.0.0.1", 5432, user)):
                yield from _pg_fresh_database("127.0.0.1", 5432, user)
                return
    yield from _pg_throwaway_cluster()


@pytest.fixture(scope="session")
def pg_database(pg_url: str) -> Iterator[Callable[[str], str]]:
    """Factory: `pg_database("label")` is the URL of a further empty database on the
    session's PostgreSQL server, so a test module can drop and create its own tables
    without touching tables other modules keep in `pg_url`. Dropped at session end."""
    import uuid

    from sqlalchemy.engine import make_url

    base = make_url(pg_url)
    host, port, user = base.host or "127.0.0.1", base.port or 5432, base.username or "postgres"
    created: list[str] = []

    def make(label: str) -> str:
        name = f"{base.database}_{uuid.uuid4().hex[:6]}_{label}"[:63]
        _pg_run(_pg_admin(host, port, user, f'CREATE DATABASE "{name}"'))
        created.append(name)
        return base.set(database=name).render_as_string(hide_password=False)

    yield make
    _pg_run(_pg_drop_all(host, port, user, created))


def _pg_candidate_users() -> list[str]:
    import getpass

    users = ["postgres"]
    try:
        me = getpass.getuser()
    except (KeyError, OSError):
        return users
    return users if me in users else [*users, me]


def _pg_run(coro: object) -> object:
    """Run a coroutine to completion on a thread of its own (safe inside pytest-asyncio)."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()  # type: ignore[arg-type]


async def _pg_ping(host: str, port: int, user: str) -> bool:
    import asyncpg

    try:
        conn = await asyncpg.connect(
            host=host, port=port, user=user, database="postgres", timeout=3
        )
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    await conn.close()
    return True


async def _pg_admin(host: str, port: int, user: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(host=host, port=port, user=user, database="postgres", timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _pg_drop_all(host: str, port: int, user: str, names: list[str]) -> None:
    """Drop the databases side by side: each DROP DATABASE waits for a checkpoint (2.5 s
    apiece on the loaded test machine), and one after another they took 15 s and more of
    the session's teardown."""
    import asyncio

    at_once = asyncio.Semaphore(8)  # well inside the server's connection limit

    async def drop(name: str) -> None:
        async with at_once:
            await _pg_admin(host, port, user, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    await asyncio.gather(*(drop(name) for name in names))


def _pg_fresh_database(host: str, port: int, user: str) -> Iterator[str]:
    import os
    import uuid

    name = f"eldercare_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    _pg_run(_pg_admin(host, port, user, f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+asyncpg://{user}@{host}:{port}/{name}"
    finally:
        # FORCE: a test that leaked a connection must not leave the database behind.
        _pg_run(_pg_admin(host, port, user, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _pg_throwaway_cluster() -> Iterator[str]:
    import glob
    import os
    import shutil
    import socket
    import subprocess
    import tempfile

    initdbs = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0,
    )
    if not initdbs:
        pytest.fail(
            "PostgreSQL is needed for these tests: nothing answers on 127.0.0.1:5432 "
            "(trust auth, user postgres or the current user) and no initdb was found under "
            "/usr/lib/postgresql/*/bin/. Install the server (apt-get install postgresql) "
            "or start one on 127.0.0.1:5432 with trust authentication."
        )
    bindir = Path(initdbs[-1]).parent
    base = Path(tempfile.mkdtemp(prefix="eldercare-pg-"))
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    if as_root:
        shutil.chown(base, "postgres", "postgres")
    data = base / "data"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = False
    try:
        subprocess.run(
            [*prefix, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
             "-E", "UTF8", "--no-sync"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(base / "log"),
             "-o", options, "-w", "-t", "60", "start"],
            check=True, capture_output=True, timeout=90,
        )  # fmt: skip
        started = True
        yield from _pg_fresh_database("127.0.0.1", port, "postgres")
    except subprocess.CalledProcessError as exc:
        log = (base / "log").read_text(errors="replace") if (base / "log").exists() else ""
        pytest.fail(
            f"could not start a throwaway PostgreSQL with {bindir}: {exc.stderr!r} {log[-2000:]}"
        )
    finally:
        if started:
            subprocess.run(
                [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                capture_output=True, timeout=60,
            )  # fmt: skip
        shutil.rmtree(base, ignore_errors=True)


# Local receivers of notifications (a phone's stand-ins) and an alert store, shared by
# the alert, gateway and platform tests.


@pytest.fixture
def http_receiver() -> Iterator[HttpReceiver]:
    receiver = HttpReceiver(port=0)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            with receiver.lock:
                receiver.received.append(Received(self.path, json.loads(raw.decode("utf-8"))))
            self.send_response(receiver.status)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    server.shutdown()
    server.server_close()


@pytest.fixture
def smtp_receiver() -> Iterator[SmtpReceiver]:
    receiver = SmtpReceiver(port=free_port())

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            receiver.messages.append(message_from_bytes(envelope.content))
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=receiver.port)
    controller.start()
    yield receiver
    controller.stop()


@pytest.fixture
def providers() -> Iterator[FakeChinaProviders]:
    """The local stand-in of the Aliyun and Tencent APIs and a WeCom group bot."""
    with FakeChinaProviders() as p:
        yield p


@pytest_asyncio.fixture(loop_scope="function")
async def store(tmp_path: Path) -> AsyncIterator[AlertStore]:
    engine = create_engine(sqlite_url(tmp_path))
    await init_store(engine)
    yield AlertStore(engine)
    await engine.dispose()
