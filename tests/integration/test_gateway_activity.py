"""A resident's day, read back from a real InfluxDB through the API: the one-sentence
state, today's timeline, the 12-hour strip per room, raw readings and the floor view."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from eldercare.clock import FakeClock
from eldercare.domain import Reading, Stream
from eldercare.influx import InfluxClient, point_for_reading
from eldercare.settings import Settings
from tests.helpers.gateway import Gateway, build_gateway, db_url, login

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]
ZONE = ZoneInfo("Asia/Shanghai")


def local(hh: int, mm: int, day: int = 10) -> float:
    return datetime(2026, 3, day, hh, mm, tzinfo=ZONE).timestamp()


def r(device: str, stream: Stream, ts: float, room: str | None, **fields: object) -> Reading:
    site = "yiyang" if device.startswith("yy-") else "hh-401"
    return Reading(site, device, stream, ts, fields, room_id=room)  # type: ignore[arg-type]


DAY = [
    r("hh401-pir-b", Stream.MOTION, local(2, 10), "bathroom", motion=True),
    r("hh401-pir-b", Stream.MOTION, local(2, 14), "bathroom", motion=True),
    r("hh401-bed", Stream.OCCUPANCY, local(2, 20), "bedroom", occupied=True),
    r("hh401-bed", Stream.OCCUPANCY, local(6, 40), "bedroom", occupied=False),
    r("hh401-pir-k", Stream.MOTION, local(7, 0), "kitchen", motion=True),
    r("hh401-pir-k", Stream.MOTION, local(7, 12), "kitchen", motion=True),
    r("hh401-door", Stream.CONTACT, local(9, 12), "entrance", open=True),
    r("hh401-door", Stream.CONTACT, local(9, 13), "entrance", open=False),
    r("hh401-door", Stream.CONTACT, local(10, 30), "entrance", open=True),
    r("hh401-pir-bed", Stream.MOTION, local(10, 32), "bedroom", motion=True),
    r("hh401-pir-k", Stream.MOTION, local(19, 50), "kitchen", motion=True),
    # The institution, that evening: 301-1 goes to bed at 21:00 and leaves it at 22:30;
    # 302-1 has slept since the night before.
    r("yy-bed-301-1", Stream.OCCUPANCY, local(21, 0), None, occupied=True),
    r("yy-bed-301-1", Stream.OCCUPANCY, local(22, 30), None, occupied=False),
    r("yy-bed-302-1", Stream.OCCUPANCY, local(21, 30, day=9), None, occupied=True),
]


Gw = tuple[Gateway, httpx.AsyncClient, FakeClock]  # what the `gw` fixture yields


@pytest.fixture
async def gw(tmp_path: Path, influx_url: str) -> AsyncIterator[Gw]:
    db = f"gw_{secrets.token_hex(4)}"
    influx = InfluxClient(influx_url)
    await influx.query(f'CREATE DATABASE "{db}"')
    await influx.write([point_for_reading(x) for x in DAY], db)
    clock = FakeClock(local(20, 0))
    settings = Settings(
        run_dir=tmp_path / "run",
        database_url=db_url(tmp_path),
        influx_url=influx_url,
        influx_db=db,
    )
    gateway = await build_gateway(settings, clock, influx=influx)
    transport = httpx.ASGITransport(app=gateway.app)
    async with (
        gateway.app.router.lifespan_context(gateway.app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):
        yield gateway, client, clock
    await influx.query(f'DROP DATABASE "{db}"')
    await influx.aclose()
    await gateway.engine.dispose()


async def test_family_view_tells_the_day(gw: Gw) -> None:
    _, client, _ = gw
    family = await login(client, "family-zhang")
    resp = await client.get("/api/family/residents/zhang-xiuying", headers=family)
    assert resp.status_code == 200, resp.text
    view = resp.json()
    state = view["state"]
    assert state["state"] == "at_home"
    assert state["last_active_room"] == "kitchen"
    assert state["last_active_at"] == pytest.approx(local(19, 50))

    items = [(i["kind"], round(i["at"])) for i in view["today"]]
    assert items == [
        ("night_bathroom", round(local(2, 10))),
        ("got_up", round(local(6, 40))),
        ("kitchen", round(local(7, 0))),
        ("went_out", round(local(9, 12))),
        ("kitchen", round(local(19, 50))),
    ]
    went_out = next(i for i in view["today"] if i["kind"] == "went_out")
    assert went_out["until"] == pytest.approx(local(10, 30))


async def test_activity_strip_and_readings_for_staff(gw: Gw) -> None:
    _, client, _ = gw
    op = await login(client, "op-bincheng")
    act = (await client.get("/api/residents/zhang-xiuying/activity", headers=op)).json()
    strip = {room["room_id"]: room for room in act["strip"]["rooms"]}
    assert act["strip"]["until"] - act["strip"]["since"] == 12 * 3600
    # Within the last 12 hours (08:00-20:00): kitchen at 19:50, bedroom at 10:32; not 02:10.
    assert sum(strip["kitchen"]["buckets"]) == 1
    assert sum(strip["bedroom"]["buckets"]) == 1
    assert sum(strip["bathroom"]["buckets"]) == 0
    assert strip["kitchen"]["last_active_at"] == pytest.approx(local(19, 50))

    rows = (
        await client.get(
            "/api/residents/zhang-xiuying/readings",
            params={"measurement": "contact", "hours": 24},
            headers=op,
        )
    ).json()
    assert [row["fields"]["open"] for row in rows] == [True, False, True]
    assert {row["device"] for row in rows} == {"hh401-door"}


async def test_floor_view_shows_out_of_bed_at_night(gw: Gw) -> None:
    _, client, clock = gw
    op = await login(client, "op-bincheng")
    view = (await client.get("/api/sites/yiyang/floor", headers=op)).json()
    beds = {b["bed_id"]: b for b in view["beds"]}
    assert beds["b301-1"]["state"] == "unknown"  # 20:00: no bed reading yet today
    clock.set(local(23, 0))
    view = (await client.get("/api/sites/yiyang/floor", headers=op)).json()
    beds = {b["bed_id"]: b for b in view["beds"]}
    assert beds["b302-1"]["state"] == "occupied"
    assert beds["b301-2"]["state"] == "unknown"  # nobody's bed, no sensor
    assert beds["b301-1"]["resident_name"] == "孙兰"
    assert beds["b301-1"]["state"] == "out_of_bed"
    assert beds["b301-1"]["minutes_out"] == 30
