"""Standalone ingest picks up registry changes without a restart and serves /metrics."""

from __future__ import annotations

import asyncio
import contextlib
import time

import httpx
import pytest

from eldercare.influx import InfluxClient
from eldercare.settings import Settings
from eldercare_app.local_services import free_port
from ingest.cli import run_standalone
from tests.helpers.ingest import (
    Publisher,
    heartbeat,
    registry_document,
    site_ingest_settings,
    store_registry,
    unique,
    wait_until,
)

pytestmark = pytest.mark.integration


async def test_registry_change_is_picked_up_while_running(
    settings: Settings, mqtt_addr: tuple[str, int], mqtt_credentials: tuple[str, str]
) -> None:
    site = unique("reload")
    port = free_port()
    ingest_settings = await site_ingest_settings(settings, site, "reload_", http_port=port)
    db = ingest_settings.influx_db
    await store_registry(settings.database_url, registry_document(n_devices=2, site=site))
    stop, started = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(
        run_standalone(ingest_settings, stop=stop, registry_poll_s=0.1, started=started)
    )
    publisher = Publisher(*mqtt_addr, client_id=unique("pub-reload-"), credentials=mqtt_credentials)
    try:
        await asyncio.wait_for(started.wait(), 20)

        async def connected() -> bool:
            async with httpx.AsyncClient() as client:
                with contextlib.suppress(httpx.HTTPError):
                    text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
                    return "eldercare_ingest_mqtt_connected 1" in text
            return False

        assert await wait_until(connected, 20)
        base = time.time() - 60
        # d7 is not registered yet: its message is noted as unregistered, not written.
        for seq in (7, 0):  # d7, then d0 (registered): once d0 is in, d7 was handled
            message = heartbeat(seq, base, n_devices=10, site=site)
            await asyncio.to_thread(publisher.publish_all, [message])
        assert await wait_until(lambda: _seqs_present(settings.influx_url, db, {0}), 10)

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

        assert await wait_until(d7_lands, 15, interval=0.2)
        assert not await _seqs_present(settings.influx_url, db, {7})
    finally:
        publisher.close()
        stop.set()
        await asyncio.wait_for(task, 30)


async def _seqs_present(url: str, db: str, seqs: set[int]) -> bool:
    async with InfluxClient(url) as client:
        rows = await client.query("SELECT seq FROM heartbeat", db)
    return seqs <= {int(r["seq"]) for r in rows}
