"""`eldercare run` wiring added after the security review: registry edits through the API
get the detectors' override check, and the project's local Mosquitto follows registry
edits made while the platform runs (accounts, ACL, SIGHUP). Real broker (a private one in
the platform's run directory), real InfluxDB, SQLite, HTTP."""

from __future__ import annotations

import asyncio
import json
import queue
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from eldercare import registry_store
from eldercare.registry_apply import apply_document
from eldercare.registry_model import RegistryDocument, Site
from eldercare.settings import Settings
from eldercare_app.local_services import ISSUED_DIR, Mosquitto, free_port
from eldercare_app.mqtt_accounts import PLATFORM_USER, read_password_file
from eldercare_app.wiring import Platform, build_platform
from gateway.app import ADMIN_PASSWORD_ENV
from tests.helpers.polling import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

ADMIN_PASSWORD = "followups-admin-pw-1"


def site(site_id: str, **extra: Any) -> Site:
    return Site.model_validate(
        {
            "id": site_id,
            "kind": "home",
            "name": f"家 {site_id}",
            "organisation": "滨州市/滨城区",
            "timezone": "Asia/Shanghai",
            "rooms": [{"id": "bedroom", "kind": "bedroom"}],
            "residents": [{"id": f"{site_id}-r", "name": "李秀英", "room": "bedroom"}],
            "devices": [{"id": f"{site_id}-pir", "kind": "motion", "room": "bedroom"}],
            **extra,
        }
    )


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """The project's local Mosquitto, as `eldercare services up` makes it, in the run dir."""
    mosquitto = Mosquitto(tmp_path / "run")
    mosquitto.start()
    try:
        yield mosquitto
    finally:
        mosquitto.stop()


@pytest.fixture
async def platform(
    settings: Settings, broker: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Platform]:
    monkeypatch.setenv(ADMIN_PASSWORD_ENV, ADMIN_PASSWORD)
    port = free_port()
    cfg = settings.model_copy(
        update={
            "run_dir": tmp_path / "run",  # the broker's run dir
            "mqtt_port": broker.port,
            "mqtt_username": PLATFORM_USER,
            "mqtt_password": broker.platform_password(),
            "http_port": port,
            "public_url": f"http://127.0.0.1:{port}",
            "mqtt_client_id": f"followups-{port}",
        }
    )
    p = await build_platform(cfg)
    p.registry.poll_s = 0.2
    await apply_document(p.parts.sessions, RegistryDocument(sites=[site("fu-a")]))
    await p.start()
    await wait_for(p.parts.ingest.ready.is_set, what="ingest subscribed")
    try:
        yield p
    finally:
        await p.stop()


async def test_api_edit_with_a_bad_detector_override_is_refused_with_its_key_path(
    platform: Platform,
) -> None:
    base = platform.settings.public_url
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        login = await client.post(
            "/api/auth/login",
            json={"username": "admin", "password": ADMIN_PASSWORD, "token_kind": "bearer"},
        )
        assert login.status_code == 200, login.text
        auth = {"Authorization": f"Bearer {login.json()['token']}"}
        version = (await registry_store.load_index(platform.parts.sessions)).version

        bad = {"name": "李秀英", "room": "bedroom", "detectors": {"inactivity": {"bogus": 1}}}
        resp = await client.put("/api/sites/fu-a/residents/fu-a-r", json=bad, headers=auth)
        assert resp.status_code == 422, resp.text
        assert "sites[fu-a].residents[fu-a-r].detectors.inactivity" in resp.text
        assert "bogus" in resp.text

        whole = site("fu-a", detectors={"not_a_rule": {"enabled": True}}).model_dump(mode="json")
        resp = await client.put("/api/sites/fu-a", json=whole, headers=auth)
        assert resp.status_code == 422, resp.text
        assert "sites[fu-a].detectors.not_a_rule" in resp.text

        index = await registry_store.load_index(platform.parts.sessions)
        assert index.version == version
        assert index.sites["fu-a"].residents[0].detectors == {}
        assert index.sites["fu-a"].detectors == {}

        good = {**bad, "detectors": {"inactivity": {"default_hours": 5}}}
        resp = await client.put("/api/sites/fu-a/residents/fu-a-r", json=good, headers=auth)
        assert resp.status_code == 200, resp.text


