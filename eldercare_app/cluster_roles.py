"""`eldercare run --role ...`: the platform as separate processes on NATS JetStream.

    MQTT ─$share─▶ ingest workers ──readings.<partition>──▶ detector workers
                        │                                       │ (partition leases)
                        ▼                                       ▼
                     InfluxDB                      transitions.<partition>
                                                                │
                            gateways ◀─alerts.changed── pipeline (one active, leased)
                               │                                │
                               └──────────── PostgreSQL ────────┘

Each role is a `Component` list run by `run_role`; the stages are the same objects
`eldercare run` wires in one process (eldercare_app.wiring), handed JetStream sinks
and sources instead of each other. docs/cluster.md says why it is cut this way.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import nats.errors
import nats.js.errors
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from sqlalchemy.ext.asyncio import AsyncEngine

from alerts.store import AlertStore
from cluster.jetstream import JetStream, open_jetstream
from cluster.leases import Lease
from cluster.ownership import PartitionOwnership, lease_key
from cluster.partition_registry import PartitionRegistry
from cluster.partitions import (
    ALERTS_CHANGED_SUBJECT,
    TRANSITIONS_STREAM,
    TRANSITIONS_SUBJECT,
    partition_of,
)
from cluster.publishers import JetStreamReadings, JetStreamTransitions
from cluster.reader import partition_batches
from cluster.wire import WireError, transition_from
from detectors.runtime import DetectorRuntime
from detectors.snapshot_store import SiteStates, SnapshotStore
from eldercare import health
from eldercare.clock import Clock, WallClock
from eldercare.db import create_engine, session_factory
from eldercare.domain import Transition
from eldercare.influx import InfluxClient
from eldercare.logs import get_logger
from eldercare.migrate import at_head
from eldercare.periodic import Periodic
from eldercare.registry_index import RegistryIndex
from eldercare.registry_watch import RegistryWatcher
from eldercare.settings import Settings
from eldercare.stage_contracts import Component, ReadingSink
from eldercare.task_stop import cancel_and_wait
from eldercare_app.cluster_role_names import ROLES, Role
from eldercare_app.site_status_points import site_status_tracker
from ingest.site_status import SiteStatusTracker

if TYPE_CHECKING:
    # A detector worker imports none of these (the alert pipeline, the gateway and its
    # web framework, ingest's MQTT side: ~60 MB of a ~160 MB process); the roles that
    # use them import them in `build_role`.
    from alerts.pipeline import AlertPipeline
    from eldercare_app.wiring import Platform

log = get_logger(__name__)

PIPELINE_LEASE = "pipeline"
HEARTBEAT_EVERY_S = 5.0
HEARTBEAT_FILE = "heartbeat"
CONSUMER_PART = "transitions-consumer"  # the active pipeline's reader, in `eldercare.health`
SHARED_GROUP = "eldercare-ingest"  # the MQTT shared-subscription group of ingest workers


def worker_id(settings: Settings, role: str) -> str:
    return settings.worker_id or f"{role}@{socket.gethostname()}:{os.getpid()}"


def shared_topics(topics: Sequence[str]) -> list[str]:
    """The ingest subscriptions as one shared group: the broker gives each message to
    one ingest worker of the group."""
    return [t if t.startswith("$share/") else f"$share/{SHARED_GROUP}/{t}" for t in topics]


# --------------------------------------------------------------------------- detectors


class PartitionSnapshots(SnapshotStore):
    """The snapshot store seen by one partition's runtime: it loads only that
    partition's sites (of the registry as it is when the partition is taken)."""

    def __init__(
        self,
        engine: AsyncEngine,
        partition: int,
        partitions: int,
        index_provider: Callable[[], RegistryIndex],
    ) -> None:
        super().__init__(engine)
        self.partition = partition
        self.partitions = partitions
        self.index_provider = index_provider

    async def load_all(self) -> dict[str, SiteStates]:
        sites = [
            s for s in self.index_provider().sites
            if partition_of(s, self.partitions) == self.partition
        ]  # fmt: skip
        return await self.load_sites(sites)


