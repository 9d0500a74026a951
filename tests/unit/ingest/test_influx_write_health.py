"""The InfluxDB write path reports itself truthfully: a hung InfluxDB (connections taken,
nothing answered) is 'hung', not 'up'; a full spool is named. A real socket that never
answers stands for the hung server; the writer's monotonic clock is a fake one, so no
test waits for time to pass."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from eldercare import metrics
from eldercare.clock import FakeClock
from eldercare.health import HEALTH
from eldercare.influx import InfluxClient
from ingest.influx_writer import InfluxWriter
from ingest.spool import Spool, SpoolFull

LINE = "probe,device=d1 v=1i 1700000000000000000"


class HungServer:
    """Accepts connections and reads requests, and never answers (like a SIGSTOPped
    InfluxDB whose kernel still completes the handshakes)."""

    def __init__(self) -> None:
        self.url = ""
        self.asked = asyncio.Event()  # a request has arrived
        self._server: asyncio.Server | None = None

    async def _swallow(self, reader: asyncio.StreamReader, _: asyncio.StreamWriter) -> None:
        while await reader.read(65536):
            self.asked.set()

    async def __aenter__(self) -> HungServer:
        self._server = await asyncio.start_server(self._swallow, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()


def influx_up() -> float:
    gauge = metrics.REGISTRY.get("ingest_influx_up")
    assert gauge is not None
    return gauge.value()


def part(name: str) -> str | None:
    return next((p.reason for p in HEALTH.parts() if p.part == name), None)


@pytest.mark.integration  # a real server that never answers
async def test_a_hung_influx_is_reported_hung_and_not_up(tmp_path: Path) -> None:
    async with HungServer() as hung_server:
        await hung_influx_is_reported(hung_server, tmp_path)


async def hung_influx_is_reported(hung_server: HungServer, tmp_path: Path) -> None:
    mono = FakeClock(1000.0)
    # The request times out after 5 real seconds (then the batch is spooled); the checks
    # below run on the fake clock well before that.
    client = InfluxClient(hung_server.url, timeout=5)
    writer = InfluxWriter(
        client,
        "x",
        Spool(tmp_path / "spool"),
        attempts=1,
        linger_s=0,  # the fake clock would hold a linger forever
        drain_interval=3600,
        monotonic=mono.now,
    )
    await writer.start()
    try:
        await writer.check_write_path()
        assert influx_up() == 1 and part("influx") is None
        pending = writer.submit([LINE])
        await asyncio.wait_for(hung_server.asked.wait(), 10)  # the request is on the wire
        mono.advance(2.0)
        await writer.check_write_path()
        assert part("influx") is None, "2 s: not yet hung"
        mono.advance(2.0)
        await writer.check_write_path()
        reason = part("influx")
        assert reason is not None and "hung" in reason and "4 s" in reason
        assert influx_up() == 0
        assert not pending.done()
        await asyncio.wait_for(pending, 30)  # timed out, then spooled: durable
        assert writer.spooled == 1
    finally:
        await writer.stop()
        await client.aclose()
    assert part("influx") is None, "a stopped writer withdraws what it reported"


async def test_a_full_spool_is_named(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", max_bytes=60)
    dead = InfluxClient("http://127.0.0.1:9", timeout=0.5)
    writer = InfluxWriter(dead, "x", spool, attempts=1, retry_initial=0.01, drain_interval=3600)
    await writer.start()
    try:
        with pytest.raises(SpoolFull):
            await writer.write([LINE, LINE])
        await writer.check_write_path()
        assert "unreachable" in (part("influx") or "")
        assert "spool full" in (part("spool") or "")
    finally:
        await writer.stop()
        await dead.aclose()
