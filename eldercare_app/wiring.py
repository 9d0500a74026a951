"""Process wiring: which part feeds which inside `eldercare run`.

    MQTT ─▶ ingest ─readings─▶ detectors ─transitions─▶ alerts ─▶ notifications
                │                                         │
                ▼                                         ▼
            InfluxDB                           gateway (API, live stream, pages)

This is the one place that builds the stages and hands each its parts; with the CLI
beside it in `eldercare_app/`, the only package that imports every stage. Parts are
started downstream-first (alerts before detectors before ingest) so nothing is
handed to a stage that is not listening yet, and stopped upstream-first so every
acknowledged message has been handed all the way on.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import uvicorn
from fastapi import FastAPI

import alerts.models  # noqa: F401  (tables)
import eldercare.registry_store  # noqa: F401  (tables)
import ingest.unregistered  # noqa: F401  (tables)
from alerts.events import InfluxAlertEventRecorder
from alerts.pipeline import AlertPipeline
from alerts.runtime import build_alerts
from alerts.service import AlertService
from alerts.store import AlertStore
from alerts.store_availability import AlertStoreAvailability
from detectors.catalogue import registry_problems
from detectors.runtime import DetectorRuntime
from detectors.snapshot_store import SnapshotStore
from eldercare.clock import Clock, WallClock
from eldercare.db import create_engine, session_factory
from eldercare.health import HEALTH
from eldercare.influx import InfluxClient
from eldercare.logs import get_logger
from eldercare.migrate import upgrade
from eldercare.periodic import Periodic
from eldercare.registry_index import RegistryIndex
from eldercare.registry_store import Sessions
from eldercare.registry_watch import OnChange, RegistryWatcher
from eldercare.settings import Settings
from eldercare.stage_contracts import Component
from eldercare_app import privacy  # noqa: F401  (tables)
from eldercare_app.gc_pauses import freeze_grown, freeze_loaded, watch_pauses
from eldercare_app.local_services import ISSUED_DIR, LocalServices
from eldercare_app.mqtt_accounts import acl_text, issue_credentials, reload_broker, write_private
from eldercare_app.run_lease import RunLease
from eldercare_app.site_status_points import site_status_tracker
from field_service.device_events import DeviceEventSink
from field_service.device_faults import DeviceFaultWatch
from field_service.orders import OrderStore
from field_service.policy import FieldPolicy
from gateway.alert_adapter import PipelineAlertService
from gateway.app import create_app  # also the users, tokens, audit and family tables
from gateway.family_link import GatewayContactPreferences
from gateway.sign_in_throttle import StoredSignInThrottle
from ingest.service import IngestService
from ingest.site_status import FanOutSink, SiteStatusTracker

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

log = get_logger(__name__)


def import_all_tables() -> None:
    """Every module that declares tables is imported at the top of this one, so by now
    `Base.metadata` holds the whole store; kept as the name callers and tests use."""


async def prepare_store(engine: AsyncEngine) -> None:
    """Bring the relational store to the current schema (Alembic migrations), with
    every stage's tables known to the kernel's migration runner."""
    import_all_tables()
    await upgrade(engine)


class _AsyncIndex:
    """The gateway reads the registry through an async provider."""

    def __init__(self, watcher: RegistryWatcher) -> None:
        self._watcher = watcher

    async def current(self) -> RegistryIndex:
        return self._watcher.current()

    async def refresh(self) -> RegistryIndex:
        return await self._watcher.refresh()


@dataclass(frozen=True)
class PlatformParts:
    """The parts `build_platform` made, for tests and tools that drive a running platform."""

    alerts: AlertPipeline
    alert_service: AlertService
    alert_store: AlertStore
    # "alert store unavailable since T, reason" (None while it takes writes), for
    # /healthz and the console banner: `.status()`.
    alert_store_availability: AlertStoreAvailability
    detectors: DetectorRuntime
    ingest: IngestService
    status: SiteStatusTracker
    influx: InfluxClient
    sessions: Sessions
    app: FastAPI | None  # None when the gateway is not served


@dataclass
class Platform:
    settings: Settings
    engine: AsyncEngine
    registry: RegistryWatcher
    components: list[Component]  # in start order
    parts: PlatformParts
    http_server: uvicorn.Server | None = None  # when the gateway is served
    lease: RunLease | None = None  # this process's claim on the store, taken when built
    _serve_task: asyncio.Task[None] | None = None
    _stream_wake: Periodic | None = None
    _lease_renewal: Periodic | None = None

    async def start(self) -> None:
        if self.lease is not None:
            self._lease_renewal = self.lease.renewal()
            self._lease_renewal.start()
        watch_pauses()
        await self.registry.start()
        for component in self.components:
            await component.start()
            log.info("started", extra={"component": component.name})
        freeze_loaded()  # the registry and what the components loaded live as long
        if self.http_server is not None:
            self._serve_task = asyncio.create_task(self.http_server.serve(), name="http")
            while not self.http_server.started:
                if self._serve_task.done():
                    await self._serve_task  # raises the bind error
                    raise RuntimeError("HTTP server stopped before it started")
                await asyncio.sleep(0.05)
        if self.http_server is not None and self.parts.app is not None:
            # Each tick waits (up to 60 s) for the next alert write, then pokes the stream.
            self._stream_wake = Periodic(
                "stream-wake",
                partial(wake_stream_on_alert_write, self.parts.alert_store, self.parts.app),
                every_s=0.001,
                overdue_after_s=180.0,
            )
            self._stream_wake.start()

    async def stop(self) -> None:
        if self._stream_wake is not None:
            await self._stream_wake.stop()
        if self.http_server is not None and self._serve_task is not None:
            self.http_server.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._serve_task, 10)
        for component in reversed(self.components):
            try:
                await component.stop()
            except Exception:
                log.exception("stop failed", extra={"component": component.name})
        await self.registry.stop()
        await hand_over_alert_events(self.parts.alerts)
        for client in [self.parts.influx, *self.parts.alerts.resources]:
            await client.aclose()
        if self._lease_renewal is not None:
            await self._lease_renewal.stop()
        if self.lease is not None:
            await self.lease.release()  # a restart need not wait for the expiry
        await self.engine.dispose()


def device_event_sink(
    settings: Settings, sessions: Sessions, index: Callable[[], RegistryIndex]
) -> DeviceEventSink:
    """Devices' own tests and residents' button requests, recorded by the field service."""
    return DeviceEventSink(
        sessions, OrderStore(sessions, FieldPolicy.load(settings.field_policy)), index
    )


async def hand_over_alert_events(pipeline: AlertPipeline, flush_s: float = 5.0) -> None:
    """Alert events InfluxDB has not taken yet (it is away, or hung) go to the outbox for
    the next run, after one bounded try: a stop must not wait out a hung InfluxDB."""
    recorder = pipeline.recorder
    if not isinstance(recorder, InfluxAlertEventRecorder):
        return
    with contextlib.suppress(Exception):
        await asyncio.wait_for(recorder.flush(), flush_s)
    try:
        await recorder.hand_over()
    except OSError:
        log.exception("alert events not handed over", extra={"lines": len(recorder._backlog)})


async def wake_stream_on_alert_write(store: AlertStore, app: FastAPI) -> None:
    """Poke the gateway's live stream after the next alert write of this process, so a new
    alert reaches the console at once instead of at the stream's next poll (0.25 s)."""
    seen = store.version
    await store.wait_changed(60.0, seen)
    if store.version != seen:
        app.state.gateway.hub.poke()


