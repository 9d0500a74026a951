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

# A real uvicorn server: integration.
pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.integration]


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
    await gateway.engine.dispose()


class _Sse:
    """One open SSE response read event by event (httpx iterates a body only once, so the
    hello and the alerts after it come from the same line iterator)."""

    def __init__(self, resp: httpx.Response) -> None:
        self._lines = resp.aiter_lines()

    async def _next_event(self) -> dict[str, str]:
        event: dict[str, str] = {}
        async for line in self._lines:
            if line == "":
                if event:
                    return event
            elif not line.startswith(":"):
                key, _, value = line.partition(":")
                event[key] = value.lstrip(" ")
        raise AssertionError("the stream ended")

    async def hello(self, within_s: float) -> None:
        """Wait for the stream's `hello`: from then on every alert change reaches it."""
        event = await asyncio.wait_for(self._next_event(), within_s)
        assert event.get("event") == "hello", event

    async def alerts(self, n: int, within_s: float) -> list[dict[str, object]]:
        """The next `n` `alert` events (fails after `within_s`)."""

        async def read() -> list[dict[str, object]]:
            out: list[dict[str, object]] = []
            while len(out) < n:
                event = await self._next_event()
                if event.get("event") == "alert":
                    out.append({"id": int(event["id"]), **json.loads(event["data"])})
            return out

        return await asyncio.wait_for(read(), within_s)


async def test_new_alert_is_pushed_and_scoped(
    live: tuple[Gateway, httpx.AsyncClient, FakeClock],
) -> None:
    gateway, client, clock = live
    bincheng = await login(client, "op-bincheng")
    zhanhua = await login(client, "op-zhanhua")
    async with (
        client.stream("GET", "/api/stream", headers=bincheng) as mine,
        client.stream("GET", "/api/stream", headers=zhanhua) as theirs,
    ):
        assert mine.status_code == 200
        assert mine.headers["content-type"].startswith("text/event-stream")
        mine_events, their_events = _Sse(mine), _Sse(theirs)
        await mine_events.hello(within_s=2.0)
        await their_events.hello(within_s=2.0)
        await gateway.store.apply_transitions(
            [sos("zh-12", "liu-jianguo", clock.now()), sos("hh-401", "zhang-xiuying", clock.now())],
            clock.now(),
        )
        got = await mine_events.alerts(1, within_s=2.0)
        assert got[0]["alert"]["site_id"] == "hh-401"  # type: ignore[index]
        assert got[0]["event"] == "raised"
        other = await their_events.alerts(1, within_s=2.0)
        assert other[0]["alert"]["site_id"] == "zh-12"  # type: ignore[index]


async def test_reconnect_with_last_event_id_gets_what_was_missed(
    live: tuple[Gateway, httpx.AsyncClient, FakeClock],
) -> None:
    gateway, client, clock = live
    op = await login(client, "op-bincheng")
    async with client.stream("GET", "/api/stream", headers=op) as resp:
        events = _Sse(resp)
        await events.hello(within_s=2.0)
        await gateway.store.apply_transitions(
            [sos("hh-401", "zhang-xiuying", clock.now())], clock.now()
        )
        first = await events.alerts(1, within_s=2.0)
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
        missed = await _Sse(resp).alerts(2, within_s=2.0)
    assert [e["event"] for e in missed] == ["acknowledged", "resolved"]
    ids = [str(e["id"]) for e in missed]
    assert ids == sorted(ids)
    assert all(int(i) > int(str(last_id)) for i in ids)
    assert missed[-1]["alert"]["handling"] == "resolved"  # type: ignore[index]


async def test_stream_refuses_anonymous(live: tuple[Gateway, httpx.AsyncClient, FakeClock]) -> None:
    _, client, _ = live
    assert (await client.get("/api/stream")).status_code == 401
