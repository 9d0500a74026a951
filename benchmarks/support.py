"""Shared parts of the platform benchmarks (`eldercare bench latency|scale`).

The platform under test always runs as its own process (`eldercare run`), the
background load as another (`python -m benchmarks.load`), and the
measurement client (device publishes, live-stream reader, webhook receiver) in
the benchmark's process, so none of them shares an event loop or a GIL with the
platform it measures.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import platform as _platform
import secrets
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from eldercare.registry_model import RegistryDocument

REPO = Path(__file__).resolve().parent.parent

# Devices of every benchmark home (device id `<site>-<name>`: ids are unique across
# sites); report intervals long enough that a run of minutes never judges one offline.
HOME_DEVICES: list[tuple[str, str, str]] = [
    ("gw", "gateway", "living"),
    ("radar", "fall_radar", "bedroom"),
    ("sos", "sos_button", "bedroom"),
    ("pir-bed", "motion", "bedroom"),
    ("pir-liv", "motion", "living"),
    ("pir-bath", "motion", "bathroom"),
    ("bed", "bed", "bedroom"),
    ("door", "door", "entrance"),
]


# -- the machine ------------------------------------------------------------------------


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return _platform.processor() or "unknown"


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def machine() -> dict[str, Any]:
    return {
        "nproc": os.cpu_count() or 0,
        "cpu_model": cpu_model(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "loadavg_1_5_15": loadavg(),
    }


def percentiles_ms(values_s: list[float], missing: int = 0) -> dict[str, Any]:
    """p50/p95/p99/max in milliseconds (nearest rank) of the values and `missing` ones that
    never arrived, which rank above every value: a percentile that falls on one of them is
    None (slower than the wait), never a flattering figure of the arrivals alone."""
    ordered = sorted(values_s)
    total = len(ordered) + missing
    if total == 0:
        return {"n": 0, "missing": 0, "p50": None, "p95": None, "p99": None, "max": None}

    def rank(q: float) -> float | None:
        index = max(0, math.ceil(q * total) - 1)
        return round(ordered[index] * 1000, 1) if index < len(ordered) else None

    return {
        "n": len(ordered),
        "missing": missing,
        "p50": rank(0.50),
        "p95": rank(0.95),
        "p99": rank(0.99),
        "max": round(ordered[-1] * 1000, 1) if ordered and not missing else None,
    }


# -- services ---------------------------------------------------------------------------


@dataclass
class Endpoints:
    mqtt_host: str
    mqtt_port: int
    influx_url: str
    mqtt_username: str | None = None
    mqtt_password: str | None = None

    def mqtt_args(self) -> list[str]:
        """Command-line arguments of `bench_load` for the broker."""
        args = ["--host", self.mqtt_host, "--port", str(self.mqtt_port)]
        if self.mqtt_username:
            args += ["--username", self.mqtt_username, "--password", self.mqtt_password or ""]
        return args


def tcp_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def influx_ok(url: str) -> bool:
    try:
        return httpx.get(f"{url.rstrip('/')}/ping", timeout=2).status_code == 204
    except httpx.HTTPError:
        return False


@contextlib.contextmanager
def bench_services(work: Path, *, use_configured: bool = False) -> Iterator[Endpoints]:
    """The project's own broker and InfluxDB, started in `work` and stopped afterwards,
    so no other traffic on a shared broker loads the platform under test; with
    `use_configured`, the configured ones if they answer."""
    from eldercare.settings import load_settings
    from eldercare_app.local_services import LocalServices

    settings = load_settings()
    if (
        use_configured
        and tcp_open(settings.mqtt_host, settings.mqtt_port)
        and influx_ok(settings.influx_url)
    ):
        yield Endpoints(
            settings.mqtt_host,
            settings.mqtt_port,
            settings.influx_url,
            settings.mqtt_username,
            settings.mqtt_password,
        )
        return
    # Anonymous on loopback: broker authentication is not what is measured here.
    services = LocalServices(work / "services-run", mqtt_auth=False)
    services.up()
    try:
        yield Endpoints(
            services.mosquitto.host, services.mosquitto.port or 0, services.influxdb.url
        )
    finally:
        services.down()


# -- the population ---------------------------------------------------------------------


def site_id(prefix: str, i: int) -> str:
    return f"{prefix}{i:05d}"


def bench_registry(n_homes: int, prefix: str, notify_url: str | None) -> RegistryDocument:
    """N homes, each with the devices of `HOME_DEVICES` and one resident; with
    `notify_url`, an operator contact notified by Apprise at `<notify_url>/<site>`."""
    sites = []
    for i in range(n_homes):
        sid = site_id(prefix, i)
        contacts = []
        if notify_url is not None:
            contacts.append(
                {
                    "id": "duty",
                    "name": "Duty operator",
                    "role": "operator",
                    "language": "en",
                    "apprise": [f"{notify_url}/{sid}"],
                }
            )
        sites.append(
            {
                "id": sid,
                "kind": "home",
                "name": f"Bench home {i}",
                "organisation": f"Bench/District {i // 1000}",
                "address": f"Bench street {i}",
                "rooms": [
                    {"id": "bedroom", "kind": "bedroom"},
                    {"id": "living", "kind": "living"},
                    {"id": "bathroom", "kind": "bathroom"},
                    {"id": "entrance", "kind": "entrance"},
                ],
                "residents": [{"id": "r", "name": f"Resident {i}", "room": "bedroom"}],
                "devices": [
                    {
                        "id": f"{sid}-{dev}",
                        "kind": kind,
                        "room": room,
                        "resident": "r" if kind in ("sos_button", "bed") else None,
                        "report_interval_s": 3600,
                    }
                    for dev, kind, room in HOME_DEVICES
                ],
                "contacts": contacts,
            }
        )
    return RegistryDocument.model_validate({"sites": sites})


async def _prepare_store(database_url: str, doc: RegistryDocument, user: tuple[str, str]) -> None:
    from eldercare.db import create_engine, session_factory
    from eldercare.registry_apply import apply_document
    from eldercare_app.wiring import prepare_store
    from gateway.users import Role, create_user

    engine = create_engine(database_url)
    try:
        await prepare_store(engine)
        sessions = session_factory(engine)
        await apply_document(sessions, doc)
        await create_user(
            sessions, username=user[0], role=Role.ADMIN, password=user[1], now=time.time()
        )
    finally:
        await engine.dispose()


def prepare_store(database_url: str, doc: RegistryDocument, user: tuple[str, str]) -> float:
    """Create the store, apply the registry and an admin account; seconds it took."""
    t0 = time.monotonic()
    asyncio.run(_prepare_store(database_url, doc, user))
    return time.monotonic() - t0


def influx_query(url: str, q: str, db: str | None = None) -> Any:
    params = {"q": q, **({"db": db} if db else {})}
    resp = httpx.post(f"{url.rstrip('/')}/query", params=params, timeout=60)
    resp.raise_for_status()
    return resp.json()


# -- the platform process ---------------------------------------------------------------


def metric_values(text: str) -> dict[str, float]:
    """Unlabelled samples of a Prometheus text page, by name; labelled ones summed."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_part, _, value = line.rpartition(" ")
        name = name_part.split("{", 1)[0]
        with contextlib.suppress(ValueError):
            values[name] = values.get(name, 0.0) + float(value)
    return values


