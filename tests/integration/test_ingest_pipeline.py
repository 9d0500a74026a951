"""The ingest service against the real broker and InfluxDB: good, hostile and unknown input."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from typer.testing import CliRunner

from eldercare import metrics
from eldercare.domain import Reading, Stream
from eldercare.settings import Settings
from ingest.cli import devices_app
from ingest.quarantine import read_quarantine
from ingest.service import IngestService
from tests.helpers.ingest import (
    Publisher,
    RecordingSink,
    heartbeat,
    registry_index,
    seq_counts,
    seq_of,
    site_ingest_settings,
    unique,
)
from tests.helpers.polling import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def site() -> str:
    return unique("site")


@pytest.fixture
async def ingest_settings(settings: Settings, site: str) -> Settings:
    return await site_ingest_settings(settings, site, "ingest_")


@pytest.fixture
def publisher(mqtt_addr: tuple[str, int], mqtt_credentials: tuple[str, str]) -> Iterator[Publisher]:
    pub = Publisher(*mqtt_addr, client_id=unique("pub-"), credentials=mqtt_credentials)
    yield pub
    pub.close()


async def _started(service: IngestService) -> IngestService:
    await service.start()
    await wait_for(service.ready.is_set, 10, "ingest subscribed")
    assert service.ready.is_set()
    return service


def _index(site: str):  # type: ignore[no-untyped-def]
    index = registry_index(site=site)
    return lambda: index


async def test_readings_are_stamped_written_and_handed_on(
    ingest_settings: Settings, site: str, publisher: Publisher
) -> None:
    sink = RecordingSink()
    service = await _started(
        IngestService(ingest_settings, lambda: registry_index(site=site), sink)
    )
    try:
        base = time.time() - 60
        publisher.publish_all(heartbeat(i, base, site=site) for i in range(500))
        db = ingest_settings.influx_db
        await wait_for(
            lambda: _counts_are(ingest_settings.influx_url, db, 500),
            20,
            "500 points stored",
            every_s=0.25,
        )
        await wait_for(lambda: len(sink.readings) >= 500, 5, "500 readings handed on")
    finally:
        await service.stop()
    first = sink.readings[0]
    assert (first.site_id, first.room_id, first.resident_id) == (site, "bedroom", "r1")
    assert first.stream is Stream.HEARTBEAT and first.source == "native"
    assert sorted(seq_of(r) for r in sink.readings) == list(range(500))
    assert service.received == 500 and service.quarantined == 0
    assert 0 < service.lag_seconds < 3600
    text = metrics.render_prometheus()
    assert "eldercare_ingest_received_total" in text
    assert "eldercare_ingest_heartbeat_timestamp_seconds" in text


async def _counts_are(url: str, db: str, n: int) -> bool:
    return await seq_counts(url, db) == (n, n)


HOSTILE: list[tuple[str, str, bytes]] = [
    ("bad_json", "d1/heartbeat", b'{"ts": 1, "seq": '),
    ("bad_utf8", "d1/heartbeat", b'{"seq": "\xff\xfe"}'),
    ("not_finite", "d1/vitals", b'{"heart_rate": NaN}'),
    ("oversize", "d1/heartbeat", b'{"seq": 1, "pad": "' + b"x" * 70_000 + b'"}'),
    ("schema", "d1/heartbeat", b'{"seq": "seven"}'),
    ("bad_topic", "d1/no_such_stream", b"{}"),
]


async def test_hostile_payloads_are_quarantined_and_good_ones_keep_flowing(
    ingest_settings: Settings, site: str, publisher: Publisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = RecordingSink()
    service = await _started(
        IngestService(ingest_settings, lambda: registry_index(site=site), sink)
    )
    now = time.time()
    future = json.dumps({"ts": now + 3600, "seq": 1}).encode()
    try:
        hostile = [(f"eldercare/{site}/{suffix}", payload) for _, suffix, payload in HOSTILE]
        hostile.append((f"eldercare/{site}/d2/heartbeat", future))
        hostile.append((f"eldercare/{site}/stranger/heartbeat", b'{"seq": 5}'))
        good = [heartbeat(i, now - 30, site=site) for i in range(100)]
        # Hostile first, then good: the process must still be serving.
        publisher.publish_all(hostile * 3 + good)
        await wait_for(
            lambda: _counts_are(ingest_settings.influx_url, ingest_settings.influx_db, 100),
            20,
            "the 100 good points stored",
            every_s=0.25,
        )
    finally:
        await service.stop()

    expected = {cause: 3 for cause, _, _ in HOSTILE} | {"future_timestamp": 3}
    assert dict(service.quarantine.counts) == expected
    assert service.unregistered_count == 3
    assert len(sink.readings) == 100
    for cause, n in expected.items():
        assert metrics.REGISTRY.get("ingest_quarantined_total").value(cause=cause) >= n  # type: ignore[union-attr]

    stored = list(read_quarantine(ingest_settings.run_dir / "quarantine"))
    assert len(stored) == sum(expected.values())
    bad_utf8 = next(e for e in stored if e.cause == "bad_utf8")
    assert bad_utf8.payload == b'{"seq": "\xff\xfe"}'
    assert "payload_base64" in bad_utf8.to_json()
    oversize = next(e for e in stored if e.cause == "oversize")
    assert oversize.payload_size > 70_000 and oversize.to_json()["truncated"] is True

    _use_settings(monkeypatch, ingest_settings)
    result = CliRunner().invoke(devices_app, ["quarantine", "--json", "--cause", "bad_json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["counts"] == {"bad_json": 3}
    assert all(e["topic"] == f"eldercare/{site}/d1/heartbeat" for e in doc["entries"])
    text = CliRunner().invoke(devices_app, ["quarantine"]).output
    assert "oversize" in text and "not_finite" in text


def _use_settings(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    monkeypatch.setenv("ELDERCARE_RUN_DIR", str(settings.run_dir))
    monkeypatch.setenv("ELDERCARE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("ELDERCARE_CONFIG", str(Path(settings.run_dir) / "absent.toml"))


async def test_unregistered_devices_are_listed_with_first_and_last_seen(
    ingest_settings: Settings, site: str, publisher: Publisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = await _started(
        IngestService(ingest_settings, lambda: registry_index(site=site), RecordingSink())
    )
    try:
        t0 = time.time()
        publisher.publish_all([(f"eldercare/{site}/ghost/motion", b'{"motion": true}')])
        await wait_for(lambda: service.unregistered_count == 1, 10, "one unregistered message")
        publisher.publish_all(
            [(f"eldercare/{site}/ghost/motion", b'{"motion": false}')] * 2
            + [(f"eldercare/{site}/phantom/battery", b'{"percent": 40}')]
        )
        await wait_for(lambda: service.unregistered_count == 4, 10, "four unregistered messages")
        t1 = time.time()
    finally:
        await service.stop()  # flushes the sightings to the store

    _use_settings(monkeypatch, ingest_settings)
    # The command runs its own event loop: call it from a thread, as a shell would.
    result = await asyncio.to_thread(CliRunner().invoke, devices_app, ["unregistered", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["identity"]: row for row in json.loads(result.output)}
    ghost = rows[f"native:{site}/ghost"]
    assert ghost["count"] == 3
    assert _iso_after(t0 - 1) <= ghost["first_seen"] <= ghost["last_seen"] <= _iso_after(t1)
    assert ghost["topic"] == f"eldercare/{site}/ghost/motion"
    assert json.loads(ghost["sample_payload"]) in ({"motion": True}, {"motion": False})
    assert rows[f"native:{site}/phantom"]["count"] == 1
    text = (await asyncio.to_thread(CliRunner().invoke, devices_app, ["unregistered"])).output
    assert f"native:{site}/ghost" in text and "sample" in text


def _iso_after(ts: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts + 1, UTC).isoformat(timespec="seconds")


class FailingOnceSink(RecordingSink):
    """Fails the first batch, as a detector runtime that lost its store would."""

    def __init__(self) -> None:
        super().__init__()
        self.failures = 0

    async def handle_readings(self, readings: Sequence[Reading]) -> None:
        if self.failures == 0:
            self.failures += 1
            raise RuntimeError("detector store unavailable")
        await super().handle_readings(readings)


async def test_a_batch_the_sink_failed_is_not_acknowledged_and_comes_back(
    ingest_settings: Settings, site: str, publisher: Publisher
) -> None:
    sink = FailingOnceSink()
    service = await _started(
        IngestService(ingest_settings, lambda: registry_index(site=site), sink)
    )
    try:
        base = time.time() - 60
        publisher.publish_all(heartbeat(i, base, site=site) for i in range(200))
        await wait_for(
            lambda: {seq_of(r) for r in sink.readings} == set(range(200)),
            20,
            "every sequence number handed on",
        )
    finally:
        await service.stop()
    assert sink.failures == 1
    assert await seq_counts(ingest_settings.influx_url, ingest_settings.influx_db) == (200, 200)
