"""The safety watch in wall-clock mode, as an operator's centre runs it (#14, #17 item 6):
the whole platform over the real broker, InfluxDB and SQLite, with NO reading after the
trigger. Rule delays are shortened through the site's detector overrides (a possible fall
confirmed after a few seconds, devices reporting every few seconds), so each test takes
seconds. Each waits for an outcome with a deadline; none sleeps to make time pass.

Run with `-s` to see the measured delays (the figures of the report):
    .venv/bin/pytest -s -q tests/e2e/test_safety_live.py
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from alerts.records import AlertRecord
from alerts.store import AlertFilter, AlertStore
from eldercare.db import create_engine, session_factory
from eldercare.health import HEALTH
from eldercare.registry_apply import apply_document
from eldercare.registry_model import RegistryDocument
from eldercare.settings import Settings
from eldercare_app.local_services import LocalServices, free_port
from eldercare_app.wiring import Platform, build_platform, prepare_store
from gateway.metrics_access import metrics_token, scrape_headers
from gateway.users import Role, create_user
from tests.helpers.polling import wait_for
from tests.helpers.stores import db_path, write_locked

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

CONFIRM_S = 3.0  # a maybe_fall without movement becomes a fall after this
REPORT_S = 3.0  # the devices' report interval; site_offline after 1 × this of silence
TICK_S = 1.0  # the detector runtime's timer tick
LEASE_TTL_S = 3.0  # the run lease of `eldercare run` as its own process


def registry(site: str, confirm_s: float = CONFIRM_S) -> RegistryDocument:
    return RegistryDocument.model_validate(
        {
            "sites": [
                {
                    "id": site,
                    "kind": "home",
                    "name": "王桂兰家",
                    "organisation": "滨州市/滨城区/市中街道/黄河社区",
                    "timezone": "Asia/Shanghai",
                    "rooms": [
                        {"id": "bedroom", "kind": "bedroom", "name": "卧室"},
                        {"id": "bathroom", "kind": "bathroom", "name": "卫生间"},
                    ],
                    "residents": [
                        {"id": "wang", "name": "王桂兰", "birth_year": 1940, "room": "bedroom"}
                    ],
                    "devices": [
                        {
                            "id": f"{site}-sos",
                            "kind": "sos_button",
                            "room": "bedroom",
                            "resident": "wang",
                            "report_interval_s": REPORT_S,
                        },
                        {
                            "id": f"{site}-radar",
                            "kind": "fall_radar",
                            "room": "bathroom",
                            "report_interval_s": REPORT_S,
                        },
                    ],
                    "detectors": {
                        "fall": {"maybe_fall_confirm_s": confirm_s},
                        "site_offline": {"factor": 1.0},
                    },
                }
            ]
        }
    )


def publish(settings: Settings, topic: str, payload: dict[str, Any]) -> None:
    """One QoS 1 message from a device, acknowledged by the broker."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"dev-{secrets.token_hex(4)}")
    connected = threading.Event()
    client.on_connect = lambda *_: connected.set()
    if settings.mqtt_username:
        client.username_pw_set(settings.mqtt_username, settings.mqtt_password)
    client.connect(settings.mqtt_host, settings.mqtt_port)
    client.loop_start()
    try:
        assert connected.wait(10), "device could not connect"
        client.publish(topic, json.dumps(payload), qos=1).wait_for_publish(10)
    finally:
        client.loop_stop()
        client.disconnect()


async def send(settings: Settings, site: str, device: str, stream: str, **fields: Any) -> float:
    """Publish a native reading stamped now (or at `ts`); returns its event time."""
    ts = float(fields.pop("ts", time.time()))
    topic = f"eldercare/{site}/{site}-{device}/{stream}"
    await asyncio.to_thread(publish, settings, topic, {"ts": ts, **fields})
    return ts


def metrics_auth(settings: Settings) -> dict[str, str]:
    return scrape_headers(metrics_token(settings))


def alerts_of(alerts: list[AlertRecord], site: str, kind: str) -> list[AlertRecord]:
    return [a for a in alerts if a.site == site and a.kind == kind]


