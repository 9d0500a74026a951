"""A broker restart: ingest reconnects with backoff to its persistent session, and
what was published while it was reconnecting is delivered (its own Mosquitto)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from eldercare.settings import Settings
from eldercare_app.local_services import LocalServices, Mosquitto
from eldercare_app.mqtt_accounts import PLATFORM_USER
from ingest.service import IngestService
from tests.helpers.ingest import (
    Publisher,
    RecordingSink,
    heartbeat,
    recreate_db,
    registry_index,
    seq_counts,
    unique,
)
from tests.helpers.polling import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def own_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServices]:
    services = LocalServices(tmp_path_factory.mktemp("broker-restart"))
    services.mosquitto.start()
    yield services
    services.mosquitto.stop()


async def test_broker_restart_reconnects_and_loses_nothing(
    own_broker: LocalServices, influx_url: str, tmp_path: Path
) -> None:
    broker = own_broker.mosquitto
    site = unique("restart")
    db = unique("restart_")
    settings = Settings(
        run_dir=tmp_path / "run",
        mqtt_host=broker.host,
        mqtt_port=broker.port or 0,
        mqtt_username=_credentials(broker)[0],
        mqtt_password=_credentials(broker)[1],
        mqtt_client_id=unique("ingest-restart-"),
        mqtt_topics=[f"eldercare/{site}/#"],
        influx_url=influx_url,
        influx_db=db,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/eldercare.db",
        ingest_site_limits=False,  # one site's thousands of readings at once, by design
    )
    await recreate_db(influx_url, db)
    index = registry_index(site=site)
    service = IngestService(settings, lambda: index, RecordingSink())
    await service.start()
    base = time.time() - 60
    try:
        await wait_for(service.ready.is_set, 10, "ingest subscribed")
        await asyncio.to_thread(
            _publish, broker, [heartbeat(i, base, site=site) for i in range(500)]
        )
        await wait_for(lambda: _count_is(influx_url, db, 500), 20, "500 points", every_s=0.25)

        await asyncio.to_thread(broker.stop)
        await wait_for(lambda: not service.connected, 10, "ingest to see the broker gone")
        await asyncio.to_thread(broker.start)
        # Published at once, while ingest is still backing off: the broker queues them
        # for the persistent session it kept across its own restart.
        more = [heartbeat(i, base, site=site) for i in range(500, 1500)]
        await asyncio.to_thread(_publish, broker, more)
        await wait_for(lambda: _count_is(influx_url, db, 1500), 30, "1,500 points", every_s=0.25)
        assert service.connected
    finally:
        await service.stop()
    assert await seq_counts(influx_url, db) == (1500, 1500)


def _credentials(broker: Mosquitto) -> tuple[str, str | None]:
    """The platform account of a broker that may refuse anonymous clients."""
    return PLATFORM_USER, broker.platform_password()


def _publish(broker: Mosquitto, messages: list[tuple[str, bytes]]) -> None:
    publisher = Publisher(
        broker.host, broker.port or 0, client_id=unique("pub-"), credentials=_credentials(broker)
    )
    try:
        publisher.publish_all(messages)
    finally:
        publisher.close()


async def _count_is(url: str, db: str, n: int) -> bool:
    return await seq_counts(url, db) == (n, n)
