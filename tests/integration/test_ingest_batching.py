"""Coalesced InfluxDB writes: fewer POSTs, bounded linger, acks only once durable."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from eldercare.influx import InfluxClient
from eldercare.settings import Settings
from ingest.influx_writer import InfluxWriter, linger_left
from ingest.service import IngestService
from ingest.spool import Spool
from tests.helpers.ingest import (
    Publisher,
    RecordingSink,
    heartbeat,
    recreate_db,
    registry_index,
    seq_counts,
    site_ingest_settings,
    unique,
)
from tests.helpers.polling import wait_for


class CountingInflux(InfluxClient):
    """The real client to the real InfluxDB; counts POSTs and can hold them at a gate."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.posts = 0
        self.lines_per_post: list[int] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def write_body(self, body: bytes, db: str, precision: str = "ns") -> None:
        await self.gate.wait()
        self.posts += 1
        self.lines_per_post.append(body.count(b"\n") + 1)
        await super().write_body(body, db, precision)


# -- the linger bound, on a fake clock ----------------------------------------------


def test_linger_waits_for_the_oldest_line_at_most_linger_s() -> None:
    # First line at t=100.000; later arrivals do not extend the wait.
    assert linger_left(1, 100.0, 100.0, linger_s=0.02, eager_lines=500) == pytest.approx(0.02)
    assert linger_left(40, 100.0, 100.015, linger_s=0.02, eager_lines=500) == pytest.approx(0.005)
    assert linger_left(40, 100.0, 100.02, linger_s=0.02, eager_lines=500) == 0.0
    assert linger_left(40, 100.0, 107.0, linger_s=0.02, eager_lines=500) == 0.0


def test_enough_lines_do_not_linger() -> None:
    assert linger_left(500, 100.0, 100.0, linger_s=0.02, eager_lines=500) == 0.0
    assert linger_left(499, 100.0, 100.0, linger_s=0.02, eager_lines=500) > 0


def test_no_linger_writes_at_once() -> None:
    assert linger_left(1, 100.0, 100.0, linger_s=0.0, eager_lines=500) == 0.0


# -- against the real InfluxDB --------------------------------------------------------


def _lines(batch: int, per_batch: int) -> list[str]:
    return [
        f"probe,device=d{batch} seq={batch * per_batch + i}i {1_700_000_000_000_000_000 + i}"
        for i in range(per_batch)
    ]


@asynccontextmanager
async def _running_writer(
    influx_url: str, tmp_path: Path, label: str, **options: Any
) -> AsyncIterator[tuple[InfluxWriter, CountingInflux, str]]:
    """A started writer over a counting client to a fresh database; stopped (writing what
    lingers) and closed on leaving."""
    db = unique(label)
    await recreate_db(influx_url, db)
    client = CountingInflux(influx_url)
    writer = InfluxWriter(client, db, Spool(tmp_path / "spool"), **options)
    await writer.start()
    try:
        yield writer, client, db
    finally:
        client.gate.set()
        await writer.stop()
        await client.aclose()


@pytest.mark.integration
async def test_many_small_batches_coalesce_into_few_posts(influx_url: str, tmp_path: Path) -> None:
    # A long linger so that the 200 submissions below surely share it, even on a busy box.
    options = {"linger_s": 5.0, "eager_lines": 5000, "max_lines": 5000}
    async with _running_writer(influx_url, tmp_path, "coalesce_", **options) as running:
        writer, client, db = running
        futures = [writer.submit(_lines(b, 5)) for b in range(200)]
        await asyncio.gather(*futures)
    # 200 caller batches of 5 lines: one request, not 200.
    assert client.posts == 1 and client.lines_per_post == [1000]
    assert writer.written == 1000 and writer.requests == 1
    assert await seq_counts(influx_url, db, "probe") == (1000, 1000)


@pytest.mark.integration
async def test_a_full_request_goes_without_waiting_out_the_linger(
    influx_url: str, tmp_path: Path
) -> None:
    # An hour's linger: only reaching max_lines can start these writes.
    options = {"linger_s": 3600, "max_lines": 100}
    async with _running_writer(influx_url, tmp_path, "full_", **options) as (writer, client, db):
        futures = [writer.submit(_lines(b, 10)) for b in range(30)]
        await asyncio.wait_for(asyncio.gather(*futures), 30)
        assert client.posts == 3 and client.lines_per_post == [100, 100, 100]
    assert await seq_counts(influx_url, db, "probe") == (300, 300)