def _client(port: int, user: str, password: str, client_id: str) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
    client.username_pw_set(user, password)
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def _site_can_connect(port: int, user: str, password: str) -> bool:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"probe-{user}")
    client.username_pw_set(user, password)
    try:
        client.connect("127.0.0.1", port)
        deadline = time.monotonic() + 2
        while not client.is_connected() and time.monotonic() < deadline:
            client.loop(0.05)
        return client.is_connected()
    except OSError:
        return False
    finally:
        client.disconnect()


def _publish_as_site_and_watch(port: int, platform_pw: str, user: str, password: str) -> list[str]:
    """Publish as the site into another site's topic, then into its own; return the topics
    the platform's account saw arrive (in order, one client: so the first was dropped if
    only the second arrives)."""
    seen: queue.Queue[str] = queue.Queue()
    watcher = _client(port, PLATFORM_USER, platform_pw, "fu-watch")
    subscribed = queue.Queue[int]()
    watcher.on_subscribe = lambda *_: subscribed.put(1)
    watcher.on_message = lambda _c, _u, msg: seen.put(msg.topic)
    watcher.subscribe("eldercare/#", qos=1)
    subscribed.get(timeout=5)
    device = _client(port, user, password, "fu-device")
    try:
        body = json.dumps({"ts": time.time(), "motion": True})
        device.publish("eldercare/fu-a/fu-a-pir/motion", body, qos=1).wait_for_publish(5)
        device.publish(f"eldercare/{user}/{user}-pir/motion", body, qos=1).wait_for_publish(5)
        topics = [seen.get(timeout=5)]
        while not seen.empty():
            topics.append(seen.get_nowait())
        return topics
    finally:
        device.loop_stop()
        device.disconnect()
        watcher.loop_stop()
        watcher.disconnect()


async def test_a_site_added_while_running_gets_an_account_and_its_topics(
    platform: Platform, broker: Mosquitto
) -> None:
    files = broker.broker_files
    assert "fu-a" in read_password_file(files.password_file)  # synced at start
    assert "user fu-a" in files.acl_file.read_text()

    await registry_store.upsert_site(platform.parts.sessions, site("fu-b"))
    issued = broker.dir / ISSUED_DIR / "fu-b"
    await wait_for(issued.exists, what="the new site's password file")
    assert issued.stat().st_mode & 0o077 == 0
    password = issued.read_text().strip()
    assert "user fu-b" in files.acl_file.read_text()
    assert "topic readwrite eldercare/fu-b/#" in files.acl_file.read_text()

    port = broker.port
    assert port is not None

    async def connects() -> bool:
        return await asyncio.to_thread(_site_can_connect, port, "fu-b", password)

    await wait_for(connects, what="the broker to accept the new account after SIGHUP")
    topics = await asyncio.to_thread(
        _publish_as_site_and_watch, port, platform.settings.mqtt_password or "", "fu-b", password
    )
    assert topics == ["eldercare/fu-b/fu-b-pir/motion"]

    # Removing the site removes its account and its grants.
    await registry_store.delete_site(platform.parts.sessions, "fu-b")

    async def gone() -> bool:  # the password file is written first, then the ACL
        acl = files.acl_file.read_text()
        return "fu-b" not in read_password_file(files.password_file) and "user fu-b" not in acl

    await wait_for(gone, what="the removed site's account and grants to go")
    assert "user fu-a" in files.acl_file.read_text()


async def test_watcher_tells_listeners_once_per_version_and_survives_a_failing_one(
    settings: Settings,
) -> None:
    from eldercare.db import create_engine, session_factory
    from eldercare.registry_index import RegistryIndex
    from eldercare.registry_watch import RegistryWatcher
    from eldercare_app.wiring import prepare_store

    engine = create_engine(settings.database_url)
    await prepare_store(engine)
    sessions = session_factory(engine)
    seen: list[tuple[int, list[str]]] = []

    async def broken(_: RegistryIndex) -> None:
        raise RuntimeError("listener bug")

    async def record(index: RegistryIndex) -> None:
        seen.append((index.version, sorted(index.sites)))

    try:
        watcher = RegistryWatcher(sessions, on_change=[broken, record])
        await watcher.refresh()
        await registry_store.upsert_site(sessions, site("fu-w"))
        await watcher.refresh()
        await watcher.refresh()  # same version: nobody is told again
        assert seen == [(0, []), (1, ["fu-w"])]
    finally:
        await engine.dispose()