def platform_settings(settings: Settings, **extra: Any) -> Settings:
    port = free_port()
    return settings.model_copy(
        update={
            "http_port": port,
            "public_url": f"http://127.0.0.1:{port}",
            "mqtt_client_id": f"live-{secrets.token_hex(4)}",
            **extra,
        }
    )


@pytest.fixture
async def live(settings: Settings) -> AsyncIterator[tuple[Platform, str]]:
    """The platform in this process, in wall-clock mode, with one home registered."""
    async with running(settings) as running_platform:
        yield running_platform


@asynccontextmanager
async def running(settings: Settings, **extra: Any) -> AsyncIterator[tuple[Platform, str]]:
    site = f"live-{secrets.token_hex(3)}"
    platform = await build_platform(platform_settings(settings, **extra))
    await apply_document(platform.parts.sessions, registry(site))
    await platform.start()

    async def subscribed() -> bool:
        return bool(platform.parts.ingest.ready.is_set())

    await wait_for(subscribed, 20, "ingest subscribed")
    try:
        yield platform, site
    finally:
        await platform.stop()


async def stored(platform: Platform, site: str, kind: str) -> list[AlertRecord]:
    return alerts_of(await platform.parts.alert_service.list_alerts(), site, kind)


async def test_maybe_fall_then_silence_becomes_a_fall_without_another_reading(
    live: tuple[Platform, str],
) -> None:
    platform, site = live
    t0 = await send(platform.settings, site, "radar", "fall", status="maybe_fall")

    async def fall() -> list[AlertRecord]:
        return await stored(platform, site, "fall")

    (alert,) = await wait_for(fall, CONFIRM_S + 3 * TICK_S + 5, "the fall raised by its timer")
    took = time.time() - t0
    print(f"\nmaybe_fall → fall with no further reading: {took:.1f} s (confirm {CONFIRM_S} s)")
    assert alert.raised_at == pytest.approx(t0 + CONFIRM_S, abs=0.01), "stamped at its due time"


async def test_a_home_gone_silent_is_reported_offline_within_its_bound(
    live: tuple[Platform, str],
) -> None:
    platform, site = live
    await send(platform.settings, site, "radar", "heartbeat")
    last = await send(platform.settings, site, "sos", "heartbeat")

    async def offline() -> list[AlertRecord]:
        return await stored(platform, site, "site_offline")

    bound = REPORT_S + 2 * TICK_S
    (alert,) = await wait_for(offline, bound + 5, "site_offline raised by its timer")
    took = time.time() - last
    print(f"\nlast message → site_offline: {took:.1f} s (bound {bound:.0f} s + load)")
    assert alert.raised_at <= last + bound


async def test_an_sos_an_hour_late_is_raised_and_marked_late(live: tuple[Platform, str]) -> None:
    platform, site = live
    await send(platform.settings, site, "radar", "heartbeat")
    runtime = platform.parts.detectors

    async def site_clock_set() -> bool:
        s = runtime.sites.get(site)
        return s is not None and s.clock is not None

    await wait_for(site_clock_set, 10, "the home's first reading handled")
    pressed = time.time() - 3600
    await send(platform.settings, site, "sos", "sos", pressed=True, ts=pressed)
    sent = time.time()

    async def sos() -> list[AlertRecord]:
        return await stored(platform, site, "sos")

    (alert,) = await wait_for(sos, 10, "the late SOS raised")
    print(f"\nSOS an hour late → raised {time.time() - sent:.2f} s after publishing")
    assert alert.details["late_s"] == pytest.approx(3600, abs=10)
    async with httpx.AsyncClient(base_url=platform.settings.public_url) as client:
        resp = await client.get("/metrics", headers=metrics_auth(platform.settings))
    assert "eldercare_detector_late_emergencies_total" in resp.text


