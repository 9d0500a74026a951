"""Issue 14, defects 2-4, against the running platform in wall-clock mode (`eldercare
run`'s wiring) over the real broker, InfluxDB, SQLite and an HTTP receiver:

- an SOS published while another process holds the store write-locked, or while the
  database file is read-only, is raised exactly once, and notified exactly once, after
  the store takes writes again (ingest held it; nothing was acknowledged or dropped);
- a redelivery after a first processing that failed is not dropped as a duplicate;
- with InfluxDB hung (SIGSTOP) an SOS reaches the live stream within 1 s;
- a second press after acknowledgement re-raises the alert and notifies again.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from alerts.records import AlertRecord
from eldercare.domain import AlertKind, AlertStatus
from eldercare.registry_apply import apply_document
from eldercare.registry_model import RegistryDocument
from eldercare.settings import Settings
from eldercare_app.local_services import LocalServices, free_port
from eldercare_app.wiring import Platform, build_platform
from tests.helpers.alerts import HttpReceiver
from tests.helpers.polling import wait_for
from tests.helpers.stores import db_path, write_locked

# The platform runs on the fixture loop; the test must run on the same one.
pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

HOMES = ("hold-home-1", "hold-home-2")
BUSY_TIMEOUT_S = 1  # how long one store write waits for a lock before it fails


def registry(receiver: HttpReceiver) -> RegistryDocument:
    sites = []
    for n, site in enumerate(HOMES, start=1):
        sites.append(
            {
                "id": site,
                "kind": "home",
                "name": f"家{n}",
                "organisation": "滨州市/滨城区/市中街道/黄河社区",
                "timezone": "Asia/Shanghai",
                "rooms": [{"id": "bedroom", "kind": "bedroom", "name": "卧室"}],
                "residents": [
                    {"id": f"resident-{n}", "name": f"王{n}", "birth_year": 1940, "room": "bedroom"}
                ],
                "devices": [
                    {
                        "id": f"{site}-sos",
                        "kind": "sos_button",
                        "room": "bedroom",
                        "resident": f"resident-{n}",
                    }
                ],
                "contacts": [
                    {
                        "id": "duty",
                        "name": "值班员",
                        "role": "operator",
                        "language": "zh-CN",
                        "apprise": [receiver.url(f"centre-{n}")],
                    }
                ],
            }
        )
    return RegistryDocument.model_validate(yaml.safe_load(json.dumps({"sites": sites})))


@pytest.fixture
async def platform(
    settings: Settings,
    http_receiver: HttpReceiver,
) -> AsyncIterator[Platform]:
    port = free_port()
    cfg = settings.model_copy(
        update={
            "http_port": port,
            "public_url": f"http://127.0.0.1:{port}",
            "mqtt_client_id": f"hold-{port}",
            # Only these homes' topics: messages other tests left retained on the session
            # broker (a simulator's devices) would be acknowledged, and the tests count
            # what ingest acknowledges.
            "mqtt_topics": [f"eldercare/{home}/#" for home in HOMES],
            "database_url": f"{settings.database_url}?timeout={BUSY_TIMEOUT_S}",
        }
    )
    p = await build_platform(cfg)
    await apply_document(p.parts.sessions, registry(http_receiver))
    await p.start()

    async def subscribed() -> bool:
        return bool(p.parts.ingest.ready.is_set())

    await wait_for(subscribed, what="ingest subscribed")
    try:
        yield p
    finally:
        await p.stop()


class Buttons:
    """SOS buttons' gateway: one MQTT connection (its own network thread), publishing
    presses at QoS 1 without blocking the event loop the platform runs on."""

    def __init__(self, settings: Settings) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"hold-buttons-{os.getpid()}"
        )
        if settings.mqtt_username:
            self.client.username_pw_set(settings.mqtt_username, settings.mqtt_password)
        self.client.connect(settings.mqtt_host, settings.mqtt_port)
        self.client.loop_start()

    def press(self, site: str, ts: float) -> mqtt.MQTTMessageInfo:
        payload = json.dumps({"ts": ts, "pressed": True})
        return self.client.publish(f"eldercare/{site}/{site}-sos/sos", payload, qos=1)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def buttons(settings: Settings) -> Iterator[Buttons]:
    b = Buttons(settings)
    yield b
    b.close()


async def sos_alerts(platform: Platform, site: str) -> list[AlertRecord]:
    alerts = await platform.parts.alert_service.list_alerts()
    return [a for a in alerts if a.kind == AlertKind.SOS and a.site == site]


async def logged_sends(platform: Platform, alert_id: int) -> list[Any]:
    """The alert's notification log, once no message of it is pending any more."""
    logged = await platform.parts.alert_store.notifications(alert_id)
    return [] if any(n.state == "pending" for n in logged) else logged


