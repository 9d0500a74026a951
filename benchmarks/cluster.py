"""The platform as a cluster on NATS JetStream (`eldercare bench cluster`).

Against a local three-node NATS cluster, Mosquitto and InfluxDB started in a temporary
run directory, and a fresh PostgreSQL database (the cluster's store), each role runs
in its own process (`eldercare run --role ...`): one ingest worker, 1, 2, 4... detector
workers, two pipeline instances (one active, one standby) and one gateway. A load
process publishes native readings for N homes in real time (the per-home rate of
`benchmarks.scale`).

For each detector-worker count, after the partitions have settled: the partitions
and homes each worker holds, its CPU (cores) and RSS over the window, and for SOS
presses published during the window, two latencies: publish → transition stored in
JetStream ("lag": ingest and detectors) and publish → the gateway's live stream
("console"). Then the faults, each with an SOS and a fall published while it
happens: kill -9 of a detector worker (an SOS and a fall at homes it held), kill -9
of the active pipeline, and one NATS node of three stopped (the node leading the
readings consumers of the SOS's and the fall's partitions, and the readings stream's
leader where it can be: the worst place to lose a node). For each: how long until
the role was back (partitions re-owned, lease taken), the latencies, and whether any
alert went missing or arrived twice on the live stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from benchmarks.support import (
    REPO,
    Endpoints,
    LoadProcess,
    bench_registry,
    influx_query,
    login,
    machine,
    percentiles_ms,
    prepare_store,
    site_id,
)
from cluster.jetstream import LEASES_BUCKET
from cluster.partitions import (
    READINGS_STREAM,
    TRANSITIONS_STREAM,
    TRANSITIONS_SUBJECT,
    fair_share,
    partition_of,
)
from eldercare_app.cluster_roles import PIPELINE_LEASE
from eldercare_app.local_services import LocalServices, free_port

FAULTS = ("detector", "pipeline", "nats-node")
MSGS_PER_HOME_PER_S = 1505 / 86400  # as benchmarks.scale: a simulated home's rate
USER = ("bench-admin", "bench-password-123")
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


# -- processes ---------------------------------------------------------------------------


@dataclass
class RoleProcess:
    role: str
    name: str
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "eldercare_app.cli", "run", "--role", self.role],
                cwd=REPO,
                env={**self.env, "ELDERCARE_WORKER_ID": self.name},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    @property
    def ps(self) -> psutil.Process:
        assert self.proc is not None
        return psutil.Process(self.proc.pid)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def role_env(
    work: Path, services: LocalServices, database_url: str, http_port: int
) -> dict[str, str]:
    mqtt = services.mosquitto
    return {
        **os.environ,
        "ELDERCARE_CONFIG": str(work / "absent.toml"),
        "ELDERCARE_RUN_DIR": str(work / "run"),
        "ELDERCARE_MQTT_HOST": mqtt.host,
        "ELDERCARE_MQTT_PORT": str(mqtt.port),
        "ELDERCARE_MQTT_CLIENT_ID": "bench-ingest",
        "ELDERCARE_MQTT_TOPICS": '["eldercare/#"]',
        "ELDERCARE_INFLUX_URL": services.influxdb.url,
        "ELDERCARE_INFLUX_DB": "bench_cluster",
        "ELDERCARE_DATABASE_URL": database_url,
        "ELDERCARE_HTTP_PORT": str(http_port),
        "ELDERCARE_PUBLIC_URL": f"http://127.0.0.1:{http_port}",
        "ELDERCARE_NATS_URL": services.nats_url,
        "ELDERCARE_CLUSTER_REPLICAS": "3",
        "ELDERCARE_CLUSTER_LEASE_TTL_S": "5",
        "ELDERCARE_CLUSTER_SNAPSHOT_EVERY_S": "10",
        # INFO shows each partition taken and released (a hand-over's timeline).
        "ELDERCARE_LOG_LEVEL": os.environ.get("ELDERCARE_BENCH_LOG_LEVEL", "WARNING"),
    }


# -- what the bench watches --------------------------------------------------------------


class LiveStream:
    """The gateway's live stream on a thread: every `raised` event, counted per
    (site, kind), with the first arrival time."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url, self.token = base_url, token
        self.first: dict[tuple[str, str], float] = {}
        self.raised: Counter[tuple[str, str]] = Counter()
        self.lock = threading.Lock()
        self.connected = threading.Event()
        self.stopping = False
        threading.Thread(target=self._run, daemon=True).start()
        if not self.connected.wait(60):
            raise RuntimeError("the live stream did not connect")

    def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        with (
            contextlib.suppress(httpx.HTTPError),
            httpx.Client(timeout=httpx.Timeout(10, read=None)) as client,
            client.stream("GET", f"{self.base_url}/api/stream", headers=headers) as resp,
        ):
            kind = ""
            for line in resp.iter_lines():
                if self.stopping:
                    return
                if line.startswith("event:"):
                    kind = line[6:].strip()
                    if kind == "hello":
                        self.connected.set()
                elif line.startswith("data:") and kind == "alert":
                    change = json.loads(line[5:])
                    if change["event"] != "raised":
                        continue
                    key = (change["alert"]["site_id"], change["alert"]["kind"])
                    with self.lock:
                        self.raised[key] += 1
                        self.first.setdefault(key, time.time())