async def test_healthz_names_a_stuck_detector_loop(live: tuple[Platform, str]) -> None:
    platform, _ = live
    base = platform.settings.public_url
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        ok = await client.get("/healthz")
        assert ok.status_code == 200, ok.text
        assert {"detector-ticks", "alerts-timers", "registry-watch"} <= {
            loop["name"] for loop in ok.json()["loops"]
        }
        # The ticks' loop is overdue after 5 s here, not the default 30 s (three ticks, at
        # least 30 s): the same check without waiting half a minute, as the rule delays
        # above are shortened for these tests.
        HEALTH.loop_started("detector-ticks", TICK_S, 5 * TICK_S)
        # Another holder of the runtime's lock (a hung sink, say) keeps every tick waiting.
        async with platform.parts.detectors._lock:

            async def degraded() -> httpx.Response | None:
                resp = await client.get("/healthz")
                return resp if "loop:detector-ticks" in resp.text else None

            resp = await wait_for(degraded, 60, "/healthz naming the ticks", every_s=1.0)
            metrics = (await client.get("/metrics", headers=metrics_auth(platform.settings))).text
        body = resp.json()
        assert resp.status_code == 503 and body["status"] == "degraded"
        parts = {p["part"]: p["reason"] for p in body["problems"]}
        assert "loop:detector-ticks" in parts, body
        assert 'eldercare_loop_age_seconds{loop="detector-ticks"}' in metrics
        assert 'eldercare_loop_overdue{loop="detector-ticks"} 1' in metrics
        # Released, the loop ticks again and the platform is healthy.

        async def healthy() -> bool:
            return (await client.get("/healthz")).status_code == 200

        await wait_for(healthy, 10, "/healthz 200 again", every_s=0.5)


def influx_pid(local_services: LocalServices) -> int:
    pid = local_services.influxdb.pid
    assert isinstance(pid, int), "the session's InfluxDB is not running"
    return pid


@pytest.fixture
def influx_stopped(local_services: LocalServices) -> Iterator[Callable[[], None]]:
    """SIGSTOP the session's InfluxDB (hung: it accepts connections, answers nothing);
    SIGCONT it on leaving, whatever happens."""
    pid = influx_pid(local_services)
    stopped = False

    def stop() -> None:
        nonlocal stopped
        os.kill(pid, signal.SIGSTOP)
        stopped = True

    try:
        yield stop
    finally:
        if stopped:
            os.kill(pid, signal.SIGCONT)


async def test_healthz_and_influx_up_tell_the_truth_with_influx_hung(
    live: tuple[Platform, str], influx_stopped: Callable[[], None]
) -> None:
    platform, site = live
    base = platform.settings.public_url
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        assert (await client.get("/healthz")).status_code == 200
        influx_stopped()
        await send(platform.settings, site, "radar", "heartbeat")  # a write now hangs

        async def degraded() -> httpx.Response | None:
            resp = await client.get("/healthz")
            return resp if resp.status_code == 503 else None

        started = time.monotonic()
        resp = await wait_for(degraded, 20, "/healthz 503 with InfluxDB hung", every_s=0.5)
        print(f"\nInfluxDB hung → /healthz 503 in {time.monotonic() - started:.1f} s")
        (problem,) = [p for p in resp.json()["problems"] if p["part"] == "influx"]
        assert "hung" in problem["reason"]
        metrics = (await client.get("/metrics", headers=metrics_auth(platform.settings))).text
        assert "eldercare_ingest_influx_up 0" in metrics.splitlines()


async def operator_console(browser: Any, platform: Platform) -> Any:
    """The console of an operator of the home's district, signed in, stream live."""
    await create_user(
        platform.parts.sessions,
        username="duty",
        role=Role.OPERATOR,
        password="correct horse battery",
        now=time.time(),
        display_name="值班员",
        scope="滨州市/滨城区",
    )
    context = await browser.new_context(
        locale="zh-CN", base_url=platform.settings.public_url, timezone_id="Asia/Shanghai"
    )
    await context.add_init_script("localStorage.setItem('eldercare.lang', 'zh-CN')")
    page = await context.new_page()
    page.set_default_timeout(10000)
    await page.goto("/login")
    await page.fill("#username", "duty")
    await page.fill("#password", "correct horse battery")
    await page.click("button[type=submit]")
    await page.wait_for_selector("#conn.live")
    return page


