"""Shared fixtures: the test session starts its own real Mosquitto and InfluxDB.

They run on free ports in a temporary run directory, so tests never touch a
broker or database that happens to be on the machine, and parallel sessions
never fight over ports.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from eldercare.clock import FakeClock
from eldercare.services import LocalServices
from eldercare.settings import Settings


@pytest.fixture(scope="session")
def local_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServices]:
    services = LocalServices(tmp_path_factory.mktemp("services"))
    services.up()
    yield services
    services.down()


@pytest.fixture(scope="session")
def mqtt_addr(local_services: LocalServices) -> tuple[str, int]:
    port = local_services.mosquitto.port
    assert port is not None
    return local_services.mosquitto.host, port


@pytest.fixture(scope="session")
def influx_url(local_services: LocalServices) -> str:
    return local_services.influxdb.url


@pytest.fixture
def settings(tmp_path: Path, local_services: LocalServices) -> Settings:
    """Settings pointing at the session's services, with a private run dir and SQLite file."""
    return Settings(
        run_dir=tmp_path / "run",
        mqtt_host=local_services.mosquitto.host,
        mqtt_port=local_services.mosquitto.port or 0,
        influx_url=local_services.influxdb.url,
        influx_db=local_services.influxdb.database,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/eldercare.db",
    )


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()