def local_broker_follower(settings: Settings) -> OnChange:
    """A registry listener keeping the project's local Mosquitto (the one `eldercare
    services up` made in this run directory) in step with the registry: accounts for new
    sites, none for removed ones, the ACL regenerated, then SIGHUP. A new site's password
    goes to `<broker dir>/issued/<site>` (0600) to be copied into its gateway. Does
    nothing when there is no local broker with accounts here (e.g. a deployment's)."""
    mosquitto = LocalServices(settings.run_dir).mosquitto
    files = mosquitto.broker_files

    def sync(index: RegistryIndex) -> bool:
        if not (files.password_file.exists() and mosquitto.running()):
            return False
        # Sites only (those that can have an account): the platform's own password is
        # the one this process connected with, and stays.
        sites = acl_text(index.document).sites
        issued = issue_credentials(files, index.document, only=sites)
        for secret in issued:
            write_private(mosquitto.dir / ISSUED_DIR / secret.user, secret.password + "\n")
        if issued:
            log.warning(
                "mqtt accounts created for new sites; copy each password file into its"
                " site's gateway, then delete it",
                extra={"sites": [s.user for s in issued], "dir": str(mosquitto.dir / ISSUED_DIR)},
            )
        return reload_broker(files)

    async def on_change(index: RegistryIndex) -> None:
        if await asyncio.to_thread(sync, index):
            log.info("local broker reloaded", extra={"version": index.version})

    return on_change


