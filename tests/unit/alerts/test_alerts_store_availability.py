"""The alert store's availability: an episode of failed writes is visible (status for
health and the banner, metrics, one log line at its start and one at its end), and the
pipeline holds a batch through it instead of dropping it. Real SQLite, write-locked
by another process holding `BEGIN IMMEDIATE`; a fake clock."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from alerts.pipeline import AlertPipeline
from alerts.records import AlertRecord
from alerts.store import AlertStore, init_store
from alerts.store_availability import AlertStoreAvailability
from eldercare import metrics
from eldercare.clock import FakeClock
from eldercare.db import create_engine
from eldercare.domain import AlertKind
from tests.helpers.alerts import T0, HttpReceiver, make_pipeline, policies, registry, transition
from tests.helpers.polling import wait_for
from tests.helpers.stores import write_locked


def _gauge(name: str) -> float:
    return metrics.gauge(name, "").value()


def test_an_episode_is_logged_once_at_each_end_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock(T0)
    availability = AlertStoreAvailability(clock)
    failures_before = metrics.counter("alert_store_write_failures_total", "").value()
    assert availability.status() is None
    with caplog.at_level(logging.INFO, logger="alerts.store_availability"):
        for _ in range(3):
            clock.advance(1)
            availability.failed(sqlite3.OperationalError("database is locked"))
        episode = availability.status()
        assert episode is not None
        assert (episode.since, episode.failures) == (T0 + 1, 3)
        assert episode.reason == "OperationalError: database is locked"
        assert _gauge("alert_store_available") == 0
        assert _gauge("alert_store_unavailable_since_seconds") == T0 + 1
        clock.advance(10)
        availability.succeeded()
        availability.succeeded()  # nothing more to end
    assert availability.status() is None and _gauge("alert_store_available") == 1
    assert metrics.counter("alert_store_write_failures_total", "").value() == failures_before + 3
    lines = [r for r in caplog.records if r.name == "alerts.store_availability"]
    assert [r.levelno for r in lines] == [logging.ERROR, logging.WARNING]
    assert lines[1].__dict__["failed_writes"] == 3 and lines[1].__dict__["unavailable_s"] == 12


async def test_the_pipeline_holds_a_batch_while_the_store_is_locked(tmp_path: Path) -> None:
    path = tmp_path / "alerts.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}?timeout=0.2")
    await init_store(engine)
    store = AlertStore(engine)
    clock = FakeClock(T0)
    pipeline, service = make_pipeline(
        store, registry([]), clock, policies([]), store_retry_s=(0.05, 0.2)
    )
    with write_locked(path):
        handling = asyncio.create_task(pipeline.handle_transitions([transition(AlertKind.SOS, T0)]))

        async def failed_twice() -> bool:
            episode = pipeline.availability.status()
            return episode is not None and episode.failures >= 2

        await wait_for(failed_twice, 10, "two failed store attempts")
        assert not handling.done(), "held, neither returned nor raised"
    await asyncio.wait_for(handling, 10)
    assert pipeline.availability.status() is None
    assert [a.kind for a in await service.list_alerts()] == ["sos"]
    await engine.dispose()


async def _an_sos_pending_for_the_centre(
    path: Path, rx: HttpReceiver
) -> tuple[AsyncEngine, AlertStore, FakeClock, AlertPipeline]:
    """An SOS raised and escalated: the centre's message is pending (a 0.2 s busy
    timeout and short store retries, for the tests that hold the database locked)."""
    engine = create_engine(f"sqlite+aiosqlite:///{path}?timeout=0.2")
    await init_store(engine)
    store = AlertStore(engine)
    clock = FakeClock(T0)
    pipeline, _ = make_pipeline(
        store, registry([]), clock, policies([rx.url("centre")]), store_retry_s=(0.05, 0.2)
    )
    await pipeline.handle_transitions([transition(AlertKind.SOS, T0)])
    assert await pipeline.escalate_due(clock.now()) == 1
    return engine, store, clock, pipeline


async def test_a_send_is_logged_once_the_store_takes_writes_and_not_sent_again(
    tmp_path: Path, http_receiver: HttpReceiver
) -> None:
    """The message went out but the store refused its log line: the pipeline holds the
    log line and retries it. Dropping it left the message pending, and the next tick
    sent it a second time (seen in CI with a read-only database file)."""
    rx = http_receiver
    path = tmp_path / "alerts.db"
    engine, store, clock, pipeline = await _an_sos_pending_for_the_centre(path, rx)
    with write_locked(path):
        assert await pipeline.deliver_due(clock.now(), wait=False) == 1

        async def sent_but_not_logged() -> bool:
            episode = pipeline.availability.status()
            return bool(rx.to("centre")) and episode is not None and episode.failures >= 2

        await wait_for(sent_but_not_logged, 10, "the send made and its log line refused twice")
        # Still in flight, so a tick meanwhile does not send it again.
        assert await pipeline.deliver_due(clock.now(), wait=False) == 0
    await asyncio.wait_for(pipeline.settle(), 10)
    assert pipeline.availability.status() is None
    [logged] = await store.notifications(1)
    assert logged.state == "sent" and logged.attempts == 1
    await pipeline.tick()
    assert len(rx.to("centre")) == 1
    await engine.dispose()


async def test_a_send_not_logged_at_a_stop_stays_pending_and_says_so(
    tmp_path: Path, http_receiver: HttpReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    """A stop must end even while the store refuses the log line: the line is given up
    with its own log message, and the message stays pending (sent again after a
    restart: at least once, not never)."""
    rx = http_receiver
    path = tmp_path / "alerts.db"
    engine, store, clock, pipeline = await _an_sos_pending_for_the_centre(path, rx)
    with write_locked(path), caplog.at_level(logging.ERROR, logger="alerts.pipeline"):
        assert await pipeline.deliver_due(clock.now(), wait=False) == 1
        await wait_for(lambda: bool(rx.to("centre")), 10, "the send made")
        await asyncio.wait_for(pipeline.stop(), 10)
    messages = [r.getMessage() for r in caplog.records if r.name == "alerts.pipeline"]
    assert messages == ["send not logged at stop"]
    [pending] = await store.notifications(1)
    assert pending.state == "pending" and pending.attempts == 0
    await engine.dispose()


async def test_a_failed_read_after_a_logged_send_is_not_reported_as_unlogged(
    tmp_path: Path,
    http_receiver: HttpReceiver,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The log line is written, then reading the alert back fails: the send is logged
    and the log says what failed, not "not logged at stop"."""
    rx = http_receiver
    engine, store, clock, pipeline = await _an_sos_pending_for_the_centre(
        tmp_path / "alerts.db", rx
    )
    real_get_many = store.get_many

    async def read_fails_once(ids: Sequence[int]) -> dict[int, AlertRecord]:
        monkeypatch.setattr(store, "get_many", real_get_many)
        raise OSError("disk read error")

    monkeypatch.setattr(store, "get_many", read_fails_once)
    with caplog.at_level(logging.ERROR, logger="alerts.pipeline"):
        assert await pipeline.deliver_due(clock.now(), wait=False) == 1
        await asyncio.wait_for(pipeline.settle(), 10)
    messages = [r.getMessage() for r in caplog.records if r.name == "alerts.pipeline"]
    assert messages == ["follow-up of a logged send failed"]
    [logged] = await store.notifications(1)
    assert logged.state == "sent" and logged.attempts == 1
    assert len(rx.to("centre")) == 1
    await pipeline.stop()
    await engine.dispose()
