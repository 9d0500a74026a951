"""Helpers shared by the ingest tests: a registry, a publisher, InfluxDB counts."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from eldercare.db import create_engine, session_factory
from eldercare.domain import Reading
from eldercare.influx import InfluxClient, quote_ident
from eldercare.registry_index import RegistryIndex
from eldercare.registry_model import RegistryDocument
from eldercare.registry_store import apply_document, init_store
from eldercare.settings import Settings

SITE = "s1"


def registry_document(n_devices: int = 20, site: str = SITE) -> RegistryDocument:
    return RegistryDocument.model_validate(
        {
            "sites": [
                {
                    "id": site,
                    "kind": "home",
                    "name": "测试之家",
                    "organisation": "滨州市/滨城区",
                    "rooms": [{"id": "bedroom", "kind": "bedroom"}],
                    "residents": [{"id": "r1", "name": "张秀英", "room": "bedroom"}],
                    "devices": [
                        {"id": f"d{i}", "kind": "gateway", "room": "bedroom"}
                        for i in range(n_devices)
                    ],
                }
            ]
        }
    )


def registry_index(n_devices: int = 20, site: str = SITE) -> RegistryIndex:
    return RegistryIndex(registry_document(n_devices, site), version=1)


async def store_registry(database_url: str, doc: RegistryDocument) -> None:
    engine = create_engine(database_url)
    try:
        await init_store(engine)
        await apply_document(session_factory(engine), doc)
    finally:
        await engine.dispose()


def heartbeat(seq: int, base_ts: float, n_devices: int = 20, site: str = SITE) -> tuple[str, bytes]:
    """A native heartbeat with its own sequence number and a distinct event time."""
    topic = f"eldercare/{site}/d{seq % n_devices}/heartbeat"
    return topic, json.dumps({"ts": round(base_ts + seq * 0.001, 6), "seq": seq}).encode()


def seq_of(reading: Reading) -> int:
    """The sequence number a `heartbeat` carried."""
    seq = reading.fields["seq"]
    assert isinstance(seq, int), reading
    return seq


class Publisher:
    """A QoS 1 publisher on its own paho thread; `publish_all` waits for every PUBACK."""

    def __init__(
        self,
        host: str,
        port: int,
        client_id: str = "test-publisher",
        credentials: tuple[str, str | None] | None = None,
    ) -> None:
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        if credentials is not None:
            self.client.username_pw_set(*credentials)
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.connect(host, port)
        self.client.loop_start()

    def publish_all(
        self, messages: Iterable[tuple[str, bytes]], qos: int = 1, timeout: float = 120.0
    ) -> int:
        infos = [self.client.publish(t, p, qos=qos) for t, p in messages]
        deadline = time.monotonic() + timeout
        for info in infos:
            info.wait_for_publish(max(0.1, deadline - time.monotonic()))
            assert info.is_published(), "broker did not acknowledge a publish"
        return len(infos)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


async def recreate_db(influx_url: str, db: str) -> None:
    async with InfluxClient(influx_url) as c:
        await c.query(f"DROP DATABASE {quote_ident(db)}")
        await c.query(f"CREATE DATABASE {quote_ident(db)}")


async def seq_counts(influx_url: str, db: str, measurement: str = "heartbeat") -> tuple[int, int]:
    """(count of points, count of distinct seq) in `measurement`."""
    async with InfluxClient(influx_url) as c:
        rows = await c.query(
            f"SELECT count(seq), count(distinct(seq)) FROM {quote_ident(measurement)}", db
        )
    if not rows:
        return 0, 0
    return int(rows[0]["count"]), int(rows[0]["count_1"])


class RecordingSink:
    """A detector stand-in that keeps what it is handed (a real sink, not a mock)."""

    def __init__(self) -> None:
        self.readings: list[Reading] = []

    async def handle_readings(self, readings: Sequence[Reading]) -> None:
        self.readings.extend(readings)


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def unique(prefix: str) -> str:
    """A fresh id for a test's site, client id or database: tests share one broker."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"


async def site_ingest_settings(
    settings: Settings, site: str, db_prefix: str, **update: object
) -> Settings:
    """`settings` for an ingest that subscribes to `site`'s topics only and writes to a
    fresh InfluxDB database of its own (its name in `influx_db`): tests share one broker
    and one InfluxDB."""
    db = unique(db_prefix)
    await recreate_db(settings.influx_url, db)
    return settings.model_copy(
        update={
            "influx_db": db,
            "mqtt_client_id": unique("ingest-"),
            "mqtt_topics": [f"eldercare/{site}/#"],
            **update,
        }
    )