async def build_platform(
    settings: Settings,
    *,
    clock: Clock | None = None,
    serve_http: bool = True,
    stages: bool = True,
) -> Platform:
    """Construct every part, wired together; nothing runs until `Platform.start()`.
    `stages=False`: only the gateway runs (a cluster's gateway role; the stages run in
    their own processes and meet it in the shared store)."""
    clock = clock or WallClock()
    engine = create_engine(settings.database_url)
    await prepare_store(engine)
    sessions = session_factory(engine)
    # Before anything connects (MQTT above all): a second platform on this store refuses.
    # Only the single-process platform: a cluster's gateways (`stages=False`) share the
    # store with each other and with the other roles, each role keeping its own rule on
    # NATS (one active pipeline by its lease, partitions by theirs).
    lease = RunLease(sessions, ttl_s=settings.run_lease_ttl_s) if stages else None
    if lease is not None:
        try:
            await lease.acquire()
        except BaseException:
            await engine.dispose()
            raise
    registry = RegistryWatcher(sessions, on_change=[local_broker_follower(settings)])
    influx = InfluxClient.from_settings(settings)

    alert_pipeline, alert_service = await build_alerts(
        settings,
        registry.current,
        clock=clock,
        engine=engine,
        policies_dir=settings.alert_policies_dir,
        # Families' channel choices from the portal, kept in the gateway's tables.
        preferences=GatewayContactPreferences(sessions),
        # An unwritable store shows in /healthz and the console's banner (wall time).
        availability=AlertStoreAvailability(health=HEALTH),
    )
    detector_runtime = DetectorRuntime(
        registry.current,
        alert_pipeline,
        clock_mode=settings.clock_mode,
        clock=clock,
        snapshot_store=SnapshotStore(engine),
        snapshot_every_s=settings.detector_snapshot_every_s,
        on_growth=freeze_grown,
    )

    status = site_status_tracker(settings, registry.current, alert_service.store, influx, clock)
    # Devices' own tests and residents' requests from a button: after the detectors, so
    # an SOS in the same batch never waits for them.
    device_events = device_event_sink(settings, sessions, registry.current)
    ingest = IngestService(
        settings,
        registry.current,
        FanOutSink(status, detector_runtime, device_events),
        clock=clock,
    )
    field_components: list[Component] = []
    if settings.device_fault_watch:
        # Overdue device tests and unfixed faults, raised as device_fault notices; in a
        # replay (event clock) on the readings' time (the detectors' watermark).
        def fault_now() -> float | None:
            if settings.clock_mode == "event":
                return detector_runtime.watermark
            return clock.now()

        field_components.append(
            DeviceFaultWatch(sessions, registry.current, alert_pipeline, fault_now)
        )

    http_server = None
    app = None
    if serve_http:
        app = create_app(
            settings,
            sessions=sessions,
            index_provider=_AsyncIndex(registry),
            alert_service=PipelineAlertService(alert_service),
            influx=influx,
            clock=clock,
            # API edits get the same detector-override check as `registry apply`.
            registry_validators=[registry_problems],
            # A cluster's gateways (no stages here) share one sign-in budget.
            sign_in_throttle=None if stages else StoredSignInThrottle(sessions),
        )
        config = uvicorn.Config(
            app,
            host=settings.http_host,
            port=settings.http_port,
            log_level="warning",
            # uvicorn's records go through our formatter (which masks secrets); no access
            # log, so no request line can carry a credential into the log.
            log_config=None,
            access_log=False,
            lifespan="on",
            # Open live streams must not hold a shutdown up.
            timeout_graceful_shutdown=3,
        )
        http_server = uvicorn.Server(config)
        # uvicorn before 0.29 installed its own handlers unless told not to; later ones
        # have no such attribute and setting it is harmless.
        http_server.install_signal_handlers = lambda: None  # type: ignore[attr-defined]

    return Platform(
        settings=settings,
        engine=engine,
        registry=registry,
        components=(
            [alert_pipeline, *field_components, detector_runtime, status, ingest] if stages else []
        ),
        parts=PlatformParts(
            alerts=alert_pipeline,
            alert_service=alert_service,
            alert_store=alert_service.store,
            alert_store_availability=alert_pipeline.availability,
            detectors=detector_runtime,
            ingest=ingest,
            status=status,
            influx=influx,
            sessions=sessions,
            app=app,
        ),
        http_server=http_server,
        lease=lease,
    )


async def run_until_signalled(settings: Settings) -> None:
    platform = await build_platform(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await platform.start()
    log.info(
        "platform running",
        extra={
            "http": f"http://{settings.http_host}:{settings.http_port}",
            "mqtt": f"{settings.mqtt_host}:{settings.mqtt_port}",
            "influx": settings.influx_url,
        },
    )
    lease_lost = platform.lease.lost if platform.lease is not None else asyncio.Event()
    try:
        # A lease taken over means another platform runs on this store: stop too.
        stopping = [asyncio.create_task(stop.wait()), asyncio.create_task(lease_lost.wait())]
        _, pending = await asyncio.wait(stopping, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
    finally:
        log.info("stopping")
        await platform.stop()