@pytest.mark.integration
async def test_eager_lines_start_a_write_with_all_that_waits(
    influx_url: str, tmp_path: Path
) -> None:
    options = {"linger_s": 3600, "eager_lines": 50, "max_lines": 5000}
    async with _running_writer(influx_url, tmp_path, "eager_", **options) as (writer, client, db):
        futures = [writer.submit(_lines(b, 10)) for b in range(12)]  # 120 ≥ 50 lines
        await asyncio.wait_for(asyncio.gather(*futures), 30)
        assert client.lines_per_post == [120]  # one request, not 50-line pieces
        # Under eager_lines, the hour's linger holds (the write does not start).
        late = writer.submit(_lines(99, 10))
        for _ in range(20):
            await asyncio.sleep(0)
        assert not late.done() and client.posts == 1
    # Leaving stopped the writer, which writes what lingers.
    assert late.done() and client.lines_per_post == [120, 10]
    assert await seq_counts(influx_url, db, "probe") == (130, 130)


@pytest.mark.integration
async def test_futures_resolve_only_once_the_lines_are_in_influxdb(
    influx_url: str, tmp_path: Path
) -> None:
    options = {"linger_s": 0.0, "max_in_flight": 2}
    async with _running_writer(influx_url, tmp_path, "durable_", **options) as (writer, client, db):
        client.gate.clear()  # InfluxDB answers only when the test opens the gate
        first = writer.submit(_lines(0, 3))
        await wait_for(lambda: len(writer._writes) == 1, 5, "the first write", every_s=0.01)
        second = writer.submit(_lines(1, 3))
        await wait_for(lambda: len(writer._writes) == 2, 5, "the second write", every_s=0.01)
        third = writer.submit(_lines(2, 3))
        for _ in range(20):  # let the flush loop run: it must not start a third request
            await asyncio.sleep(0)
        # Two requests in flight at most: the third waits for a slot.
        assert len(writer._writes) == 2 and writer.pending_lines == 3
        assert not (first.done() or second.done() or third.done())
        assert await seq_counts(influx_url, db, "probe") == (0, 0)
        client.gate.set()
        await asyncio.wait_for(asyncio.gather(first, second, third), 30)
        assert await seq_counts(influx_url, db, "probe") == (9, 9)


# -- the ingest service: detectors first, acks after the write ---------------------------


@pytest.mark.integration
async def test_acks_wait_for_the_write_but_detectors_do_not(
    settings: Settings,
    mqtt_addr: tuple[str, int],
    mqtt_credentials: tuple[str, str],
) -> None:
    site = unique("site")
    ingest_settings = await site_ingest_settings(settings, site, "acks_")
    db = ingest_settings.influx_db
    index = registry_index(site=site)
    sink = RecordingSink()
    service = IngestService(ingest_settings, lambda: index, sink)
    gated = CountingInflux(settings.influx_url)
    gated.gate.clear()
    await service.influx.aclose()
    service.writer.client = service.influx = gated
    publisher = Publisher(*mqtt_addr, client_id=unique("pub-"), credentials=mqtt_credentials)

    def acked() -> int:
        return service.acked

    await service.start()
    try:
        await wait_for(service.ready.is_set, 10, "ingest subscribed")
        base = time.time() - 60
        await asyncio.to_thread(
            publisher.publish_all, [heartbeat(i, base, site=site) for i in range(300)]
        )
        # The detectors have every reading while InfluxDB has not answered ...
        await wait_for(lambda: len(sink.readings) == 300, 20, "300 readings handed on")
        assert acked() == 0 and service.writer.pending_lines + len(service.writer._writes) > 0
        written_before = service.writer.written
        assert written_before == 0
        # ... and the broker gets its acks only once the lines are written.
        gated.gate.set()
        await wait_for(lambda: acked() == 300, 20, "300 messages acknowledged")
        assert service.writer.written - written_before == 300
        assert await seq_counts(settings.influx_url, db) == (300, 300)
        # Coalesced: far fewer requests than messages, however the broker cut the batches.
        assert gated.posts < 30
    finally:
        gated.gate.set()
        await service.stop()
        publisher.close()


@pytest.mark.integration
async def test_a_reading_seen_again_is_counted_as_a_duplicate(
    settings: Settings,
    mqtt_addr: tuple[str, int],
    mqtt_credentials: tuple[str, str],
) -> None:
    site = unique("site")
    ingest_settings = await site_ingest_settings(settings, site, "dups_")
    db = ingest_settings.influx_db
    index = registry_index(site=site)
    service = IngestService(ingest_settings, lambda: index, RecordingSink())
    publisher = Publisher(*mqtt_addr, client_id=unique("pub-"), credentials=mqtt_credentials)

    def acked() -> int:
        return service.acked

    await service.start()
    try:
        await wait_for(service.ready.is_set, 10, "ingest subscribed")
        base = time.time() - 60
        once = [heartbeat(i, base, site=site) for i in range(50)]
        await asyncio.to_thread(publisher.publish_all, once + once[:20])
        await wait_for(lambda: acked() == 70, 20, "70 messages acknowledged")
    finally:
        await service.stop()
        publisher.close()
    assert service.duplicates == 20
    assert await seq_counts(settings.influx_url, db) == (50, 50)
