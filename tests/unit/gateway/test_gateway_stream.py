"""The live stream over a real uvicorn: a new alert arrives without polling, it is
scoped like the API, and a client resuming with Last-Event-ID gets what it missed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from eldercare.clock import FakeClock
from eldercare.settings import Settings
from tests.helpers.gateway import Gateway, build_gateway, db_url, login, serve, sos

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[tuple[Gateway, httpx.AsyncClient, FakeClock]]:
    clock = FakeClock(1_770_000_000.0)
    settings = Settings(run_dir=tmp_path / "run", database_url=db_url(tmp_path))
    gateway = await build_gateway(settings, clock)
    async with (
        serve(gateway.app) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as client,
    ):
        yield gateway, client, clock
    await gateway.engine.dispose()  # type: ignore[attr-defined]


async def _events(resp: httpx.Response, n: int, within_s: float) -> list[dict[str, object]]:
    """The next `n` `alert` events of an open SSE response (fails after `within_s`)."""
    out: list[dict[str, object]] = []
    event: dict[str, str] = {}

    async def read() -> None:
        async for line in resp.aiter_lines():
            if line == "":
                if event.get("event") == "alert":
                    out.append({"id": int(event["id"]), **json.loads(event["data"])})
                    if len(out) == n:
                        return
                event.clear()
            elif not line.startswith(":"):
                key, _, value = line.partition(":")
                event[key] = value.lstrip(" ")

    await asyncio.wait_for(read(), within_s)
    return out


async def test_new_alert_is_pushed_and_scoped(live) -> None:
    gateway, client, clock = live
    bincheng = await login(client, "op-bincheng")
    zhanhua = await login(client, "op-zhanhua")
    async with (
        client.stream("GET", "/api/stream", headers=bincheng) as mine,
        client.stream("GET", "/api/stream", headers=zhanhua) as theirs,
    ):
        assert mine.status_code == 200
        assert mine.headers["content-type"].startswith("text/event-stream")
        await asyncio.sleep(0.3)  # both connected and past their hello
        await gateway.store.apply_transitions(
            [sos("zh-12", "liu-jianguo", clock.now()), sos("hh-401", "zhang-xiuying", clock.now())],
            clock.now(),
        )
        got = await _events(mine, 1, within_s=2.0)
        assert got[0]["alert"]["site_id"] == "hh-401"  # type: ignore[index]
        assert got[0]["event"] == "raised"
        other = await _events(theirs, 1, within_s=2.0)
        assert other[0]["alert"]["site_id"] == "zh-12"  # type: ignore[index]


async def test_reconnect_with_last_event_id_gets_what_was_missed(live) -> None:
    gateway, client, clock = live
    op = await login(client, "op-bincheng")
    async with client.stream("GET", "/api/stream", headers=op) as resp:
        await asyncio.sleep(0.3)
        await gateway.store.apply_transitions(
            [sos("hh-401", "zhang-xiuying", clock.now())], clock.now()
        )
        first = await _events(resp, 1, within_s=2.0)
    last_id = first[0]["id"]
    alert_id = first[0]["alert"]["id"]  # type: ignore[index]
    # While disconnected: acknowledged, then resolved (through the API, by someone else).
    admin = await login(client, "admin1")
    await client.post(f"/api/alerts/{alert_id}/acknowledge", headers=admin)
    await client.post(
        f"/api/alerts/{alert_id}/resolve", json={"outcome": "false_alarm"}, headers=admin
    )
    async with client.stream(
        "GET", "/api/stream", headers={**op, "Last-Event-ID": str(last_id)}
    ) as resp:
        missed = await _events(resp, 2, within_s=2.0)
    assert [e["event"] for e in missed] == ["acknowledged", "resolved"]
    assert [e["id"] for e in missed] == sorted(e["id"] for e in missed)
    assert all(int(e["id"]) > int(last_id) for e in missed)  # type: ignore[call-overload]
    assert missed[-1]["alert"]["handling"] == "resolved"  # type: ignore[index]


async def test_stream_refuses_anonymous(live) -> None:
    _, client, _ = live
    assert (await client.get("/api/stream")).status_code == 401
