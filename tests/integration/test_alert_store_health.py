"""An alert store that cannot be written is a health problem (#14, defect 4 made visible):
while another process holds the SQLite store write-locked and an SOS waits for it,
`/healthz` answers 503 naming `alert_store`, with the driver's reason and the episode's
start, and `eldercare_part_impaired{part="alert_store"}` is 1; once the lock goes the SOS
is stored and `/healthz` is 200 again. The platform as `eldercare run` wires it, over
the real broker and SQLite."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from eldercare.domain import AlertKind
from eldercare.registry_apply import apply_document
from eldercare.registry_model import RegistryDocument
from eldercare.settings import Settings
from eldercare_app.local_services import free_port
from eldercare_app.wiring import Platform, build_platform
from gateway.metrics_access import metrics_token, scrape_headers
from tests.helpers.mqtt import Client
from tests.helpers.polling import wait_for
from tests.helpers.stores import db_path, write_locked

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

SITE = "store-health-home"
BUSY_TIMEOUT_S = 1  # how long one store write waits for the lock before it fails


def registry() -> RegistryDocument:
    return RegistryDocument.model_validate(
        {
            "sites": [
                {
                    "id": SITE,
                    "kind": "home",
                    "name": "家",
                    "organisation": "滨州市/滨城区/市中街道/黄河社区",
                    "timezone": "Asia/Shanghai",
                    "rooms": [{"id": "bedroom", "kind": "bedroom", "name": "卧室"}],
                    "residents": [
                        {"id": "wang", "name": "王桂兰", "birth_year": 1940, "room": "bedroom"}
                    ],
                    "devices": [
                        {"id": f"{SITE}-sos", "kind": "sos_button", "room": "bedroom"},
                    ],
                }
            ]
        }
    )


@pytest.fixture
async def platform(settings: Settings) -> AsyncIterator[Platform]:
    port = free_port()
    cfg = settings.model_copy(
        update={
            "http_port": port,
            "public_url": f"http://127.0.0.1:{port}",
            "mqtt_client_id": f"store-health-{port}",
            "database_url": f"{settings.database_url}?timeout={BUSY_TIMEOUT_S}",
        }
    )
    p = await build_platform(cfg)
    await apply_document(p.parts.sessions, registry())
    await p.start()

    async def subscribed() -> bool:
        return p.parts.ingest.ready.is_set()

    await wait_for(subscribed, 20, "ingest subscribed")
    try:
        yield p
    finally:
        await p.stop()


async def test_healthz_is_503_naming_the_alert_store_while_it_is_write_locked(
    platform: Platform,
) -> None:
    settings = platform.settings
    availability = platform.parts.alert_store_availability
    async with httpx.AsyncClient(base_url=settings.public_url, timeout=10) as client:
        assert (await client.get("/healthz")).status_code == 200
        with write_locked(db_path(settings)) as release:
            await asyncio.to_thread(press_sos, settings)

            async def degraded() -> httpx.Response | None:
                resp = await client.get("/healthz")
                names = {p["part"] for p in resp.json()["problems"]}
                return resp if "alert_store" in names else None

            resp = await wait_for(degraded, 30, "/healthz naming the alert store")
            assert resp.status_code == 503 and resp.json()["status"] == "degraded"
            (problem,) = [p for p in resp.json()["problems"] if p["part"] == "alert_store"]
            episode = availability.status()
            assert episode is not None
            assert "locked" in problem["reason"], problem
            assert problem["since"] == pytest.approx(episode.since)
            assert problem["since"] == pytest.approx(time.time(), abs=60)
            # The operator's banner reads this; Prometheus too.
            metrics = (await client.get("/metrics", headers=metrics_auth(settings))).text
            assert 'eldercare_part_impaired{part="alert_store"} 1' in metrics.splitlines()
            release()

        async def stored() -> list[Any]:
            alerts = await platform.parts.alert_service.list_alerts()
            return [a for a in alerts if a.kind == AlertKind.SOS and a.site == SITE]

        await wait_for(stored, 30, "the held SOS stored")

        async def healthy() -> bool:
            resp = await client.get("/healthz")
            return "alert_store" not in {p["part"] for p in resp.json()["problems"]}

        await wait_for(healthy, 15, "/healthz without the alert store")
        assert availability.status() is None
        metrics = (await client.get("/metrics", headers=metrics_auth(settings))).text
        assert 'eldercare_part_impaired{part="alert_store"} 0' in metrics.splitlines()


def metrics_auth(settings: Settings) -> dict[str, str]:
    return scrape_headers(metrics_token(settings))


def press_sos(settings: Settings) -> None:
    """The home's button pressed now: one QoS 1 message, acknowledged by the broker."""
    button = Client(settings.mqtt_port, settings.mqtt_username, settings.mqtt_password)
    try:
        assert button.accepted(), "the button could not connect"
        payload = json.dumps({"ts": time.time(), "pressed": True}).encode()
        button.publish(f"eldercare/{SITE}/{SITE}-sos/sos", payload)
    finally:
        button.close()
