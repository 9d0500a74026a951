"""Fault (b): InfluxDB stops for 12 s mid-stream; readings spool, drain, nothing is missing.

This module runs its own Mosquitto and InfluxDB in a temporary directory, so
stopping InfluxDB does not disturb the rest of the session. A steady stream of
QoS 1 messages runs before, during and after a real 12 s outage (~2,400 readings
spooled; the timers on this path, write retries 0.6 s, hung write 3 s, spool drain
every 1 s, are all well inside it, so a longer outage takes the same paths); detection
(the sink) must keep getting readings throughout, the spool must fill while
InfluxDB is away and be empty afterwards, and InfluxDB must hold every
sequence number exactly once.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from eldercare.settings import Settings
from eldercare_app.local_services import LocalServices, free_port
from ingest.service import IngestService
from tests.helpers.ingest import (
    Publisher,
    RecordingSink,
    heartbeat,
    recreate_db,
    registry_index,
    seq_counts,
    seq_of,
    unique,
)
from tests.helpers.polling import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OUTAGE_S = 12.0
RATE = 200  # messages per second
BEFORE_S = 4.0
AFTER_S = 4.0


@pytest.fixture(scope="module")
def module_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServices]:
    """One broker and InfluxDB for the module's tests: each stops and restarts InfluxDB
    and works in a fresh database and site of its own."""
    services = LocalServices(tmp_path_factory.mktemp("outage-services"))
    # Off InfluxDB's standard port: a restart listens on its last port if free, and
    # another process on the machine may take the standard one while it is down.
    services.influxdb.dir.mkdir(parents=True)
    services.influxdb.port_file.write_text(str(free_port()))
    services.up()
    yield services
    services.down()


@pytest.fixture
def own_services(module_services: LocalServices) -> LocalServices:
    """The module's services with InfluxDB running (a failed test may have left it down)."""
    if not module_services.influxdb.running():
        module_services.influxdb.start()
    return module_services


class SteadyStream(threading.Thread):
    """Publishes heartbeats at a fixed rate until stopped; counts what it sent."""

    def __init__(self, publisher: Publisher, site: str, base_ts: float) -> None:
        super().__init__(daemon=True)
        self.publisher = publisher
        self.site = site
        self.base_ts = base_ts
        self.sent = 0
        self.stopping = threading.Event()
        self.infos: list[object] = []

    def run(self) -> None:
        start = time.monotonic()
        while not self.stopping.is_set():
            due = int((time.monotonic() - start) * RATE)
            while self.sent < due:
                topic, payload = heartbeat(self.sent, self.base_ts, site=self.site)
                self.infos.append(self.publisher.client.publish(topic, payload, qos=1))
                self.sent += 1
            self.stopping.wait(0.01)

    def finish(self) -> int:
        self.stopping.set()
        self.join(10)
        for info in self.infos:
            info.wait_for_publish(30)  # type: ignore[attr-defined]
            assert info.is_published()  # type: ignore[attr-defined]
        return self.sent


async def _stream_into_ingest(
    services: LocalServices, tmp_path: Path, label: str
) -> tuple[Settings, str, RecordingSink, IngestService, Publisher, SteadyStream]:
    """An ingest (not started) of one site of its own on the test's own services, its
    InfluxDB database fresh, and a heartbeat stream (not started) to feed it."""
    site = unique(label)
    db = unique(f"fault_{label}_")
    settings = Settings(
        run_dir=tmp_path / "run",
        mqtt_host=services.mosquitto.host,
        mqtt_port=services.mosquitto.port or 0,
        mqtt_username=services.env()["ELDERCARE_MQTT_USERNAME"],
        mqtt_password=services.mosquitto.platform_password(),
        mqtt_client_id=unique(f"ingest-{label}-"),
        mqtt_topics=[f"eldercare/{site}/#"],
        influx_url=services.influxdb.url,
        influx_db=db,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/eldercare.db",
        ingest_site_limits=False,  # one site's thousands of readings at once, by design
    )
    await recreate_db(services.influxdb.url, db)
    sink = RecordingSink()
    index = registry_index(site=site)
    service = IngestService(settings, lambda: index, sink)
    publisher = Publisher(
        services.mosquitto.host,
        services.mosquitto.port or 0,
        credentials=(settings.mqtt_username or "", settings.mqtt_password),
    )
    stream = SteadyStream(publisher, site, base_ts=time.time() - 120)
    return settings, db, sink, service, publisher, stream