class PartitionRunner:
    """One partition on this worker: its detector runtime, fed from the readings stream
    after the position of its last snapshot, recording snapshots and position together."""

    def __init__(
        self,
        partition: int,
        settings: Settings,
        stream: JetStream,
        index_provider: Callable[[], RegistryIndex],
        engine: AsyncEngine,
        clock: Clock,
        tap: ReadingSink | None = None,
    ) -> None:
        """`tap`: also handed every batch, before the detectors (the worker's site status)."""
        self.partition = partition
        self.settings = settings
        self.stream = stream
        self.tap = tap
        self.key = lease_key(partition)
        self.runtime = DetectorRuntime(
            index_provider,
            JetStreamTransitions(stream.js, settings.cluster_partitions),
            clock_mode=settings.clock_mode,
            clock=clock,
            snapshot_store=PartitionSnapshots(
                engine, partition, settings.cluster_partitions, index_provider
            ),
            snapshot_every_s=settings.cluster_snapshot_every_s,
        )
        self.position = 0  # the last stream sequence handed to the runtime
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.runtime.start()
        try:
            entry = await self.stream.positions.get(self.key)
            self.position = int(entry.value or b"0")
        except nats.js.errors.KeyNotFoundError:
            self.position = 0
        log.info(
            "partition restored",
            extra={"partition": self.partition, "position": self.position},
        )
        self._task = asyncio.create_task(self._consume(), name=f"partition-{self.partition}")
        # A reader that ends (it must run until cancelled) shows on this role's health.
        health.watch(self._task, self.health_part)

    @property
    def health_part(self) -> str:
        return f"partition-reader:{self.partition}"

    async def _consume(self) -> None:
        saved = time.monotonic()
        async for position, readings in partition_batches(
            self.stream.js, self.partition, self.position
        ):
            if readings:
                if self.tap is not None:
                    await self.tap.handle_readings(readings)
                await self.runtime.handle_readings(readings)
            self.position = position
            if time.monotonic() - saved >= self.settings.cluster_snapshot_every_s:
                await self.checkpoint()
                saved = time.monotonic()

    async def checkpoint(self) -> None:
        """Snapshots first, then the position they cover: a crash between the two leaves
        an older position, whose replay the runtime's recent-reading keys absorb."""
        position = self.position
        await self.runtime.save_snapshots()
        await self.stream.positions.put(self.key, str(position).encode())

    async def stop(self, save: bool) -> None:
        if self._task is not None:
            # Repeated until it ends: nats-py's fetch can swallow one cancellation while
            # readings keep arriving, and the hand-over would wait for ever.
            await cancel_and_wait(self._task)
            self._task = None
        health.restored(self.health_part)  # handed over: no longer this worker's part
        await self.runtime.stop(save=save)
        if save:
            await self.stream.positions.put(self.key, str(self.position).encode())


class DetectorWorker:
    """The detectors role: partition runners for the partitions this worker leases, over
    a registry of those partitions' sites only (`cluster.partition_registry`)."""

    name = "detector-worker"

    def __init__(
        self,
        settings: Settings,
        stream: JetStream,
        registry: PartitionRegistry,
        engine: AsyncEngine,
        clock: Clock,
        worker: str,
        status: SiteStatusTracker | None = None,
    ) -> None:
        """`status`: the site status points of the sites this worker holds (the map's
        online/offline and open alerts), fed by its partitions' readings."""
        self.settings = settings
        self.stream = stream
        self.registry = registry
        self.engine = engine
        self.clock = clock
        self.runners: dict[int, PartitionRunner] = {}
        self.gained_at: dict[int, float] = {}  # partition → when this worker took it
        self._gaining: set[int] = set()  # being restored
        self._lost_while_gaining: set[int] = set()
        self.status = status
        if status is not None:
            status.followed_since = self.followed_since
        self.ownership = PartitionOwnership(
            stream,
            worker,
            settings.cluster_partitions,
            settings.cluster_lease_ttl_s,
            self._gain,
            self._lose,
            self.registry.hold_all,  # the sites of every partition a turn took, in one read
        )

    def followed_since(self, site_id: str) -> float | None:
        """When this worker took the site's partition; None if it does not hold it."""
        return self.gained_at.get(partition_of(site_id, self.settings.cluster_partitions))

    async def _gain(self, partition: int) -> None:
        self._gaining.add(partition)
        try:
            # The partition's sites first: its runtime must never see a registry without
            # them.
            await self.registry.hold(partition)
            runner = PartitionRunner(
                partition,
                self.settings,
                self.stream,
                self.registry.current,
                self.engine,
                self.clock,
                tap=self.status,
            )
            try:
                await runner.start()
            except BaseException:
                await self.registry.release(partition)
                raise
            if partition in self._lost_while_gaining:
                # The lease expired while the partition was restored: another worker may
                # hold it now, so this runner neither runs nor saves.
                log.warning("partition lease lost while restoring", extra={"partition": partition})
                await runner.stop(save=False)
                await self.registry.release(partition)
                return
            self.runners[partition] = runner
            self.gained_at[partition] = self.clock.now()
        finally:
            self._gaining.discard(partition)
            self._lost_while_gaining.discard(partition)

    async def _lose(self, partition: int, graceful: bool) -> None:
        if partition in self._gaining:  # its `_gain` stops it once restored
            self._lost_while_gaining.add(partition)
            return
        self.gained_at.pop(partition, None)
        runner = self.runners.pop(partition, None)
        if runner is not None:
            await runner.stop(save=graceful)
        await self.registry.release(partition)  # once its runtime has stopped

    async def start(self) -> None:
        await self.registry.start()
        await self.ownership.start()
        if self.status is not None:
            await self.status.start()

    async def stop(self) -> None:
        if self.status is not None:
            await self.status.stop()
        await self.ownership.stop()
        await self.registry.stop()