class NatsWatch:
    """A NATS connection on its own loop thread: transitions as they are stored (first
    arrival per site and kind) and the lease bucket."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.first: dict[tuple[str, str], float] = {}
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.call(self._connect())

    def call(self, coro: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _connect(self) -> None:
        import nats

        self.nc = await nats.connect(self.url.split(","), max_reconnect_attempts=-1)
        self.js = self.nc.jetstream(timeout=5)

        async def on_transition(msg: Any) -> None:
            doc = json.loads(msg.data)
            if doc["action"] == "raise":
                self.first.setdefault((doc["site"], doc["kind"]), time.time())

        await self.nc.subscribe(f"{TRANSITIONS_SUBJECT}.*", cb=on_transition)

    async def _leases(self) -> dict[str, str]:
        import nats.js.errors

        try:
            kv = await self.js.key_value(LEASES_BUCKET)
            keys = await kv.keys()
        except (nats.js.errors.NoKeysError, nats.js.errors.BucketNotFoundError):
            return {}
        out = {}
        for key in keys:
            with contextlib.suppress(nats.js.errors.KeyNotFoundError):
                entry = await kv.get(key)
                out[key] = (entry.value or b"").decode()
        return out

    def leases(self) -> dict[str, str]:
        try:
            return dict(self.call(self._leases()))
        except Exception:  # a node away for a moment: no answer this time
            return {}

    async def _leaders(self) -> tuple[str | None, dict[int, str]]:
        stream = await self.js.stream_info(READINGS_STREAM)
        consumers: dict[int, str] = {}
        for info in await self.js.consumers_info(READINGS_STREAM):
            subject = info.config.filter_subject or ""
            if info.cluster is not None and info.cluster.leader and subject.count(".") == 2:
                consumers[int(subject.rsplit(".", 1)[1])] = info.cluster.leader
        return (stream.cluster.leader if stream.cluster else None), consumers

    async def replicas_current(self, consumers_at_least: int) -> bool:
        """Every replica of the readings and transitions streams and of their consumers
        (at least so many on the readings) has a leader and is current."""
        groups = []
        for name in (READINGS_STREAM, TRANSITIONS_STREAM):
            groups.append((await self.js.stream_info(name)).cluster)
            consumers = await self.js.consumers_info(name)
            if name == READINGS_STREAM and len(consumers) < consumers_at_least:
                return False
            groups += [c.cluster for c in consumers]
        for group in groups:
            if group is None or not group.leader:
                return False
            if not all(p.current and not p.offline for p in group.replicas or []):
                return False
        return True

    def leaders(self) -> tuple[str | None, dict[int, str]]:
        """The readings stream's leader node and each partition consumer's."""
        leaders: tuple[str | None, dict[int, str]] = self.call(self._leaders())
        return leaders

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.call(self.nc.close())
        self.loop.call_soon_threadsafe(self.loop.stop)


def holders(leases: dict[str, str], partitions: int) -> dict[int, str]:
    return {
        int(k.split(".")[1]): v
        for k, v in leases.items()
        if k.startswith("partition.") and int(k.split(".")[1]) < partitions
    }


# -- the bench ---------------------------------------------------------------------------


@dataclass
class StepResult:
    workers: int
    homes_per_worker: list[int]
    cpu_cores: list[float]
    rss_mb: list[float]
    mb_per_1000_homes: list[float]
    lag_ms: dict[str, Any]
    console_ms: dict[str, Any]
    ingest_cpu_cores: float
    pipeline_cpu_cores: float
    gateway_cpu_cores: float
    # Per worker: measured at the first step it ran in (no partition it gave up since
    # has left memory behind): the workers `memory_fit` reads.
    fresh: list[bool] = field(default_factory=list)
    settled_s: float | None = None  # from the step's workers started to partitions settled


@dataclass
class FaultResult:
    fault: str
    recovered_s: float | None  # partitions re-owned / lease taken / (NATS: none to wait)
    sos_console_s: float | None
    fall_console_s: float | None
    missing: int
    duplicated: int


@dataclass
class ClusterResult:
    homes: int
    partitions: int
    window_s: float
    steps: list[StepResult] = field(default_factory=list)
    faults: list[FaultResult] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=machine)

    def memory_fit(self) -> tuple[float, float] | None:
        """(baseline MB, MB per 1,000 homes held): a least-squares line through the RSS
        of the workers measured at their first step, against the homes each held; None
        without two different home counts to fit. The baseline is what an empty worker
        would hold (the imports, connections and the loops)."""
        points = [
            (h, r)
            for s in self.steps
            for h, r, new in zip(s.homes_per_worker, s.rss_mb, s.fresh, strict=True)
            if new
        ]
        xs = {h for h, _ in points}
        if len(xs) < 2:
            return None
        n = len(points)
        mx = sum(h for h, _ in points) / n
        my = sum(r for _, r in points) / n
        sxx = sum((h - mx) ** 2 for h, _ in points)
        slope = sum((h - mx) * (r - my) for h, r in points) / sxx
        return round(my - slope * mx, 1), round(slope * 1000, 1)

    def to_json(self) -> dict[str, Any]:
        fit = self.memory_fit()
        return {
            "homes": self.homes,
            "detector_memory": None
            if fit is None
            else {"baseline_mb": fit[0], "mb_per_1000_homes_held": fit[1]},
            "partitions": self.partitions,
            "window_s": self.window_s,
            "steps": [vars(s) for s in self.steps],
            "faults": [vars(f) for f in self.faults],
            "machine": self.machine,
        }


def _wait(condition: Any, timeout_s: float) -> float | None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if condition():
            return time.monotonic() - t0
        time.sleep(0.05)
    return None


def _pg_database() -> tuple[str, str]:
    """A fresh database on the local PostgreSQL: (SQLAlchemy URL, name)."""
    import asyncpg

    name = f"eldercare_bench_{uuid.uuid4().hex[:8]}"

    async def create() -> None:
        conn = await asyncpg.connect(PG_ADMIN)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}", name


def _pg_drop(name: str) -> None:
    import asyncpg

    async def drop() -> None:
        conn = await asyncpg.connect(PG_ADMIN)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    with contextlib.suppress(Exception):
        asyncio.run(drop())


class Bench:
    def __init__(
        self, homes: int, partitions: int, work: Path, lease_ttl_s: float = 5.0, nats_stops: int = 1
    ) -> None:
        self.homes = homes
        self.nats_stops = nats_stops  # the NATS node fault, so many times in turn
        self.lease_ttl_s = lease_ttl_s
        self.partitions = partitions
        self.work = work
        self.prefix = f"c{uuid.uuid4().hex[:4]}-"
        self.services = LocalServices(work / "services-run", mqtt_auth=False, cluster=True)
        self.sample = 0
        self.used: set[str] = set()  # homes an alert was raised at (once each)
        self.roles: list[RoleProcess] = []

    def site_homes(self) -> dict[int, list[str]]:
        by: dict[int, list[str]] = {}
        for i in range(self.homes):
            sid = site_id(self.prefix, i)
            by.setdefault(partition_of(sid, self.partitions), []).append(sid)
        return by

    def spawn(self, role: str, name: str) -> RoleProcess:
        proc = RoleProcess(role, name, self.env, self.work / f"{name}.log")
        proc.start()
        self.roles.append(proc)
        return proc

    def log_tails(self, chars: int = 1500) -> str:
        out = []
        for proc in self.roles:
            with contextlib.suppress(OSError):
                out.append(f"--- {proc.name}\n" + proc.log_path.read_text()[-chars:])
        return "\n".join(out)

    def publish(self, kind: str, site: str) -> float:
        bodies: dict[str, tuple[str, dict[str, object]]] = {
            "sos": (f"eldercare/{site}/{site}-sos/sos", {"pressed": True}),
            "fall": (f"eldercare/{site}/{site}-radar/fall", {"status": "fall"}),
        }
        topic, body = bodies[kind]
        published = time.time()
        self.device.publish(topic, json.dumps({"ts": published, **body}), qos=1)
        return published

    def next_site(self, among: list[str] | None = None) -> str:
        """A home not used by an earlier sample (each alert is a new one)."""
        self.sample += 1
        if among:
            for i in range(len(among)):
                site = among[(self.sample + i) % len(among)]
                if site not in self.used:
                    break
        else:
            site = site_id(self.prefix, (self.sample * 7919) % self.homes)
        self.used.add(site)
        return site

    def run(
        self, worker_counts: list[int], window_s: float, samples: int,
        faults: tuple[str, ...] = FAULTS,
    ) -> ClusterResult:  # fmt: skip
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        result = ClusterResult(self.homes, self.partitions, window_s)
        self.services.up()
        database_url, db_name = _pg_database()
        watch: NatsWatch | None = None
        load: LoadProcess | None = None
        try:
            influx_query(self.services.influxdb.url, 'CREATE DATABASE "bench_cluster"')
            doc = bench_registry(self.homes, self.prefix, None)
            prepare_store(database_url, doc, USER)
            http_port = free_port()
            self.env = role_env(self.work, self.services, database_url, http_port)
            self.env["ELDERCARE_CLUSTER_PARTITIONS"] = str(self.partitions)
            self.env["ELDERCARE_CLUSTER_LEASE_TTL_S"] = str(self.lease_ttl_s)
            watch = NatsWatch(self.services.nats_url)
            gateway = self.spawn("gateway", "gateway-1")
            pipelines = [self.spawn("pipeline", f"pipeline-{i}") for i in (1, 2)]
            ingest = self.spawn("ingest", "ingest-1")
            base = f"http://127.0.0.1:{http_port}"
            if _wait(lambda: _healthy(base), 120) is None:
                raise RuntimeError("the gateway did not start")
            live = LiveStream(base, login(base, USER))
            endpoints = Endpoints(self.services.mosquitto.host, self.services.mosquitto.port or 0,
                                  self.services.influxdb.url)  # fmt: skip
            load = LoadProcess(
                endpoints, self.prefix, self.homes, self.homes * MSGS_PER_HOME_PER_S, 24 * 3600
            )
            load.start()
            self.device = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-device")
            self.device.connect(endpoints.mqtt_host, endpoints.mqtt_port)
            self.device.loop_start()
            detectors: list[RoleProcess] = []
            measured: set[str] = set()
            for count in worker_counts:
                while len(detectors) < count:
                    detectors.append(self.spawn("detectors", f"detectors-{len(detectors) + 1}"))
                names = {d.name for d in detectors}

                def settled(names: set[str] = names) -> bool:
                    owned = holders(watch.leases(), self.partitions)
                    share = fair_share(self.partitions, len(names))
                    return (
                        len(owned) == self.partitions
                        and set(owned.values()) == names
                        and max(Counter(owned.values()).values()) <= share
                    )

                settled_s = _wait(settled, 120)
                if settled_s is None:
                    owned = holders(watch.leases(), self.partitions)
                    raise RuntimeError(
                        f"partitions did not settle over {count} workers: "
                        f"{Counter(owned.values())}\n" + self.log_tails()
                    )
                step = self.measure(detectors, ingest, pipelines, gateway, live, watch,
                                    window_s, samples)  # fmt: skip
                step.fresh = [d.name not in measured for d in detectors]
                step.settled_s = round(settled_s, 1)
                measured.update(d.name for d in detectors)
                result.steps.append(step)
            if faults:
                result.faults += self.faults(detectors, pipelines, live, watch, faults)
            live.stopping = True
        finally:
            if load is not None:
                load.stop()
            with contextlib.suppress(Exception):
                self.device.loop_stop()
            for proc in reversed(self.roles):
                proc.stop()
            if watch is not None:
                watch.close()
            self.services.down()
            _pg_drop(db_name)
        return result

    def measure(
        self,
        detectors: list[RoleProcess],
        ingest: RoleProcess,
        pipelines: list[RoleProcess],
        gateway: RoleProcess,
        live: LiveStream,
        watch: NatsWatch,
        window_s: float,
        samples: int,
    ) -> StepResult:
        owned = holders(watch.leases(), self.partitions)
        by_partition = self.site_homes()
        homes = [
            sum(len(by_partition.get(p, [])) for p, h in owned.items() if h == d.name)
            for d in detectors
        ]
        watched = [*detectors, ingest, *pipelines, gateway]
        cpu0 = [sum(p.ps.cpu_times()[:2]) for p in watched]
        t0 = time.monotonic()
        lags: list[float] = []
        consoles: list[float] = []
        missing = lag_missing = 0
        gap = window_s / max(1, samples)
        for _ in range(samples):
            site = self.next_site()
            published = self.publish("sos", site)
            key = (site, "sos")
            _wait(lambda key=key: key in live.first, 20)
            if key in live.first:
                consoles.append(live.first[key] - published)
            else:
                missing += 1
            if key in watch.first:
                lags.append(watch.first[key] - published)
            else:
                lag_missing += 1
            time.sleep(max(0.0, gap - (time.time() - published)))
        elapsed = time.monotonic() - t0
        cores = [
            (sum(p.ps.cpu_times()[:2]) - c) / elapsed for p, c in zip(watched, cpu0, strict=True)
        ]
        rss = [d.ps.memory_info().rss / 2**20 for d in detectors]
        n = len(detectors)
        return StepResult(
            workers=n,
            homes_per_worker=homes,
            cpu_cores=[round(c, 3) for c in cores[:n]],
            rss_mb=[round(r, 1) for r in rss],
            mb_per_1000_homes=[
                round(r / max(1, h) * 1000, 1) for r, h in zip(rss, homes, strict=True)
            ],
            lag_ms=percentiles_ms(lags, lag_missing),
            console_ms=percentiles_ms(consoles, missing),
            ingest_cpu_cores=round(cores[n], 3),
            pipeline_cpu_cores=round(max(cores[n + 1 : n + 3]), 3),
            gateway_cpu_cores=round(cores[n + 3], 3),
        )

    def _sos_and_fall(
        self, live: LiveStream, among: list[str] | None
    ) -> tuple[float | None, float | None, list[tuple[str, str]]]:
        keys = []
        times = []
        for kind in ("sos", "fall"):
            site = self.next_site(among)
            times.append((site, kind, self.publish(kind, site)))
            keys.append((site, kind))
        _wait(lambda: all(k in live.first for k in keys), 60)
        out: list[float | None] = []
        for site, kind, published in times:
            at = live.first.get((site, kind))
            out.append(None if at is None else at - published)
        return out[0], out[1], keys

    def faults(
        self,
        detectors: list[RoleProcess],
        pipelines: list[RoleProcess],
        live: LiveStream,
        watch: NatsWatch,
        which: tuple[str, ...] = FAULTS,
    ) -> list[FaultResult]:
        results = []
        if "detector" in which:
            results.append(self._kill_detector(detectors, live, watch))
        if "pipeline" in which:
            results += self._kill_pipeline(pipelines, live, watch)
        if "nats-node" in which:
            for _ in range(self.nats_stops):
                results.append(self._stop_nats_node(live, watch))
        return results

    @staticmethod
    def _verdict(live: LiveStream, name: str, recovered: float | None, sos: float | None,
                 fall: float | None, keys: list[tuple[str, str]]) -> FaultResult:  # fmt: skip
        # Give a duplicate the time to show up before counting.
        time.sleep(3)
        with live.lock:
            counts = [live.raised.get(k, 0) for k in keys]
        return FaultResult(
            name,
            None if recovered is None else round(recovered, 2),
            None if sos is None else round(sos, 3),
            None if fall is None else round(fall, 3),
            missing=sum(1 for c in counts if c == 0),
            duplicated=sum(1 for c in counts if c > 1),
        )

    def _kill_detector(
        self, detectors: list[RoleProcess], live: LiveStream, watch: NatsWatch
    ) -> FaultResult:
        """kill -9 a detector worker; an SOS and a fall at homes it held."""
        by_partition = self.site_homes()
        victim = detectors[-1]
        owned = holders(watch.leases(), self.partitions)
        theirs = [p for p, h in owned.items() if h == victim.name]
        sites = [s for p in theirs for s in by_partition.get(p, [])]
        victim.kill9()
        t0 = time.monotonic()
        sos, fall, keys = self._sos_and_fall(live, sites)

        def reowned() -> bool:
            now = holders(watch.leases(), self.partitions)
            return all(p in now and now[p] != victim.name for p in theirs)

        back = _wait(reowned, 120)
        recovered = None if back is None else time.monotonic() - t0
        return self._verdict(live, "kill -9 detector worker", recovered, sos, fall, keys)

    def _kill_pipeline(
        self, pipelines: list[RoleProcess], live: LiveStream, watch: NatsWatch
    ) -> list[FaultResult]:
        results = []
        active_name = watch.leases().get(PIPELINE_LEASE)
        active = next((p for p in pipelines if p.name == active_name), None)
        if active is not None:
            active.kill9()
            t0 = time.monotonic()
            sos, fall, keys = self._sos_and_fall(live, None)
            back = _wait(lambda: watch.leases().get(PIPELINE_LEASE) not in (None, active_name), 120)
            recovered = None if back is None else time.monotonic() - t0
            results.append(
                self._verdict(live, "kill -9 active pipeline", recovered, sos, fall, keys)
            )
        return results

    def _stop_nats_node(self, live: LiveStream, watch: NatsWatch) -> FaultResult:
        """One NATS node of three stopped (and started again after): the one leading the
        readings stream and partition consumers (a consumer with one replica is lost
        with it, a replicated one moves to a survivor). An SOS in one of the partitions
        whose consumer it led, and a fall in every one of them: the fall figure is the
        worst of those."""
        self._replicas_current(watch)  # (a node stopped before has caught up)
        stream_leader, consumers = watch.leaders()
        by_node = Counter(consumers.values())
        # The stream's leader if it leads a consumer too (both move), else the busiest.
        name = stream_leader if by_node.get(stream_leader or "") else by_node.most_common(1)[0][0]
        theirs = sorted(p for p, n in consumers.items() if n == name)
        by_partition = self.site_homes()
        print(
            f"stopping {name} (readings stream leader: {stream_leader}); it leads the "
            f"consumers of partitions {theirs}",
            file=sys.stderr,
        )
        node = next(n for n in self.services.nats if n.name == name)
        node.stop()
        try:
            planned = [("sos", theirs[0])] + [("fall", p) for p in theirs]
            times = []
            for kind, partition in planned:
                site = self.next_site(by_partition.get(partition, []))
                times.append((site, kind, self.publish(kind, site)))
            keys = [(site, kind) for site, kind, _ in times]
            _wait(lambda: all(k in live.first for k in keys), 60)
            sos: float | None = None
            falls: list[float | None] = []
            for site, kind, published in times:
                at = live.first.get((site, kind))
                took = None if at is None else at - published
                if kind == "sos":
                    sos = took
                else:
                    falls.append(took)
            worst = None if None in falls else max(f for f in falls if f is not None)
            stopped = f"NATS node {name} stopped ({len(falls)} falls)"
            return self._verdict(live, stopped, 0.0, sos, worst, keys)
        finally:
            node.start()
            self._replicas_current(watch)

    def _replicas_current(self, watch: NatsWatch, within_s: float = 120) -> None:
        """Wait until every stream and consumer replica is current: a node restarted has
        caught up (before another may stop) and every partition has its consumer."""

        def current() -> bool:
            try:
                return bool(watch.call(watch.replicas_current(self.partitions)))
            except Exception:  # not answering yet
                return False

        if _wait(current, within_s) is None:
            raise RuntimeError("the restarted NATS node did not catch up")


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def run_cluster_bench(
    homes: int,
    worker_counts: list[int],
    window_s: float,
    samples: int,
    partitions: int = 64,
    lease_ttl_s: float = 5.0,
    faults: tuple[str, ...] = FAULTS,
    nats_stops: int = 1,
) -> ClusterResult:
    """`lease_ttl_s`: longer on a machine shared with other work, where a starved worker
    misses its renewals (the failover figures then grow with it). Without `faults`, the
    steps only (a memory measurement); with some, those only."""
    keep = os.environ.get("ELDERCARE_BENCH_WORK")  # keep the role logs there
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        return Bench(homes, partitions, Path(keep), lease_ttl_s, nats_stops).run(
            worker_counts, window_s, samples, faults
        )
    with tempfile.TemporaryDirectory(prefix="eldercare-bench-cluster-") as tmp:
        return Bench(homes, partitions, Path(tmp), lease_ttl_s, nats_stops).run(
            worker_counts, window_s, samples, faults
        )


def render(result: ClusterResult) -> list[str]:
    m = result.machine
    lines = [
        f"homes {result.homes}, partitions {result.partitions}, window {result.window_s} s",
        "workers  homes/worker         cores/worker       RSS MB/worker      MB/1000 homes"
        "      lag p50/p99 ms   console p50/p99 ms   ingest/pipeline/gateway cores",
    ]
    for s in result.steps:
        lines.append(
            f"{s.workers:<8} {s.homes_per_worker!s:<20} {s.cpu_cores!s:<18} {s.rss_mb!s:<18} "
            f"{s.mb_per_1000_homes!s:<18} {s.lag_ms.get('p50')}/{s.lag_ms.get('p99')}"
            f"{'':<8} {s.console_ms.get('p50')}/{s.console_ms.get('p99')}{'':<10}"
            f"{s.ingest_cpu_cores}/{s.pipeline_cpu_cores}/{s.gateway_cpu_cores}"
        )
    lines.append(
        "partitions settled after (s): "
        + ", ".join(f"{s.workers} worker(s) {s.settled_s}" for s in result.steps)
    )
    fit = result.memory_fit()
    if fit is not None:
        lines.append(
            f"detector worker memory (workers at their first step, fitted): baseline {fit[0]} MB"
            f" + {fit[1]} MB per 1,000 homes held"
        )
    lines.append(
        "fault                              back after s  SOS → console s  fall → console s  "
        "missing  duplicated"
    )
    for f in result.faults:
        lines.append(
            f"{f.fault:<34} {f.recovered_s!s:<13} {f.sos_console_s!s:<16} "
            f"{f.fall_console_s!s:<17} {f.missing:<8} {f.duplicated}"
        )
    lines.append(
        f"machine: {m.get('nproc')} cores, {m.get('cpu_model')}, "
        f"load {m.get('loadavg_1_5_15')}, {m.get('date')}"
    )
    return lines
