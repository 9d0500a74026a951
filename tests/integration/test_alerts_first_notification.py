"""The first notification of a critical alert goes out on raise: not after a poll, not
after InfluxDB has taken the alert's events."""

from __future__ import annotations

import asyncio

import pytest

from alerts.events import InfluxAlertEventRecorder
from alerts.store import AlertStore
from eldercare.clock import FakeClock
from eldercare.domain import AlertKind
from eldercare.influx import InfluxClient
from tests.helpers.alerts import (
    T0,
    HttpReceiver,
    make_pipeline,
    policies,
    registry,
    transition,
)
from tests.helpers.ingest import recreate_db, unique
from tests.helpers.polling import wait_for


class GatedInflux(InfluxClient):
    """The real InfluxDB, but writes of `raised` and `escalated` events wait for the
    test's gate."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.gate = asyncio.Event()
        self.held = 0

    async def write_body(self, body: bytes, db: str, precision: str = "ns") -> None:
        if b"event=escalated" in body or b"event=raised" in body:
            self.held += 1
            await self.gate.wait()
        await super().write_body(body, db, precision)


@pytest.mark.integration
async def test_sos_reaches_the_centre_without_a_tick_and_before_influx_has_its_events(
    store: AlertStore, http_receiver: HttpReceiver, influx_url: str
) -> None:
    rx = http_receiver
    db = unique("first_notify_")
    await recreate_db(influx_url, db)
    influx = GatedInflux(influx_url)
    clock = FakeClock(T0)  # never advanced: nothing here may wait for time to pass
    index = registry([rx.url("daughter")])
    pipeline, _ = make_pipeline(
        store,
        index,
        clock,
        policies([rx.url("centre")]),
        recorder=InfluxAlertEventRecorder(influx, db),
        tick_interval_s=3600.0,  # a poll would come in an hour
    )
    await pipeline.start()
    try:
        handling = asyncio.create_task(pipeline.handle_transitions([transition(AlertKind.SOS, T0)]))
        # Stored and scheduled without waiting for InfluxDB (its write is held at the gate):
        # the detectors, and ingest behind them, never wait for InfluxDB either.
        await asyncio.wait_for(handling, 30)
        # Real I/O (the receiver's thread), not a timer of the pipeline: the raise must
        # wake the sends at once.
        await wait_for(lambda: rx.to("centre"), 30, "the centre notified", every_s=0.01)
        assert influx.held >= 1 and not influx.gate.is_set()  # InfluxDB has nothing yet
        assert rx.to("daughter") == []  # the family comes at 60 s, unacknowledged
        influx.gate.set()
        await pipeline.settle()
        await pipeline.flush_records()
    finally:
        influx.gate.set()
        await pipeline.stop()
        await influx.aclose()
    async with InfluxClient(influx_url) as client:
        rows = await client.query('SELECT count("value") FROM alert_event GROUP BY "event"', db)
    events = {r["_tags"]["event"] for r in rows}
    assert {"raised", "escalated", "notified"} <= events  # recorded all the same


async def test_the_tick_order_sends_before_it_records(
    store: AlertStore, http_receiver: HttpReceiver
) -> None:
    """`tick` (as tests and the loop call it) still sends a new alert's step 0 at once."""
    rx = http_receiver
    clock = FakeClock(T0)
    pipeline, _ = make_pipeline(store, registry([]), clock, policies([rx.url("centre")]))
    await pipeline.handle_transitions([transition(AlertKind.FALL, T0)])
    report = await pipeline.tick()
    assert report.escalated == 1 and report.sends_started == 1
    assert len(rx.to("centre")) == 1