# --------------------------------------------------------------------------- pipeline


class ActivePipeline:
    """The pipeline role: one instance active, holding the pipeline lease; the others
    stand by, trying to take it every third of a TTL.

    The active one consumes the transitions stream through one durable consumer (its
    position lives in JetStream, so a new active instance goes on where the old one
    acknowledged) and runs the escalation loop. Escalation state, the notification log
    and idempotent sends live in the shared store and already survive a restart, which
    is what a takeover is to them."""

    name = "pipeline"

    def __init__(
        self,
        settings: Settings,
        stream: JetStream,
        build: Callable[[], Awaitable[AlertPipeline]],
        worker: str,
        companions: Callable[[AlertPipeline], Sequence[Component]] = lambda _: (),
    ) -> None:
        """`companions`: parts that feed the active pipeline directly and must run once
        in the cluster (the device-fault watch), started and stopped with it."""
        self.settings = settings
        self.stream = stream
        self._build = build
        self._companions_of = companions
        self._companions: list[Component] = []
        self.lease = Lease(stream.leases, PIPELINE_LEASE, worker)
        self.pipeline: AlertPipeline | None = None
        self._consume_task: asyncio.Task[None] | None = None
        self._turns: Periodic | None = None
        # Activation (building the pipeline, warming it) runs beside the turns, which go on
        # renewing the lease: on a loaded machine it can outlast the TTL, and the lease
        # would expire under a pipeline still starting (seen at 20,000 homes on 2 cores).
        self._held = False
        self._activation: asyncio.Task[None] | None = None
        self.became_active = asyncio.Event()

    @property
    def active(self) -> bool:
        return self.pipeline is not None

    async def start(self) -> None:
        """Take the lease if it is free and wait for that activation (the turns renewing
        the lease meanwhile); else stand by."""
        await self.turn()
        # A `Periodic` (a failed turn is logged and retried; a stuck one shows on health).
        ttl_s = self.settings.cluster_lease_ttl_s
        self._turns = Periodic(
            f"pipeline-lease:{self.lease.holder}", self.turn, ttl_s / 3, overdue_after_s=ttl_s
        )
        self._turns.start()
        if self._activation is not None:
            await asyncio.wait({self._activation})

    async def stop(self) -> None:
        if self._turns is not None:
            await self._turns.stop()
            self._turns = None
        await self._deactivate()
        await self.lease.release()

    async def turn(self) -> None:
        if self._held:
            if not await self.lease.renew():
                log.warning("pipeline lease lost: standing by")
                await self._deactivate()
        elif await self.lease.take():
            self._held = True
            self._activation = asyncio.create_task(self._activate(), name="pipeline-activation")

    async def _activate(self) -> None:
        try:
            pipeline = await self._build()
            try:
                await pipeline.start()
            except BaseException:  # cancelled (the lease lost meanwhile) or failed
                with contextlib.suppress(Exception):
                    await pipeline.stop()
                raise
        except Exception:
            log.exception("pipeline activation failed; the lease is given back")
            self._held = False
            with contextlib.suppress(Exception):
                await self.lease.release()
            return
        self.pipeline = pipeline
        self._companions = list(self._companions_of(pipeline))
        for companion in self._companions:
            await companion.start()
        self._consume_task = asyncio.create_task(self._consume(pipeline), name="transitions")
        health.watch(self._consume_task, CONSUMER_PART)
        self.became_active.set()
        log.warning("pipeline active", extra={"holder": self.lease.holder})

    async def _deactivate(self) -> None:
        self._held = False
        if self._activation is not None:
            activation, self._activation = self._activation, None
            await cancel_and_wait(activation)
        if self._consume_task is not None:
            await cancel_and_wait(self._consume_task)
            self._consume_task = None
        health.restored(CONSUMER_PART)
        for companion in reversed(self._companions):
            await companion.stop()
        self._companions = []
        if self.pipeline is not None:
            pipeline, self.pipeline = self.pipeline, None
            await pipeline.stop()
            for resource in pipeline.resources:
                await resource.aclose()
        self.became_active.clear()

    async def _consume(self, pipeline: AlertPipeline) -> None:
        config = ConsumerConfig(
            durable_name="pipeline",
            ack_policy=AckPolicy.ALL,
            deliver_policy=DeliverPolicy.ALL,
            # What a dead active instance fetched but never acknowledged is delivered
            # again this long after: about when its lease has expired too.
            ack_wait=max(2.0, self.settings.cluster_lease_ttl_s),
            max_ack_pending=20_000,
        )
        sub = await self.stream.js.pull_subscribe(
            f"{TRANSITIONS_SUBJECT}.*", durable="pipeline", stream=TRANSITIONS_STREAM,
            config=config,
        )  # fmt: skip
        while True:
            try:
                msgs = await sub.fetch(500, timeout=0.5)
            except (nats.errors.TimeoutError, TimeoutError):
                continue
            if not msgs:
                continue
            transitions: list[Transition] = []
            for msg in msgs:
                try:
                    transitions.append(transition_from(msg.data))
                except WireError as exc:
                    log.error("undecodable transition skipped", extra={"error": str(exc)})
            await pipeline.handle_transitions(transitions)
            await msgs[-1].ack()  # AckPolicy.ALL: every message up to this one
            await self.stream.nc.publish(ALERTS_CHANGED_SUBJECT, b"")


