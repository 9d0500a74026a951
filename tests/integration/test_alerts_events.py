"""Alert events reach a real InfluxDB (`alert_event`, docs/influx-schema.md)."""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from alerts.events import InfluxAlertEventRecorder
from alerts.store import AlertStore
from eldercare.clock import FakeClock
from eldercare.domain import AlertKind, TransitionAction
from eldercare.influx import InfluxClient
from tests.helpers.alerts import (
    SITE,
    T0,
    HttpReceiver,
    make_pipeline,
    policies,
    registry,
    transition,
)


@pytest_asyncio.fixture(loop_scope="function")
async def influx(influx_url: str) -> AsyncIterator[tuple[InfluxClient, str]]:
    db = f"alerts_test_{uuid.uuid4().hex[:8]}"
    client = InfluxClient(influx_url)
    await client.query(f'CREATE DATABASE "{db}"')
    yield client, db
    await client.query(f'DROP DATABASE "{db}"')
    await client.aclose()


async def test_lifecycle_steps_are_written_as_alert_events(
    store: AlertStore, http_receiver: HttpReceiver, influx: tuple[InfluxClient, str]
) -> None:
    client, db = influx
    rx = http_receiver
    index = registry([rx.url("daughter")], [rx.url("son")])
    recorder = InfluxAlertEventRecorder(
        client, db, lambda s: index.sites[s].organisation if s in index.sites else None
    )
    clock = FakeClock(T0)
    pipeline, service = make_pipeline(
        store, index, clock, policies([rx.url("centre")]), recorder=recorder
    )
    await pipeline.handle_transitions([transition(AlertKind.FALL, T0)])
    await pipeline.tick()
    clock.set(T0 + 60)
    await pipeline.tick()  # family: daughter and son notified
    clock.set(T0 + 75)
    await service.acknowledge(1, by="王敏")
    await pipeline.handle_transitions([transition(AlertKind.FALL, T0 + 80, TransitionAction.CLEAR)])
    clock.set(T0 + 300)
    await service.resolve(1, "assisted_on_site", None, by="王敏")
    # Inhibited: a site offline, then an inactivity alert.
    await pipeline.handle_transitions([transition(AlertKind.SITE_OFFLINE, T0 + 400, resident=None)])
    await pipeline.handle_transitions([transition(AlertKind.INACTIVITY, T0 + 401)])
    await pipeline.tick()

    rows = await client.query('SELECT * FROM alert_event GROUP BY "event"', db=db)
    by_event: dict[str, list[dict[str, object]]] = {}
    for row in rows:
        by_event.setdefault(row["_tags"]["event"], []).append(row)
    assert set(by_event) == {
        "raised",
        "escalated",
        "notified",
        "acknowledged",
        "cleared",
        "resolved",
        "inhibited",
    }
    # centre, daughter, son for the fall; the centre for site_offline: none overwrote another
    assert len(by_event["notified"]) == 4
    assert len(by_event["escalated"]) == 2 + 1  # the fall's two steps, site_offline's first
    [ack] = by_event["acknowledged"]
    assert ack["ack_seconds"] == 75.0 and ack["alert_id"] == "1"
    [res] = by_event["resolved"]
    assert res["resolve_seconds"] == 300.0 and res["outcome"] == "assisted_on_site"
    [raised] = [r for r in by_event["raised"] if r["alert_id"] == "1"]
    assert int(str(raised["time"])) // 1000 == round(T0 * 1e6)  # event time, microseconds
    assert raised["resident"] == "zhang-xiuying" and raised["value"] == 1
    tags = await client.query(
        'SHOW TAG VALUES FROM alert_event WITH KEY IN ("org", "site", "kind")', db=db
    )
    values = {(r["key"], r["value"]) for r in tags}
    assert ("org", "滨州市/滨城区/市中街道/黄河社区") in values and ("site", SITE) in values


async def test_an_influx_outage_keeps_events_for_the_next_write(
    influx: tuple[InfluxClient, str], store: AlertStore
) -> None:
    client, db = influx
    dead = InfluxClient("http://127.0.0.1:9", timeout=2.0)
    recorder = InfluxAlertEventRecorder(dead, db)
    clock = FakeClock(T0)
    pipeline, _ = make_pipeline(store, registry([]), clock, policies([]), recorder=recorder)
    await pipeline.handle_transitions([transition(AlertKind.SOS, T0)])
    assert len(recorder._backlog) == 1
    recorder.client = client  # InfluxDB is back
    await pipeline.tick()
    rows = await client.query('SELECT count("value") FROM alert_event', db=db)
    assert rows[0]["count"] == 2  # raised (kept) + escalated
    await dead.aclose()


async def test_a_process_ending_in_an_outage_hands_its_events_to_the_running_one(
    influx: tuple[InfluxClient, str], store: AlertStore, tmp_path: Path
) -> None:
    """`eldercare alerts ack` while InfluxDB is down: its events go to the outbox, and the
    platform's recorder writes them (then deletes the file) once InfluxDB takes writes."""
    client, db = influx
    outbox = tmp_path / "outbox"
    dead = InfluxClient("http://127.0.0.1:9", timeout=2.0)
    short_lived = InfluxAlertEventRecorder(dead, db, outbox=outbox)
    clock = FakeClock(T0)
    pipeline, service = make_pipeline(
        store, registry([]), clock, policies([]), recorder=short_lived
    )
    await pipeline.handle_transitions([transition(AlertKind.SOS, T0)])
    await service.acknowledge(1, by="op")
    assert len(short_lived._backlog) == 2  # raised + acknowledged
    assert await short_lived.hand_over() == 2
    assert short_lived._backlog == deque() and len(list(outbox.glob("*.lp"))) == 1
    assert await short_lived.hand_over() == 0  # nothing left to hand over

    running = InfluxAlertEventRecorder(dead, db, outbox=outbox, outbox_every_s=0)
    await running.flush()  # InfluxDB still away: the file stays
    assert len(list(outbox.glob("*.lp"))) == 1 and running.adopted == 0
    running.client = client
    await running.flush()
    assert running.adopted == 2 and list(outbox.glob("*")) == []
    rows = await client.query('SELECT "value", "event" FROM alert_event', db=db)
    assert sorted(r["event"] for r in rows) == ["acknowledged", "raised"]
    await dead.aclose()