async def assert_raised_and_notified_once(
    platform: Platform, receiver: HttpReceiver, site: str, ts: float
) -> None:
    async def stored() -> list[AlertRecord]:
        return await sos_alerts(platform, site)

    (alert,) = await wait_for(stored, 30, "the SOS alert stored after the store came back")
    assert alert.raised_at == pytest.approx(ts, abs=1e-3)
    path = f"centre-{HOMES.index(site) + 1}"

    async def notified() -> bool:
        return bool(receiver.to(path))

    await wait_for(notified, 15, "the centre notified")
    # Exactly once: one raise in the history, one logged send, one message received, and
    # the press acknowledged to the broker (nothing left to redeliver).
    history = await platform.parts.alert_store.history(alert.id)
    assert [h.action for h in history].count("raised") == 1

    async def logged() -> list[Any]:
        return await logged_sends(platform, alert.id)

    (sent,) = await wait_for(logged, 15, "the send logged")
    assert sent.state == "sent"
    assert len(receiver.to(path)) == 1
    assert len(await sos_alerts(platform, site)) == 1

    async def acked() -> bool:
        return bool(platform.parts.ingest.acked >= 1)

    await wait_for(acked, 10, "the press acknowledged to the broker")


# ---------------------------------------------------------------- store unavailable


@contextmanager
def read_only(path: Path) -> Iterator[Callable[[], None]]:
    """The database file and its WAL made immutable (`chattr +i`): read-only even for
    root, and even through the connections the platform already has open."""
    files = [str(p) for p in (path, path.with_name(path.name + "-wal")) if p.exists()]
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not installed")
    done = subprocess.run(["chattr", "+i", *files], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"this filesystem cannot make files immutable: {done.stderr.strip()}")

    def release() -> None:
        subprocess.run(["chattr", "-i", *files], check=True)

    try:
        yield release
    finally:
        release()


async def _held_while_unavailable(
    platform: Platform, receiver: HttpReceiver, buttons: Buttons, make_unwritable: Any
) -> None:
    site = HOMES[0]
    availability = platform.parts.alert_store_availability
    with make_unwritable(db_path(platform.settings)) as release:
        ts = time.time()
        buttons.press(site, ts)

        async def unavailable() -> bool:
            return availability.status() is not None

        await wait_for(unavailable, 30, "the store reported unavailable")
        episode = availability.status()
        assert episode is not None and episode.reason and episode.failures >= 1
        # Held, not dropped: nothing stored, nobody told, the press not acknowledged.
        assert await sos_alerts(platform, site) == []
        assert receiver.received == []
        assert platform.parts.ingest.acked == 0
        release()
    await assert_raised_and_notified_once(platform, receiver, site, ts)
    assert availability.status() is None


async def test_sos_while_the_store_is_write_locked_is_raised_and_notified_once_after(
    platform: Platform,
    buttons: Buttons,
    http_receiver: HttpReceiver,
) -> None:
    await _held_while_unavailable(platform, http_receiver, buttons, write_locked)


async def test_sos_while_the_database_file_is_read_only_is_raised_and_notified_once_after(
    platform: Platform,
    buttons: Buttons,
    http_receiver: HttpReceiver,
) -> None:
    await _held_while_unavailable(platform, http_receiver, buttons, read_only)