async def test_console_banner_while_influx_is_hung(
    live: tuple[Platform, str], influx_stopped: Callable[[], None], tmp_path: Path, browser: Any
) -> None:
    """What an operator sees: the amber banner naming InfluxDB, in both languages."""
    platform, site = live
    page = await operator_console(browser, platform)
    assert await page.locator("#health-banner").is_hidden()
    # A late SOS shows how late it is, on the row and in the detail.
    pressed = time.time() - 16 * 60 - 5
    await send(platform.settings, site, "sos", "sos", pressed=True, ts=pressed)
    badge = page.locator("#queue .late-badge")
    await badge.wait_for(state="visible")
    assert (await badge.text_content()) == "迟到 16 分钟"
    influx_stopped()
    await send(platform.settings, site, "radar", "heartbeat")
    banner = page.locator("#health-banner")
    await banner.wait_for(state="visible", timeout=30000)
    text = await banner.text_content() or ""
    assert text.startswith("告警可能延迟："), text
    assert "InfluxDB" in text and "起" in text, text
    await page.click("#lang")
    text = await banner.text_content() or ""
    assert text.startswith("Alerts may be delayed:") and "InfluxDB" in text, text
    assert " since " in text
    await page.screenshot(path=str(tmp_path / "banner.png"))


async def test_console_banner_while_the_alert_store_is_write_locked(
    settings: Settings, browser: Any
) -> None:
    """Another process holds the SQLite store write-locked: an SOS is held, and the
    operator reads "alert store unavailable since HH:MM" until the lock goes. A store
    write gives up waiting for the lock after 1 s, so the store is named before the
    loops it holds up are overdue (30 s)."""
    busy_1s = {"database_url": f"{settings.database_url}?timeout=1"}
    async with running(settings, **busy_1s) as (platform, site):
        await _banner_while_write_locked(platform, site, browser)


async def _banner_while_write_locked(platform: Platform, site: str, browser: Any) -> None:
    page = await operator_console(browser, platform)
    banner = page.locator("#health-banner")
    assert await banner.is_hidden()
    with write_locked(db_path(platform.settings)) as release:
        await send(platform.settings, site, "sos", "sos", pressed=True)
        await page.wait_for_function(
            "() => document.getElementById('health-banner').textContent.includes('告警库不可用')",
            timeout=30000,
        )
        episode = platform.parts.alert_store_availability.status()
        assert episode is not None
        since = await page.evaluate("(s) => EC.hhmm(s)", episode.since)  # as the console shows
        text = await banner.text_content() or ""
        assert "告警库不可用" in text and f"自 {since} 起" in text, text
        await page.click("#lang")
        text = await banner.text_content() or ""
        assert "alert store unavailable since " + since in text, text
        release()
        await banner.wait_for(state="hidden", timeout=30000)


async def test_healthz_names_an_unreachable_broker(settings: Settings) -> None:
    cfg = platform_settings(settings, mqtt_port=free_port())  # nothing listens there
    platform = await build_platform(cfg)
    await platform.start()
    try:
        async with httpx.AsyncClient(base_url=cfg.public_url, timeout=10) as client:

            async def degraded() -> httpx.Response | None:
                resp = await client.get("/healthz")
                return resp if resp.status_code == 503 else None

            resp = await wait_for(degraded, 20, "/healthz 503 without a broker", every_s=0.5)
        (problem,) = [p for p in resp.json()["problems"] if p["part"] == "broker"]
        assert "MQTT broker unreachable" in problem["reason"]
    finally:
        await platform.stop()


# --- kill -9 of the platform process -------------------------------------------------------


