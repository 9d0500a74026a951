"""The spool and the durable writer: order, torn records, outage and recovery."""

from __future__ import annotations

from pathlib import Path

import pytest

from eldercare.influx import InfluxClient
from ingest.influx_writer import InfluxWriter
from ingest.spool import Spool, SpoolFull
from tests.helpers.ingest import recreate_db, unique


def test_records_come_back_in_order_across_segments(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", segment_bytes=64)
    bodies = [f"m,t=a v={i} {i}".encode() for i in range(20)]
    for body in bodies:
        spool.append(body)
    spool.seal()
    assert len(spool.segments()) > 1
    replayed = [record for seg in spool.sealed_segments() for record in Spool.read(seg)]
    assert replayed == bodies
    # A new Spool over the same directory (a restart) continues the numbering.
    again = Spool(tmp_path / "spool", segment_bytes=64)
    again.append(b"after restart")
    assert again.segments()[-1].name > spool.segments()[-2].name


def test_a_torn_tail_is_skipped_not_misread(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    spool.append(b"first batch")
    spool.append(b"second batch")
    spool.seal()
    segment = spool.segments()[0]
    data = segment.read_bytes()
    segment.write_bytes(data[:-3])  # a crash mid-append
    assert list(Spool.read(segment)) == [b"first batch"]
    segment.write_bytes(data[:-12] + b"X" * 12)  # same length, corrupted
    assert list(Spool.read(segment)) == [b"first batch"]


@pytest.mark.integration
async def test_outage_spools_and_drain_replays_in_order(influx_url: str, tmp_path: Path) -> None:
    db = unique("spool_")
    await recreate_db(influx_url, db)
    spool = Spool(tmp_path / "spool")
    dead = InfluxClient("http://127.0.0.1:9", timeout=0.5)
    writer = InfluxWriter(dead, db, spool, attempts=2, retry_initial=0.01, drain_interval=3600)
    await writer.start()
    try:
        # The same point three times with different values: only replay in order
        # leaves the last value in InfluxDB.
        for value in (1, 2, 3):
            await writer.write([f"orderprobe,device=d1 v={value}i 1700000000000000000"])
        assert writer.spooled == 3 and writer.written == 0 and not writer.influx_up
        assert not spool.is_empty()
        assert await writer.drain_once() is False  # still unreachable: nothing lost
        assert not spool.is_empty()

        writer.client = InfluxClient(influx_url)
        assert await writer.drain_once() is True
        assert spool.is_empty() and writer.influx_up
        assert writer.drained == 3
        async with InfluxClient(influx_url) as client:
            rows = await client.query("SELECT v FROM orderprobe", db)
        assert [r["v"] for r in rows] == [3]
        # Up again: new lines go straight to InfluxDB.
        await writer.write(["orderprobe,device=d2 v=9i 1700000000000000000"])
        assert writer.written == 1
    finally:
        await writer.stop()
        await dead.aclose()
        await writer.client.aclose()


@pytest.mark.integration
async def test_refused_batches_are_counted_not_retried_forever(
    influx_url: str, tmp_path: Path
) -> None:
    db = unique("refuse_")
    await recreate_db(influx_url, db)
    async with InfluxClient(influx_url) as client:
        writer = InfluxWriter(client, db, Spool(tmp_path / "spool"))
        await writer.start()
        try:
            await writer.write(["typed,device=d1 v=1i 1"])
            await writer.write(['typed,device=d1 v="text" 2'])  # field type conflict
        finally:
            await writer.stop()
    assert writer.refused_batches == 1 and writer.written == 1 and writer.spooled == 0


def test_the_spool_refuses_past_its_cap_and_takes_again_once_drained(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", segment_bytes=64, max_bytes=200)
    body = b"m,t=a v=1i 1700000000000000000"  # 30 bytes + 8 of header per record
    for _ in range(5):
        spool.append(body)
    assert spool.bytes == 5 * 38 == spool.size_bytes()
    with pytest.raises(SpoolFull, match="cap"):
        spool.append(body)
    assert spool.bytes == 190  # the refused batch wrote nothing
    spool.seal()
    spool.remove(spool.sealed_segments()[0])
    assert spool.bytes == spool.size_bytes() < 190
    spool.append(body)
    # A restart counts what is already on disk.
    assert Spool(tmp_path / "spool", max_bytes=200).bytes == spool.size_bytes()


def test_the_spool_never_takes_the_disk_below_its_floor(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", min_free_bytes=2**62)  # more than any disk has free
    with pytest.raises(SpoolFull, match="free-space floor"):
        spool.append(b"x")
    assert spool.is_empty()


async def test_a_full_spool_fails_the_batch_and_counts_it(influx_url: str, tmp_path: Path) -> None:
    """InfluxDB away and the spool full: the caller's future fails (its MQTT messages stay
    unacknowledged), the lines are counted; once there is room, batches spool again."""
    spool = Spool(tmp_path / "spool", max_bytes=120)
    dead = InfluxClient("http://127.0.0.1:9", timeout=0.5)
    writer = InfluxWriter(dead, "x", spool, attempts=1, retry_initial=0.01, drain_interval=3600)
    await writer.start()
    try:
        line = "fullprobe,device=d1 v=1i 1700000000000000000"
        await writer.write([line, line])  # 2 lines: 90 + 8 bytes, spooled
        with pytest.raises(SpoolFull):
            await writer.write([line])
        assert writer.spooled == 2 and writer.spool_refused == 1
        spool.max_bytes = 1000
        await writer.write([line])
        assert writer.spooled == 3 and writer.spool_refused == 1
    finally:
        await writer.stop()
        await dead.aclose()