async def test_a_redelivery_after_a_failed_first_processing_is_not_dropped(
    platform: Platform,
    buttons: Buttons,
    http_receiver: HttpReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first processing fails after the detectors took the press (as when ingest's
    connection drops while the store holds it): the broker redelivers it, and the
    detectors, having seen it, must still hand its transition on."""
    pipeline = platform.parts.alerts
    real = pipeline.handle_transitions
    calls: list[int] = []

    async def fails_first(transitions: Any) -> None:
        calls.append(len(transitions))
        if len(calls) == 1:
            raise ConnectionError("first processing failed")
        await real(transitions)

    monkeypatch.setattr(pipeline, "handle_transitions", fails_first)
    site = HOMES[0]
    ts = time.time()
    buttons.press(site, ts)
    await assert_raised_and_notified_once(platform, http_receiver, site, ts)
    assert calls[:2] == [1, 1]


# ------------------------------------------------------------------ InfluxDB hung


@asynccontextmanager
async def stream(base_url: str, platform: Platform) -> AsyncIterator[httpx.Response]:
    """The live stream as an admin sees it, once its hello arrived."""
    from gateway.users import Role, create_user

    await create_user(
        platform.parts.sessions,
        username="hold-admin",
        role=Role.ADMIN,
        password="correct horse battery",
        now=time.time(),
    )
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        login = await client.post(
            "/api/auth/login",
            json={
                "username": "hold-admin",
                "password": "correct horse battery",
                "token_kind": "bearer",
            },
        )
        assert login.status_code == 200, login.text
        headers = {"Authorization": f"Bearer {login.json()['token']}"}
        async with client.stream("GET", "/api/stream", headers=headers) as resp:
            assert resp.status_code == 200
            yield resp


async def next_alert_event(lines: AsyncIterator[str]) -> dict[str, Any]:
    event: dict[str, str] = {}
    async for line in lines:
        if line == "":
            if event.get("event") == "alert":
                doc: dict[str, Any] = json.loads(event["data"])
                return doc
            event.clear()
        elif not line.startswith(":"):
            key, _, value = line.partition(":")
            event[key] = value.lstrip(" ")
    raise AssertionError("stream ended")


async def until_hello(lines: AsyncIterator[str]) -> None:
    async for line in lines:
        if line.startswith("event: hello"):
            return


@contextmanager
def hung(pid: int) -> Iterator[None]:
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


async def test_with_influxdb_hung_an_sos_reaches_the_live_stream_within_a_second(
    platform: Platform,
    buttons: Buttons,
    local_services: LocalServices,
) -> None:
    pid = local_services.influxdb.pid
    assert pid is not None
    async with stream(platform.settings.public_url, platform) as resp:
        lines = resp.aiter_lines()
        await asyncio.wait_for(until_hello(lines), 10)
        with hung(pid):
            # A first alert puts an InfluxDB write (its events) in flight, hung...
            buttons.press(HOMES[0], time.time())
            first = await asyncio.wait_for(next_alert_event(lines), 5)
            assert first["alert"]["site_id"] == HOMES[0]
            # ...and the next SOS must not queue behind it.
            sent = time.monotonic()
            buttons.press(HOMES[1], time.time())
            while True:
                change = await asyncio.wait_for(next_alert_event(lines), 15)
                if change["alert"]["site_id"] == HOMES[1]:
                    break
            latency = time.monotonic() - sent
    assert change["event"] == "raised"
    assert latency < 1.0, f"the SOS reached the live stream after {latency:.2f}s"


# ------------------------------------------------------------------ second press


async def test_a_second_press_after_acknowledgement_re_raises_and_notifies(
    platform: Platform,
    buttons: Buttons,
    http_receiver: HttpReceiver,
) -> None:
    site = HOMES[0]
    service = platform.parts.alert_service
    buttons.press(site, time.time())

    async def notified(n: int) -> bool:
        return len(http_receiver.to("centre-1")) >= n

    async def first() -> bool:
        return await notified(1)

    await wait_for(first, 15, "the first press notified")
    (alert,) = await sos_alerts(platform, site)
    await service.acknowledge(alert.id, by="operator-1")

    buttons.press(site, time.time())  # she presses again

    async def reopened() -> list[AlertRecord]:
        return [a for a in await sos_alerts(platform, site) if a.status == AlertStatus.OPEN]

    (again,) = await wait_for(reopened, 15, "the alert re-raised")
    assert again.id == alert.id
    assert again.details["re_raised"]["what"] == "pressed_again"
    assert again.acknowledged_at is None  # waiting for a person again

    async def second() -> bool:
        return await notified(2)

    await wait_for(second, 15, "the centre notified again")
    text = json.dumps(http_receiver.to("centre-1")[1].doc, ensure_ascii=False)
    assert "再次按下" in text
    history = [h.action for h in await platform.parts.alert_store.history(alert.id)]
    assert history.count("re_raised") == 1
    assert history.index("re_raised") > history.index("acknowledged")