async def test_influx_outage_spools_then_drains_without_loss(
    own_services: LocalServices, tmp_path: Path
) -> None:
    influx = own_services.influxdb
    settings, db, sink, service, publisher, stream = await _stream_into_ingest(
        own_services, tmp_path, "outage"
    )
    await service.start()
    try:
        await wait_for(service.ready.is_set, 10, "ingest subscribed")
        stream.start()
        await asyncio.sleep(BEFORE_S)
        await asyncio.to_thread(influx.stop)
        outage_started = stream.sent
        readings_at_outage = len(sink.readings)
        await asyncio.sleep(OUTAGE_S)
        # Detection went on while InfluxDB was away: the sink kept getting readings,
        # and they were durable in the spool before being acknowledged.
        assert len(sink.readings) > readings_at_outage + (OUTAGE_S - 5) * RATE
        assert service.writer.spooled > 0 and not service.writer.influx_up
        assert list((settings.run_dir / "spool").glob("*.spool"))
        await asyncio.to_thread(influx.start)
        await asyncio.sleep(AFTER_S)
        total = await asyncio.to_thread(stream.finish)
        assert stream.sent - outage_started > OUTAGE_S * RATE * 0.9

        async def drained() -> bool:
            return (await seq_counts(influx.url, db))[0] >= total and service.spool.is_empty()

        # Patience, not a bound on speed: a loaded machine restarts InfluxDB slowly.
        await wait_for(drained, 90, "every reading stored and the spool drained", every_s=0.25)
        assert await seq_counts(influx.url, db) == (total, total)
        assert service.spool.is_empty()
        assert not list((settings.run_dir / "spool").glob("*.spool"))
        assert service.writer.influx_up
        assert service.writer.drained >= service.writer.spooled > OUTAGE_S * RATE * 0.8
        assert {seq_of(r) for r in sink.readings} == set(range(total))
    finally:
        stream.stopping.set()
        publisher.close()
        await service.stop()


async def test_a_full_spool_leaves_readings_with_the_broker_then_nothing_is_missing(
    own_services: LocalServices, tmp_path: Path
) -> None:
    """The same outage with the spool capped at 40 kB (~4 s of this stream): past the
    cap, batches stay unacknowledged with the broker, the disk use stays at the cap, and
    once InfluxDB is back every reading is stored exactly once and reached detection.
    Ingest comes back for the broker's redeliveries every 2 s instead of every 10 s, so
    the outage sees several refusals in 12 s (~7 s past the cap: ~1,400 readings held,
    more than the broker's in-flight window of 1,000) and the drain no 10 s wait."""
    cap = 40_000
    influx = own_services.influxdb
    _, db, sink, service, publisher, stream = await _stream_into_ingest(
        own_services, tmp_path, "spoolcap"
    )
    service.spool.max_bytes = cap  # the setting is in MB; a test wants seconds
    service.spool_full_retry_s = 2.0
    await service.start()
    try:
        await wait_for(service.ready.is_set, 10, "ingest subscribed")
        stream.start()
        await asyncio.sleep(2.0)
        await asyncio.to_thread(influx.stop)
        await asyncio.sleep(OUTAGE_S)
        assert service.writer.spool_refused > 0
        assert 0 < service.spool.bytes <= cap and service.spool.size_bytes() <= cap
        await asyncio.to_thread(influx.start)
        await asyncio.sleep(AFTER_S)
        total = await asyncio.to_thread(stream.finish)

        async def all_stored() -> bool:
            return (await seq_counts(influx.url, db))[0] >= total and service.spool.is_empty()

        await wait_for(all_stored, 90, "every reading stored and the spool drained", every_s=0.25)
        assert await seq_counts(influx.url, db) == (total, total)
        assert {seq_of(r) for r in sink.readings} == set(range(total))
    finally:
        stream.stopping.set()
        publisher.close()
        await service.stop()
