"""Fault (a): standalone ingest killed with SIGKILL mid-stream loses nothing.

The ingest runs as a real process (`python -m eldercare_app.cli ingest run`). While
20,000 QoS 1 messages stream in, it is killed with `kill -9` and started again:
the broker redelivers every unacknowledged message to the persistent session,
so InfluxDB ends up with every sequence number exactly once.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from eldercare.influx import InfluxClient
from eldercare.settings import Settings
from eldercare_app.cli import app
from eldercare_app.local_services import free_port
from tests.helpers.ingest import (
    Publisher,
    heartbeat,
    recreate_db,
    registry_document,
    seq_counts,
    store_registry,
    unique,
)
from tests.helpers.polling import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

N_MESSAGES = 20_000
REPO = Path(__file__).resolve().parents[2]


class IngestProcess:
    def __init__(self, env: dict[str, str], log_path: Path, metrics_url: str) -> None:
        self.env = env
        self.log_path = log_path
        self.metrics_url = metrics_url
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "eldercare_app.cli", "ingest", "run"],
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def metrics(self) -> dict[str, float]:
        try:
            text = httpx.get(self.metrics_url, timeout=1).text
        except httpx.HTTPError:
            return {}
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
        return out

    async def wait_connected(self, within: float = 30) -> None:
        async def connected() -> bool:
            assert self.proc is not None and self.proc.poll() is None, self.log_tail()
            m = await asyncio.to_thread(self.metrics)
            return m.get("eldercare_ingest_mqtt_connected") == 1

        await wait_for(connected, within, "ingest connected", every_s=0.25, detail=self.log_tail)

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return ""


@pytest.fixture
def ingest_process(settings: Settings, tmp_path: Path) -> Iterator[tuple[IngestProcess, str, str]]:
    site = unique("kill")
    db = unique("fault_a_")
    http_port = free_port()
    env = {
        **os.environ,
        "ELDERCARE_CONFIG": str(tmp_path / "absent.toml"),
        "ELDERCARE_RUN_DIR": str(settings.run_dir),
        "ELDERCARE_MQTT_HOST": settings.mqtt_host,
        "ELDERCARE_MQTT_PORT": str(settings.mqtt_port),
        "ELDERCARE_MQTT_USERNAME": settings.mqtt_username or "",
        "ELDERCARE_MQTT_PASSWORD": settings.mqtt_password or "",
        "ELDERCARE_MQTT_CLIENT_ID": unique("ingest-kill-"),
        "ELDERCARE_MQTT_TOPICS": f'["eldercare/{site}/#"]',
        "ELDERCARE_INFLUX_URL": settings.influx_url,
        "ELDERCARE_INFLUX_DB": db,
        "ELDERCARE_DATABASE_URL": settings.database_url,
        "ELDERCARE_HTTP_HOST": "127.0.0.1",
        "ELDERCARE_HTTP_PORT": str(http_port),
        "ELDERCARE_LOG_LEVEL": "INFO",
        # One site sends 20,000 readings at once: a crash test, not a fairness test.
        "ELDERCARE_INGEST_SITE_LIMITS": "false",
    }
    process = IngestProcess(env, tmp_path / "ingest.log", f"http://127.0.0.1:{http_port}/metrics")
    yield process, site, db
    process.stop()


async def test_kill_9_mid_stream_loses_and_duplicates_nothing(
    settings: Settings, mqtt_addr: tuple[str, int], ingest_process: tuple[IngestProcess, str, str]
) -> None:
    process, site, db = ingest_process
    await recreate_db(settings.influx_url, db)
    await store_registry(settings.database_url, registry_document(site=site))
    process.start()
    await process.wait_connected()

    base = time.time() - 120
    publisher = Publisher(
        *mqtt_addr,
        client_id=unique("pub-kill-"),
        credentials=(settings.mqtt_username or "", settings.mqtt_password),
    )
    try:
        stream = asyncio.create_task(
            asyncio.to_thread(
                publisher.publish_all, [heartbeat(i, base, site=site) for i in range(N_MESSAGES)]
            )
        )

        async def some_written() -> bool:
            return (await seq_counts(settings.influx_url, db))[0] >= 2000

        await wait_for(some_written, 60, "2,000 points stored", detail=process.log_tail)
        process.kill9()
        written_before_kill = (await seq_counts(settings.influx_url, db))[0]
        still_streaming = not stream.done()
        assert await stream == N_MESSAGES  # the broker took every message
    finally:
        publisher.close()
    # The kill must have hit mid-stream for the test to mean anything.
    assert written_before_kill < N_MESSAGES
    assert still_streaming or written_before_kill < N_MESSAGES // 2

    process.start()

    async def complete() -> bool:
        return (await seq_counts(settings.influx_url, db))[0] >= N_MESSAGES

    await wait_for(complete, 90, "every point stored", every_s=0.25, detail=process.log_tail)
    # A message published now reaches the restarted ingest after every redelivery of the
    # stream (the broker keeps a session's order). Once ingest has handled it and
    # acknowledged all it received (acknowledged = durably written), no late duplicate
    # can still land. It comes from a device the registry does not know: no heartbeat.
    sentinel = Publisher(
        *mqtt_addr,
        client_id=unique("pub-sentinel-"),
        credentials=(settings.mqtt_username or "", settings.mqtt_password),
    )
    try:
        sentinel.publish_all(
            [(f"eldercare/{site}/sentinel/heartbeat", json.dumps({"ts": time.time()}).encode())]
        )
    finally:
        sentinel.close()

    async def all_handled() -> bool:
        m = await asyncio.to_thread(process.metrics)
        return m.get("eldercare_ingest_unregistered_total", 0) >= 1 and m.get(
            "eldercare_ingest_acked_total", 0
        ) >= m.get("eldercare_ingest_received_total", 1)

    await wait_for(all_handled, 30, "the sentinel handled", every_s=0.25, detail=process.log_tail)
    assert await seq_counts(settings.influx_url, db) == (N_MESSAGES, N_MESSAGES)
    async with InfluxClient(settings.influx_url) as client:
        rows = await client.query("SELECT min(seq), max(seq), sum(seq) FROM heartbeat", db)
    assert (rows[0]["min"], rows[0]["max"]) == (0, N_MESSAGES - 1)
    assert rows[0]["sum"] == N_MESSAGES * (N_MESSAGES - 1) // 2
    assert process.metrics().get("eldercare_ingest_mqtt_connected") == 1
    # `eldercare services status` shows the running ingest's counters.
    result = CliRunner().invoke(app, ["services", "status", "--json"], env=process.env)
    assert result.exit_code == 0, result.output
    counters = json.loads(result.output)["metrics"]
    assert counters["eldercare_ingest_received_total"] > 0
    assert counters["eldercare_ingest_written_total"] > 0