# --------------------------------------------------------------------------- gateway


class LiveStreamWaker:
    """Wakes this gateway's live stream when any pipeline says the store changed; the
    stream's own poll of the shared store stays the fallback."""

    name = "live-stream-waker"

    def __init__(self, stream: JetStream, poke: Callable[[], None]) -> None:
        self.stream = stream
        self.poke = poke
        self._sub: object | None = None

    async def start(self) -> None:
        async def on_change(_msg: object) -> None:
            self.poke()

        self._sub = await self.stream.nc.subscribe(ALERTS_CHANGED_SUBJECT, cb=on_change)

    async def stop(self) -> None:
        if self._sub is not None:
            await self._sub.unsubscribe()  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- processes


@dataclass
class RoleProcess:
    """A running role: the JetStream connection, the registry, what it started."""

    role: Role
    stream: JetStream
    registry: RegistryWatcher | None  # None: the role keeps its own (detector workers)
    engine: AsyncEngine
    components: list[Component]
    heartbeat: Path  # touched while connected to NATS: the container's health check
    platform: Platform | None = None  # the gateway role serves HTTP through the platform
    _beat: Periodic | None = None

    async def start(self) -> None:
        if self.platform is not None:
            await self.platform.start()  # starts the registry too
        elif self.registry is not None:
            await self.registry.start()
        for component in self.components:
            await component.start()
            log.info("started", extra={"component": component.name, "role": self.role})
        self.heartbeat.parent.mkdir(parents=True, exist_ok=True)
        self._beat = Periodic(
            "heartbeat", self._beat_while_healthy, HEARTBEAT_EVERY_S, first_after_s=0.0
        )
        self._beat.start()

    async def _beat_while_healthy(self) -> None:
        """Touch the heartbeat while connected to NATS and nothing in this process is
        unhealthy (a stuck or dead loop, a reader that ended, an impaired part: what the
        gateway's `/healthz` reports), so the container's health check tells the truth."""
        if not self.stream.nc.is_connected:
            return
        problems = health.problems()
        if problems:
            log.warning(
                "role unhealthy: heartbeat withheld",
                extra={"role": self.role, "problems": [p.part for p in problems]},
            )
            return
        self.heartbeat.touch()

    async def stop(self) -> None:
        if self._beat is not None:
            await self._beat.stop()
            self._beat = None
        for component in reversed(self.components):
            try:
                await component.stop()
            except Exception:
                log.exception("stop failed", extra={"component": component.name})
        if self.platform is not None:
            await self.platform.stop()
        else:
            if self.registry is not None:
                await self.registry.stop()
            await self.engine.dispose()
        await self.stream.close()


