"""The pipeline as a running component: built from settings, ticking on the wall
clock, writing to the real InfluxDB of the test session."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import httpx

from alerts.runtime import build_alerts, close_alerts
from eldercare.domain import AlertKind
from eldercare.settings import Settings
from tests.helpers.alerts import (
    SITE,
    HttpReceiver,
    registry,
    transition,
)


async def test_running_component_notifies_and_records(
    settings: Settings, tmp_path: Path, http_receiver: HttpReceiver
) -> None:
    rx = http_receiver
    overrides = tmp_path / "policies"
    overrides.mkdir()
    (overrides / f"{SITE}.yaml").write_text(
        f"centre: {{apprise: ['{rx.url('centre')}'], phone: '0543-1234567'}}\n", encoding="utf-8"
    )
    index = registry([rx.url("daughter")])
    pipeline, service = await build_alerts(settings, lambda: index, policies_dir=overrides)
    resident = f"r-{uuid.uuid4().hex[:8]}"
    await pipeline.start()
    try:
        await pipeline.handle_transitions(
            [transition(AlertKind.SOS, time.time(), resident=resident)]
        )
        # Wait for real I/O (the loop is woken at once, not after its 1 s tick).
        for _ in range(300):
            if rx.to("centre"):
                break
            await asyncio.sleep(0.01)
        assert len(rx.to("centre")) == 1
        [alert] = await service.queue()
        await service.acknowledge(alert.id, by="op")
    finally:
        await close_alerts(pipeline)
    q = f'SELECT "alert_id" FROM alert_event WHERE "resident" = \'{resident}\' GROUP BY "event"'
    async with httpx.AsyncClient() as http:
        resp = await http.post(
            f"{settings.influx_url}/query", data={"q": q, "db": settings.influx_db}
        )
    events = {s["tags"]["event"] for s in resp.json()["results"][0]["series"]}
    assert events == {"raised", "escalated", "notified", "acknowledged"}
