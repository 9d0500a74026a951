"""Device tests (JGJ/T 484) on a fake clock: weekly schedule of emergency buttons and fall
devices, a failed test opens a fault that is flagged after 2 hours, a passed test closes
it; through the API, scoped like the rest."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from eldercare.clock import FakeClock
from eldercare.registry_model import Site
from eldercare.settings import Settings
from field_service.device_tests import DeviceTest, device_test_status
from tests.helpers.field import add_responders
from tests.helpers.gateway import Gateway, build_gateway, db_url, in_process_client, login

pytestmark = pytest.mark.asyncio(loop_scope="session")
T0 = 1_770_000_000.0
DAY = 86400.0
GW = tuple[Gateway, httpx.AsyncClient, FakeClock]
HOME = Site.model_validate(
    {
        "id": "hh-1", "kind": "home", "name": "家", "organisation": "滨州市/滨城区",
        "devices": [{"id": "sos-1", "kind": "sos_button"}, {"id": "radar-1", "kind": "fall_radar"},
                    {"id": "pir-1", "kind": "motion"}],
    }
)  # fmt: skip


def t(device: str, at: float, passed: bool = True) -> DeviceTest:
    return DeviceTest(0, "hh-1", device, at, passed, "responder", "wang", None)


async def test_weekly_schedule_and_a_fault_not_fixed_within_two_hours() -> None:
    tests = [t("sos-1", T0), t("radar-1", T0 - 8 * DAY)]
    rows = {r.device_id: r for r in device_test_status([HOME], tests, T0 + DAY)}
    assert set(rows) == {"sos-1", "radar-1"}  # motion sensors are not tested this way
    assert (rows["sos-1"].next_due, rows["sos-1"].overdue) == (T0 + 7 * DAY, False)
    assert rows["radar-1"].overdue
    failed = [*tests, t("sos-1", T0 + 2 * DAY, passed=False)]
    at_1h = {r.device_id: r for r in device_test_status([HOME], failed, T0 + 2 * DAY + 3600)}
    assert at_1h["sos-1"].fault_since == T0 + 2 * DAY and not at_1h["sos-1"].fault_overdue
    at_2h = device_test_status([HOME], failed, T0 + 2 * DAY + 7200)
    assert at_2h[0].device_id == "sos-1" and at_2h[0].fault_overdue  # listed first
    fixed = [*failed, t("sos-1", T0 + 2 * DAY + 9000)]
    after = {r.device_id: r for r in device_test_status([HOME], fixed, T0 + 2 * DAY + 9100)}
    assert after["sos-1"].fault_since is None and after["sos-1"].next_due == T0 + 9 * DAY + 9000


async def test_a_device_never_tested_is_due_now() -> None:
    rows = device_test_status([HOME], [], T0)
    assert all(r.overdue and r.last_test_at is None for r in rows)


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[GW]:
    clock = FakeClock(T0)
    settings = Settings(run_dir=tmp_path / "run", database_url=db_url(tmp_path))
    gateway = await build_gateway(settings, clock)
    await add_responders(gateway.sessions, clock.now())
    async with in_process_client(gateway) as client:
        yield gateway, client, clock


async def test_a_responder_records_tests_in_their_area(gw: GW) -> None:
    _, client, clock = gw
    wang = await login(client, "wang-grid")
    resp = await client.post(
        "/api/field/device-tests",
        json={"site_id": "hh-401", "device_id": "hh401-sos", "passed": False, "note": "按键失灵"},
        headers=wang,
    )
    assert resp.status_code == 201, resp.text
    resp = await client.post(
        "/api/field/device-tests",
        json={"site_id": "zh-12", "device_id": "zh12-sos", "passed": True},
        headers=wang,
    )
    assert resp.status_code == 404
    clock.advance(7201)
    op = await login(client, "op-bincheng")
    rows = (await client.get("/api/field/device-tests", headers=op)).json()
    assert [r["device_id"] for r in rows] == ["hh401-sos"]  # the only tested kind in scope
    assert rows[0]["fault_overdue"] is True
    family = await login(client, "family-zhang")
    assert (await client.get("/api/field/device-tests", headers=family)).status_code == 403