async def build_role(role: Role, settings: Settings, *, clock: Clock | None = None) -> RoleProcess:
    """Construct one role's parts; nothing runs until `RoleProcess.start()`."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
    clock = clock or WallClock()
    me = worker_id(settings, role)
    stream = await open_jetstream(settings, name=me)
    if role == "gateway":
        from eldercare_app.wiring import build_platform

        platform = await build_platform(settings, clock=clock, serve_http=True, stages=False)
        app = platform.parts.app
        assert app is not None
        waker = LiveStreamWaker(stream, app.state.gateway.hub.poke)
        return RoleProcess(
            role,
            stream,
            platform.registry,
            platform.engine,
            [waker],
            heartbeat=settings.run_dir / HEARTBEAT_FILE,
            platform=platform,
        )
    engine = create_engine(settings.database_url)
    if role != "detectors" or not await at_head(engine):
        # Every stage's tables are imported to migrate; a detector worker on a store that
        # is up to date (the usual case) stays without them.
        from eldercare_app.wiring import prepare_store

        await prepare_store(engine)
    sessions = session_factory(engine)
    if role == "detectors":
        # Only the sites of the partitions the worker holds (cluster.partition_registry).
        held = PartitionRegistry(sessions, settings.cluster_partitions)
        # The map's status points for the sites of its partitions (see DetectorWorker).
        status = site_status_tracker(
            settings, held.current, AlertStore(engine), InfluxClient.from_settings(settings), clock
        )
        worker = DetectorWorker(settings, stream, held, engine, clock, me, status)
        return RoleProcess(
            role, stream, None, engine, [worker], heartbeat=settings.run_dir / HEARTBEAT_FILE
        )
    registry = RegistryWatcher(sessions)
    components: list[Component]
    if role == "ingest":
        from eldercare_app.wiring import device_event_sink
        from ingest.service import IngestService
        from ingest.site_status import FanOutSink

        sink = JetStreamReadings(stream.js, settings.cluster_partitions)
        shared = settings.model_copy(
            update={
                "mqtt_topics": shared_topics(settings.mqtt_topics),
                # One broker session per worker: the shared group spreads the messages.
                "mqtt_client_id": f"{settings.mqtt_client_id}-{me}"[:64],
            }
        )
        # Devices' own tests and residents' button requests are recorded here, as in one
        # process (after the readings are on the stream, so an SOS never waits for them).
        device_events = device_event_sink(settings, sessions, registry.current)
        components = [
            IngestService(shared, registry.current, FanOutSink(sink, device_events), clock=clock)
        ]
    else:
        from alerts.runtime import build_alerts
        from field_service.device_faults import DeviceFaultWatch
        from gateway.family_link import GatewayContactPreferences

        async def build() -> AlertPipeline:
            pipeline, _ = await build_alerts(
                settings,
                registry.current,
                clock=clock,
                engine=engine,
                policies_dir=settings.alert_policies_dir,
                preferences=GatewayContactPreferences(sessions),
            )
            return pipeline

        def device_faults(pipeline: AlertPipeline) -> list[Component]:
            # Overdue device tests and unfixed faults: raised by the active instance only.
            if not settings.device_fault_watch:
                return []
            return [DeviceFaultWatch(sessions, registry.current, pipeline, clock.now)]

        components = [ActivePipeline(settings, stream, build, me, device_faults)]
    return RoleProcess(
        role, stream, registry, engine, components, heartbeat=settings.run_dir / HEARTBEAT_FILE
    )


async def run_role_until_signalled(role: Role, settings: Settings) -> None:
    process = await build_role(role, settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await process.start()
    log.info("role running", extra={"role": role, "nats": settings.nats_url})
    try:
        await stop.wait()
    finally:
        await process.stop()
