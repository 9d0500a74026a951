"""The alert store's availability reported to the process's health: an episode makes the
part `alert_store` impaired (the latest reason, the episode's start), its end or the
pipeline's stop restores it. A fake clock; the health registry of the test."""

from __future__ import annotations

import sqlite3

from alerts.store_availability import AlertStoreAvailability
from eldercare.clock import FakeClock
from eldercare.health import HEALTH, HealthRegistry
from tests.helpers.alerts import T0


def test_an_episode_impairs_the_alert_store_until_it_ends() -> None:
    clock = FakeClock(T0)
    health = HealthRegistry(monotonic=clock.now, wall=clock.now)
    availability = AlertStoreAvailability(clock, health=health)
    availability.failed(sqlite3.OperationalError("database is locked"))
    clock.advance(30)
    availability.failed(sqlite3.OperationalError("attempt to write a readonly database"))
    (problem,) = health.problems()
    assert problem.part == "alert_store"
    assert problem.since == T0, "since the episode began, not the latest failure"
    assert problem.reason == "OperationalError: attempt to write a readonly database"
    availability.succeeded()
    assert health.problems() == []


def test_a_stopped_pipeline_withdraws_the_report() -> None:
    clock = FakeClock(T0)
    health = HealthRegistry(monotonic=clock.now, wall=clock.now)
    availability = AlertStoreAvailability(clock, health=health)
    availability.failed(sqlite3.OperationalError("database is locked"))
    availability.withdraw()
    assert health.problems() == []


def test_without_a_registry_nothing_is_reported() -> None:
    """Tests and tools build pipelines without one: the process's health stays theirs."""
    availability = AlertStoreAvailability(FakeClock(T0))
    availability.failed(sqlite3.OperationalError("database is locked"))
    assert availability.status() is not None
    assert "alert_store" not in {p.part for p in HEALTH.problems()}