class PlatformProcess:
    """`eldercare run` as its own process, as production runs it."""

    def __init__(self, settings: Settings, log: Path) -> None:
        self.settings = settings
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        s = self.settings
        env = {
            **os.environ,
            "ELDERCARE_RUN_DIR": str(s.run_dir),
            "ELDERCARE_DATABASE_URL": s.database_url,
            "ELDERCARE_MQTT_HOST": s.mqtt_host,
            "ELDERCARE_MQTT_PORT": str(s.mqtt_port),
            "ELDERCARE_MQTT_CLIENT_ID": s.mqtt_client_id,
            "ELDERCARE_INFLUX_URL": s.influx_url,
            "ELDERCARE_INFLUX_DB": s.influx_db,
            "ELDERCARE_HTTP_PORT": str(s.http_port),
            "ELDERCARE_PUBLIC_URL": s.public_url,
            "ELDERCARE_DETECTOR_SNAPSHOT_EVERY_S": "1",
            # A killed run's lease frees itself after this: the restart waits for it.
            "ELDERCARE_RUN_LEASE_TTL_S": str(LEASE_TTL_S),
        }
        if s.mqtt_username:
            env["ELDERCARE_MQTT_USERNAME"] = s.mqtt_username
        if s.mqtt_password:
            env["ELDERCARE_MQTT_PASSWORD"] = s.mqtt_password
        return env

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "eldercare_app.cli", "run"],
                env=self.env(),
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    async def wait_connected(self) -> None:
        async def connected() -> bool:
            assert self.proc is not None and self.proc.poll() is None, self.log.read_text()
            try:
                async with httpx.AsyncClient(timeout=2) as client:
                    resp = await client.get(
                        f"{self.settings.public_url}/metrics", headers=metrics_auth(self.settings)
                    )
            except httpx.HTTPError:
                return False
            return "eldercare_ingest_mqtt_connected 1" in resp.text.splitlines()

        await wait_for(connected, 60, "the platform connected to the broker", every_s=0.2)

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


async def test_kill_9_after_a_maybe_fall_the_fall_is_still_raised_after_restart(
    settings: Settings, tmp_path: Path
) -> None:
    confirm_s = 15.0  # long enough to kill and restart before it is due
    site = f"kill-{secrets.token_hex(3)}"
    cfg = platform_settings(settings)
    engine = create_engine(cfg.database_url)
    await prepare_store(engine)
    await apply_document(session_factory(engine), registry(site, confirm_s=confirm_s))
    store = AlertStore(engine)
    process = PlatformProcess(cfg, tmp_path / "platform.log")
    try:
        process.start()
        await process.wait_connected()
        t0 = await send(cfg, site, "radar", "fall", status="maybe_fall")

        async def snapshot_has_it() -> bool:
            from sqlalchemy import text

            async with engine.connect() as conn:
                rows = await conn.execute(
                    text(
                        "SELECT state FROM detector_snapshots"
                        " WHERE site_id = :s AND detector = 'fall'"
                    ),
                    {"s": site},
                )
                states = [r[0] for r in rows]
            return any(f"{site}-radar" in str(s) for s in states)

        await wait_for(snapshot_has_it, 10, "the possible fall in a saved snapshot", every_s=0.2)
        assert time.time() - t0 < confirm_s, (
            "the machine was too slow for this test to mean anything"
        )
        process.kill9()
        assert alerts_of(await store.find(AlertFilter()), site, "fall") == [], "killed before due"

        async def lease_free() -> bool:
            from sqlalchemy import text

            async with engine.connect() as conn:
                rows = await conn.execute(text("SELECT expires_at FROM platform_lease"))
                return all(r[0] < time.time() for r in rows)

        await wait_for(lease_free, LEASE_TTL_S + 10, "the killed run's lease expired", every_s=0.2)
        process.start()
        await process.wait_connected()

        async def fall() -> list[AlertRecord]:
            return alerts_of(await store.find(AlertFilter()), site, "fall")

        (alert,) = await wait_for(fall, confirm_s + 30, "the fall raised after the restart")
        print(f"\nkill -9 after maybe_fall → fall after restart, {time.time() - t0:.1f} s after it")
        assert alert.raised_at == pytest.approx(t0 + confirm_s, abs=0.01)
    finally:
        process.stop()
        await engine.dispose()