@dataclass
class PlatformProcess:
    """`eldercare run` in its own process, configured through the environment."""

    work: Path
    endpoints: Endpoints
    influx_db: str
    database_url: str
    http_port: int
    profile: Path | None = None
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)
    # /metrics is private: the benchmark gives the platform its scrape token.
    metrics_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    # Background loads send more per home than a home's devices would: limits off,
    # except where fairness is what is measured (`bench flood`).
    site_limits: bool = False
    emergency_lane: bool = True

    def __post_init__(self) -> None:
        self.log_path = self.work / "platform.log"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "ELDERCARE_CONFIG": str(self.work / "absent.toml"),
            "ELDERCARE_RUN_DIR": str(self.work / "run"),
            "ELDERCARE_MQTT_HOST": self.endpoints.mqtt_host,
            "ELDERCARE_MQTT_PORT": str(self.endpoints.mqtt_port),
            "ELDERCARE_MQTT_USERNAME": self.endpoints.mqtt_username or "",
            "ELDERCARE_MQTT_PASSWORD": self.endpoints.mqtt_password or "",
            "ELDERCARE_MQTT_CLIENT_ID": f"bench-platform-{os.getpid()}-{self.http_port}",
            "ELDERCARE_MQTT_TOPICS": '["eldercare/#"]',
            "ELDERCARE_INFLUX_URL": self.endpoints.influx_url,
            "ELDERCARE_INFLUX_DB": self.influx_db,
            "ELDERCARE_DATABASE_URL": self.database_url,
            "ELDERCARE_HTTP_PORT": str(self.http_port),
            "ELDERCARE_METRICS_TOKEN": self.metrics_token,
            "ELDERCARE_INGEST_SITE_LIMITS": "true" if self.site_limits else "false",
            "ELDERCARE_INGEST_EMERGENCY_LANE": "true" if self.emergency_lane else "false",
            "ELDERCARE_PUBLIC_URL": self.base_url,
            "ELDERCARE_LOG_LEVEL": "WARNING",
        }

    def start(self, timeout_s: float = 180.0) -> None:
        cmd = [sys.executable, "-m", "eldercare_app.cli", "run"]
        if self.profile is not None:
            cmd = [sys.executable, "-m", "pyinstrument", "-r", "text", "-o", str(self.profile)]
            cmd += ["-m", "eldercare_app.cli", "run"]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                cmd, cwd=REPO, env=self.env(), stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout_s
        while self.metrics().get("eldercare_ingest_mqtt_connected") != 1.0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the platform did not start:\n" + self.log_tail())
            time.sleep(0.2)

    def log_tail(self, chars: int = 3000) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-chars:]
        return ""

    def metrics(self) -> dict[str, float]:
        try:
            resp = httpx.get(
                f"{self.base_url}/metrics",
                headers={"Authorization": f"Bearer {self.metrics_token}"},
                timeout=5,
            )
            return metric_values(resp.text)
        except httpx.HTTPError:
            return {}

    def psutil_process(self) -> Any:
        import psutil

        assert self.proc is not None
        proc = psutil.Process(self.proc.pid)
        if self.profile is not None:
            # pyinstrument runs the platform in-process; no child to look for.
            return proc
        return proc

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(2 if self.profile is not None else 15)
        try:
            self.proc.wait(120 if self.profile is not None else 60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def login(base_url: str, user: tuple[str, str]) -> str:
    resp = httpx.post(
        f"{base_url}/api/auth/login",
        json={"username": user[0], "password": user[1], "token_kind": "bearer"},
        timeout=30,
    )
    resp.raise_for_status()
    return str(resp.json()["token"])


# -- the load generator process --------------------------------------------------------


@dataclass
class LoadProcess:
    """`python -m benchmarks.load` publishing native readings at a set rate."""

    endpoints: Endpoints
    prefix: str
    homes: int
    rate: float
    duration_s: float
    proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.load",
                *self.endpoints.mqtt_args(),
                "--prefix",
                self.prefix,
                "--homes",
                str(self.homes),
                "--rate",
                str(self.rate),
                "--duration",
                str(self.duration_s),
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if line.strip() != "started":
            raise RuntimeError(f"load generator did not start: {line!r}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(15)

    def result(self, timeout_s: float = 60) -> dict[str, Any]:
        assert self.proc is not None
        out, _ = self.proc.communicate(timeout=timeout_s)
        return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


# -- measurement clients ----------------------------------------------------------------


class StreamReader:
    """The gateway's live stream (SSE), read on a thread; first arrival per
    (site, kind, event)."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url
        self.token = token
        self.arrivals: dict[tuple[str, str, str], float] = {}
        self.lock = threading.Lock()
        self.connected = threading.Event()
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> StreamReader:
        self.thread.start()
        if not self.connected.wait(30):
            raise RuntimeError("the live stream did not connect")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping = True

    def first(self, site: str, kind: str, event: str = "raised") -> float | None:
        with self.lock:
            return self.arrivals.get((site, kind, event))

    def _run(self) -> None:
        try:
            self._read()
        except httpx.HTTPError:
            if not self.stopping:  # the platform going away at the end is expected
                raise

    def _read(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "text/event-stream"}
        url = f"{self.base_url}/api/stream"
        with (
            httpx.Client(timeout=httpx.Timeout(10, read=None)) as client,
            client.stream("GET", url, headers=headers) as resp,
        ):
            resp.raise_for_status()
            kind = ""
            for line in resp.iter_lines():
                at = time.time()
                if self.stopping:
                    return
                if line.startswith("event:"):
                    kind = line[6:].strip()
                    if kind == "hello":
                        self.connected.set()
                elif line.startswith("data:") and kind == "alert":
                    change = json.loads(line[5:])
                    alert = change["alert"]
                    key = (alert["site_id"], alert["kind"], change["event"])
                    with self.lock:
                        self.arrivals.setdefault(key, at)


def stored_at(database_path: Path, site: str, kind: str) -> float | None:
    """Wall time the platform stored the alert (`alerts.created_at`), read-only."""
    with contextlib.closing(
        sqlite3.connect(f"file:{database_path}?mode=ro", uri=True, timeout=30)
    ) as conn:
        row = conn.execute(
            "SELECT min(created_at) FROM alerts WHERE site = ? AND kind = ?", (site, kind)
        ).fetchone()
    return None if row is None or row[0] is None else float(row[0])
