"""Standalone ingest picks up registry changes without a restart and serves /metrics."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from eldercare.influx import InfluxClient
from eldercare.settings import Settings
from ingest.cli import run_standalone
from tests.helpers.ingest import (
    Publisher,
    heartbeat,
    registry_document,
    site_ingest_settings,
    store_registry,
    unique,
)
from tests.helpers.polling import wait_for

pytestmark = pytest.mark.integration


async def test_registry_change_is_picked_up_while_running(
    settings: Settings, mqtt_addr: tuple[str, int], mqtt_credentials: tuple[str, str]
) -> None:
    site = unique("reload")
    ingest_settings = await site_ingest_settings(settings, site, "reload_")
    db = ingest_settings.influx_db
    await store_registry(settings.database_url, registry_document(n_devices=2, site=site))
    stop = asyncio.Event()
    # Told by the ingest itself once it is subscribed, with the port it serves /metrics
    # on (picked by the system: a port chosen beforehand may be another process's by the
    # time it is bound, and that process's /metrics would answer for this one).
    ready: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        run_standalone(
            ingest_settings,
            metrics_port=0,
            stop=stop,
            registry_poll_s=0.1,
            on_ready=ready.set_result,
        )
    )
    publisher = Publisher(*mqtt_addr, client_id=unique("pub-reload-"), credentials=mqtt_credentials)
    try:
        port = await asyncio.wait_for(ready, 20)
        assert port is not None, "/metrics not served"
        async with httpx.AsyncClient() as client:
            metrics = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
        assert "eldercare_ingest_mqtt_connected 1" in metrics.splitlines()
        base = time.time() - 60
        # d7 is not registered yet: its message is noted as unregistered, not written.
        for seq in (7, 0):  # d7, then d0 (registered): once d0 is in, d7 was handled
            message = heartbeat(seq, base, n_devices=10, site=site)
            await asyncio.to_thread(publisher.publish_all, [message])
        await wait_for(lambda: _seqs_present(settings.influx_url, db, {0}), 10, "d0 stored")

        await store_registry(settings.database_url, registry_document(n_devices=10, site=site))
        # Keep sending from d7 until one lands: the running ingest reloaded the registry.
        sent: list[int] = []

        async def d7_lands() -> bool:
            seq = 17 + 10 * len(sent)  # always device d7
            sent.append(seq)
            message = heartbeat(seq, base, n_devices=10, site=site)
            await asyncio.to_thread(publisher.publish_all, [message])
            async with InfluxClient(settings.influx_url) as client:
                rows = await client.query("SELECT seq, device FROM heartbeat", db)
            return any(r["device"] == "d7" for r in rows)

        await wait_for(d7_lands, 15, "a reading of d7 stored", every_s=0.2)
        assert not await _seqs_present(settings.influx_url, db, {7})
    finally:
        publisher.close()
        stop.set()
        await asyncio.wait_for(task, 30)


async def _seqs_present(url: str, db: str, seqs: set[int]) -> bool:
    async with InfluxClient(url) as client:
        rows = await client.query("SELECT seq FROM heartbeat", db)
    return seqs <= {int(r["seq"]) for r in rows}
