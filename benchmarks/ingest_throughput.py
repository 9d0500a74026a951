"""The ingest benchmark: sustained messages/s from MQTT into InfluxDB, with zero loss.

`eldercare bench ingest --messages N` runs, against a broker and InfluxDB of its own
(started in a temporary run directory; `--configured-services` uses the configured ones):

1. the ceiling: a bare paho subscriber (QoS 1, acknowledging on receipt, doing
   nothing else) in its own process, while a publisher process sends N QoS 1
   native messages as fast as the broker takes them;
2. the standalone ingest (`eldercare ingest run`) in its own process, with the
   same publisher and N new messages: the time from the first publish until
   ingest has written all N to InfluxDB gives the sustained rate; InfluxDB is
   then asked for count and distinct count of the messages' sequence numbers
   (zero loss means both equal N); the ingest process's CPU time over the run
   divided by N gives CPU µs per message.

The publisher speaks MQTT 3.1.1 over a plain socket with pre-built packets and a
window of unacknowledged publishes, so that it costs the shared CPUs as little
as possible and the figure measures ingest, not the load generator.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from eldercare.raw_mqtt import connect, publish_packet

N_DEVICES = 100
REPO = Path(__file__).resolve().parent.parent


# -- the load generator -------------------------------------------------------------


def bench_messages(site: str, n: int, base_ts: float) -> Iterator[tuple[str, bytes]]:
    """N native heartbeats with sequence numbers and distinct event times."""
    for i in range(n):
        topic = f"eldercare/{site}/d{i % N_DEVICES}/heartbeat"
        yield topic, b'{"ts":%.6f,"seq":%d}' % (base_ts + i * 0.001, i)


def publish_fast(
    host: str, port: int, messages: list[tuple[str, bytes]], *, window: int = 2000
) -> dict[str, float]:
    """Publish QoS 1 messages with at most `window` unacknowledged; return timings."""
    packets = [
        publish_packet(topic.encode(), i % 65535 + 1, payload)
        for i, (topic, payload) in enumerate(messages)
    ]
    # A broker that refuses anonymous clients: log in as ELDERCARE_MQTT_USERNAME.
    sock = connect(
        host,
        port,
        f"bench-pub-{os.getpid()}",
        os.environ.get("ELDERCARE_MQTT_USERNAME"),
        os.environ.get("ELDERCARE_MQTT_PASSWORD", ""),
    )
    sent = acked = 0
    pending = b""
    t_first = time.time()
    while acked < len(packets):
        room = min(window - (sent - acked), len(packets) - sent, 500)
        if room > 0:
            sock.sendall(b"".join(packets[sent : sent + room]))
            sent += room
        if sent - acked >= window or sent == len(packets):
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("broker closed the connection")
            pending += data
            # Only PUBACKs (4 bytes: 0x40 0x02 id id) come back to a publisher.
            acked += len(pending) // 4
            pending = pending[len(pending) // 4 * 4 :]
        else:
            sock.setblocking(False)
            try:
                data = sock.recv(65536)
                pending += data
                acked += len(pending) // 4
                pending = pending[len(pending) // 4 * 4 :]
            except BlockingIOError:
                pass
            finally:
                sock.setblocking(True)
    t_done = time.time()
    sock.sendall(b"\xe0\x00")
    sock.close()
    return {"t_first": t_first, "t_done": t_done, "n": len(packets)}


def _publisher_main(args: argparse.Namespace) -> None:
    messages = list(bench_messages(args.site, args.n, args.base_ts))
    print("ready", flush=True)
    sys.stdin.readline()  # go
    result = publish_fast(args.host, args.port, messages)
    print(json.dumps(result), flush=True)


# -- the ceiling: a bare subscriber ----------------------------------------------------


def _bare_main(args: argparse.Namespace) -> None:
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=f"bench-bare-{os.getpid()}", clean_session=False
    )
    state: dict[str, Any] = {"n": 0, "t_last": 0.0}

    def on_message(c: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        state["n"] += 1
        if state["n"] >= args.n:
            state["t_last"] = time.time()
            c.disconnect()

    def on_subscribe(*_: Any) -> None:
        print("ready", flush=True)

    def on_connect(c: paho.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            print(f"broker refused the subscriber: {reason}", flush=True)
            c.disconnect()

    client.on_message = on_message
    client.on_subscribe = on_subscribe
    client.on_connect = on_connect
    if os.environ.get("ELDERCARE_MQTT_USERNAME"):
        client.username_pw_set(
            os.environ["ELDERCARE_MQTT_USERNAME"], os.environ.get("ELDERCARE_MQTT_PASSWORD")
        )
    client.connect(args.host, args.port)
    client.subscribe(f"eldercare/{args.site}/#", 1)
    client.loop_forever()
    print(json.dumps({"n": state["n"], "t_last": state["t_last"]}), flush=True)


# -- orchestration ------------------------------------------------------------------------


@dataclass
class IngestBenchResult:
    messages: int
    publisher_msgs_per_s: float
    bare_subscriber_msgs_per_s: float
    ingest_msgs_per_s: float
    ingest_vs_bare: float
    influx_count: int
    influx_distinct: int
    zero_loss: bool
    ingest_cpu_us_per_msg: float
    nproc: int
    cpu_model: str
    date: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _spawn(args: list[str], env: dict[str, str] | None = None, **kw: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=REPO,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        **kw,
    )


def _expect_ready(proc: subprocess.Popen[str], what: str, within: float = 60.0) -> None:
    assert proc.stdout is not None
    readable, _, _ = select.select([proc.stdout], [], [], within)
    line = proc.stdout.readline() if readable else ""
    if line.strip() != "ready":
        proc.kill()
        raise RuntimeError(f"{what} did not start within {within:.0f} s: {line!r}")


def _publisher(host: str, port: int, site: str, n: int) -> subprocess.Popen[str]:
    proc = _spawn(
        [
            "-m",
            "benchmarks.ingest_throughput",
            "publish",
            "--host",
            host,
            "--port",
            str(port),
            "--site",
            site,
            "--n",
            str(n),
            "--base-ts",
            str(time.time() - 3600),
        ]
    )
    _expect_ready(proc, "publisher")
    return proc


def _go(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.write("go\n")
    proc.stdin.flush()


def _result(proc: subprocess.Popen[str], timeout: float = 300) -> dict[str, Any]:
    out, _ = proc.communicate(timeout=timeout)
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def measure_bare(host: str, port: int, n: int) -> tuple[float, float]:
    """(publisher msgs/s, bare subscriber msgs/s) for n messages."""
    site = f"bare{os.getpid()}"
    args = ["--host", host, "--port", str(port), "--site", site, "--n", str(n)]
    sub = _spawn(["-m", "benchmarks.ingest_throughput", "bare", *args])
    _expect_ready(sub, "bare subscriber")
    pub = _publisher(host, port, site, n)
    _go(pub)
    p = _result(pub)
    s = _result(sub)
    return n / (p["t_done"] - p["t_first"]), n / (s["t_last"] - p["t_first"])


async def _influx_counts(url: str, db: str) -> tuple[int, int]:
    from eldercare.influx import InfluxClient

    async with InfluxClient(url, timeout=60) as client:
        rows = await client.query("SELECT count(seq), count(distinct(seq)) FROM heartbeat", db)
    if not rows:
        return 0, 0
    return int(rows[0]["count"]), int(rows[0]["count_1"])


def _metric(url: str, name: str) -> float | None:
    import httpx

    try:
        text = httpx.get(url, timeout=2).text
    except httpx.HTTPError:
        return None
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def measure_ingest(
    mqtt: tuple[str, int], influx_url: str, n: int, work: Path, profile: Path | None = None
) -> dict[str, Any]:
    import asyncio

    import psutil

    from eldercare.db import create_engine, session_factory
    from eldercare.influx import InfluxClient, quote_ident
    from eldercare.registry_model import RegistryDocument
    from eldercare.registry_store import apply_document, init_store
    from eldercare_app.local_services import free_port

    site = f"bench{os.getpid()}"
    db = f"bench_{int(time.time())}"
    database_url = f"sqlite+aiosqlite:///{work}/eldercare.db"
    doc = RegistryDocument.model_validate(
        {
            "sites": [
                {
                    "id": site,
                    "kind": "home",
                    "name": "bench",
                    "organisation": "bench",
                    "rooms": [{"id": "living", "kind": "living"}],
                    "residents": [{"id": "r1", "name": "R"}],
                    "devices": [
                        {"id": f"d{i}", "kind": "gateway", "room": "living"}
                        for i in range(N_DEVICES)
                    ],
                }
            ]
        }
    )

    async def prepare() -> None:
        engine = create_engine(database_url)
        await init_store(engine)
        await apply_document(session_factory(engine), doc)
        await engine.dispose()
        async with InfluxClient(influx_url) as client:
            await client.query(f"CREATE DATABASE {quote_ident(db)}")

    asyncio.run(prepare())
    http_port = free_port()
    metrics_url = f"http://127.0.0.1:{http_port}/metrics"
    env = {
        **os.environ,
        "ELDERCARE_CONFIG": str(work / "absent.toml"),
        "ELDERCARE_RUN_DIR": str(work / "run"),
        "ELDERCARE_MQTT_HOST": mqtt[0],
        "ELDERCARE_MQTT_PORT": str(mqtt[1]),
        "ELDERCARE_MQTT_CLIENT_ID": f"bench-ingest-{os.getpid()}",
        "ELDERCARE_MQTT_TOPICS": f'["eldercare/{site}/#"]',
        "ELDERCARE_INFLUX_URL": influx_url,
        "ELDERCARE_INFLUX_DB": db,
        "ELDERCARE_DATABASE_URL": database_url,
        "ELDERCARE_HTTP_PORT": str(http_port),
        "ELDERCARE_LOG_LEVEL": "WARNING",
        # Throughput of one site as fast as it goes: not what a site may send in service.
        "ELDERCARE_INGEST_SITE_LIMITS": "false",
    }
    cmd = ["-m", "eldercare_app.cli", "ingest", "run"]
    if profile is not None:
        cmd = ["-m", "pyinstrument", "-r", "text", "-o", str(profile), *cmd]
    log_path = work / "ingest.log"
    with open(log_path, "w") as log:
        ingest = subprocess.Popen(
            [sys.executable, *cmd], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while _metric(metrics_url, "eldercare_ingest_mqtt_connected") != 1:
            if ingest.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("ingest did not start:\n" + log_path.read_text()[-2000:])
            time.sleep(0.1)
        proc = psutil.Process(ingest.pid)
        if profile is not None:
            proc = proc.children()[0] if proc.children() else proc
        pub = _publisher(mqtt[0], mqtt[1], site, n)
        cpu0 = sum(proc.cpu_times()[:2])
        _go(pub)
        p = _result(pub)
        deadline = time.monotonic() + max(120.0, n / 500)
        while (_metric(metrics_url, "eldercare_ingest_written_total") or 0) < n:
            if ingest.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("ingest stalled:\n" + log_path.read_text()[-2000:])
            time.sleep(0.02)
        t_written = time.time()
        cpu1 = sum(proc.cpu_times()[:2])
        count, distinct = asyncio.run(_influx_counts(influx_url, db))
    finally:
        ingest.send_signal(2 if profile is not None else 15)
        try:
            ingest.wait(60)
        except subprocess.TimeoutExpired:
            ingest.kill()

        async def drop() -> None:
            async with InfluxClient(influx_url) as client:
                await client.query(f"DROP DATABASE {quote_ident(db)}")

        with contextlib.suppress(Exception):
            asyncio.run(drop())
    return {
        "publisher_msgs_per_s": n / (p["t_done"] - p["t_first"]),
        "ingest_msgs_per_s": n / (t_written - p["t_first"]),
        "count": count,
        "distinct": distinct,
        "cpu_us_per_msg": (cpu1 - cpu0) / n * 1e6,
    }


def run_ingest_bench(
    messages: int, profile: Path | None = None, use_configured: bool = False
) -> IngestBenchResult:
    """Run both measurements against temporary local services (started and stopped
    here, so no other traffic shares them), or the configured ones with `use_configured`."""
    from benchmarks.support import bench_services

    with (
        tempfile.TemporaryDirectory(prefix="eldercare-bench-") as tmp,
        bench_services(Path(tmp), use_configured=use_configured) as ends,
    ):
        # Helper processes inherit the environment; the ingest child gets it too.
        os.environ["ELDERCARE_MQTT_USERNAME"] = ends.mqtt_username or ""
        os.environ["ELDERCARE_MQTT_PASSWORD"] = ends.mqtt_password or ""
        mqtt = (ends.mqtt_host, ends.mqtt_port)
        publisher_rate, bare_rate = measure_bare(*mqtt, messages)
        ingest = measure_ingest(mqtt, ends.influx_url, messages, Path(tmp), profile)
    zero_loss = ingest["count"] == messages and ingest["distinct"] == messages
    return IngestBenchResult(
        messages=messages,
        publisher_msgs_per_s=round(min(publisher_rate, ingest["publisher_msgs_per_s"])),
        bare_subscriber_msgs_per_s=round(bare_rate),
        ingest_msgs_per_s=round(ingest["ingest_msgs_per_s"]),
        ingest_vs_bare=round(ingest["ingest_msgs_per_s"] / bare_rate, 3),
        influx_count=ingest["count"],
        influx_distinct=ingest["distinct"],
        zero_loss=zero_loss,
        ingest_cpu_us_per_msg=round(ingest["cpu_us_per_msg"], 1),
        nproc=os.cpu_count() or 0,
        cpu_model=_cpu_model(),
        date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    )


def main(argv: list[str] | None = None) -> None:
    """Helper processes of the benchmark (`python -m benchmarks.ingest_throughput publish|bare`)."""
    parser = argparse.ArgumentParser(prog="benchmarks.ingest_throughput")
    sub = parser.add_subparsers(dest="role", required=True)
    for role in ("publish", "bare"):
        p = sub.add_parser(role)
        p.add_argument("--host", required=True)
        p.add_argument("--port", type=int, required=True)
        p.add_argument("--site", required=True)
        p.add_argument("--n", type=int, required=True)
        p.add_argument("--base-ts", type=float, default=time.time() - 3600)
    args = parser.parse_args(argv)
    if args.role == "publish":
        _publisher_main(args)
    else:
        _bare_main(args)


if __name__ == "__main__":
    main()
