"""The ingest stage: MQTT → decode → resolve → Reading → detectors + InfluxDB (or spool) → ack.

Messages are handled in micro-batches: whatever arrived while the previous
batch was being handled. For each batch, in this order:

1. decode every message (codecs; refused ones go to the quarantine, counted);
2. resolve the device (native: site + device id; vendor: its binding) and let
   the device's kind give vendor readings their meaning (`adapt_to_device`);
   unknown devices are noted in the unregistered list;
3. stamp site, room and resident into `eldercare.domain.Reading`s;
4. submit their lines to the InfluxDB writer, which coalesces batches for up
   to 20 ms and makes them durable (written, or spooled);
5. hand the readings to the detectors (`sink.handle_readings`) at once, while
   their lines linger and are written: an SOS does not wait for InfluxDB. That
   call returns once the transitions the readings caused are stored in the alert
   store; while the store cannot be written it holds (and so does ingest: the
   next batches wait, nothing is acknowledged), see `alerts.store_availability`;
6. acknowledge the batch's MQTT messages only once both 4 and 5 are done, in
   the order the batches arrived (a task of its own, so the next batches are
   decoded and handed on meanwhile).

A crash anywhere before 6 leaves the messages unacknowledged and the broker
redelivers them to our persistent session; points and readings are keyed by
device and event time, so the second delivery overwrites the first (and the
detectors drop readings they have seen, after handing on any transitions of theirs
the alert store has not taken yet)."""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

from eldercare import health, metrics
from eldercare.clock import Clock, WallClock
from eldercare.db import create_engine, session_factory
from eldercare.domain import Reading, Stream
from eldercare.influx import InfluxClient, LineProtocolError, encode_line, point_for_reading
from eldercare.logs import get_logger
from eldercare.periodic import Periodic
from eldercare.registry_index import RegistryIndex, ResolvedDevice
from eldercare.settings import Settings
from eldercare.stage_contracts import ReadingSink
from eldercare.wire import NATIVE_ROOT, format_native_topic
from ingest.codecs import DecodeLimits, adapt_to_device, decode
from ingest.codecs.limits import DEFAULT_LIMITS
from ingest.decoded import Decoded, NativeIdentity, RejectCause, Rejected
from ingest.influx_writer import InfluxWriter
from ingest.log_limit import LogLimiter
from ingest.mqtt_session import Backoff, InboundMessage, MqttConfig, MqttConnection, MqttError
from ingest.quarantine import Quarantine
from ingest.recent_keys import RecentKeys
from ingest.site_limits import EMERGENCY_STREAMS, SiteLimiter
from ingest.spool import Spool, SpoolFull
from ingest.unregistered import UnregisteredDevices, init_unregistered_store

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

log = get_logger(__name__)

_RECEIVED = metrics.counter("ingest_received_total", "MQTT messages received")
_DECODED = metrics.counter("ingest_decoded_total", "messages decoded into readings")
_IGNORED = metrics.counter("ingest_ignored_total", "messages with nothing to record")
_READINGS = metrics.counter("ingest_readings_total", "readings handed to the detectors")
_DUPLICATES = metrics.counter("ingest_duplicates_total", "readings seen before (redeliveries)")
_BATCHES = metrics.counter("ingest_batches_total", "micro-batches handled")
_ACKED = metrics.counter("ingest_acked_total", "MQTT messages acknowledged")
_RECONNECTS = metrics.counter("ingest_mqtt_reconnects_total", "MQTT connection attempts failed")
_LAG = metrics.gauge("ingest_lag_seconds", "wall time minus event time of the newest reading")
_HEARTBEAT = metrics.gauge(
    "ingest_heartbeat_timestamp_seconds", "wall time of ingest's last sign of life"
)
_CONNECTED = metrics.gauge("ingest_mqtt_connected", "1 while connected to the broker")

STATS_INTERVAL_S = 10.0
HOUSEKEEPING_INTERVAL_S = 1.0
UNREGISTERED_FLUSH_S = 5.0
DEDUP_WINDOW = 200_000  # reading keys remembered (100k-200k latest) to count duplicates
# Messages handed on but not yet durable; past this, handing on waits for acks. (QoS 1
# is bounded by the broker's in-flight window anyway; this bounds QoS 0 too.)
UNACKED_MAX = 20_000

SPOOL_FULL_RETRY_S = 10.0  # while the spool is full, fetch redeliveries this often
_NATIVE_PREFIX = NATIVE_ROOT + "/"

_Unacked = tuple[Sequence[InboundMessage], "asyncio.Future[None]", list[Reading]]
_STREAM_NAMES = {s.value: s for s in Stream}
EMERGENCY_LANE = "emergency_lane"  # its part in `eldercare.health`
EMERGENCY_TOPICS = tuple(format_native_topic("+", "+", s) for s in sorted(EMERGENCY_STREAMS))
EMERGENCY_QUEUE_MAX = 1000


def _share_group(topic: str) -> str | None:
    """The group of an MQTT shared subscription (`$share/<group>/<filter>`), else None."""
    if not topic.startswith("$share/"):
        return None
    return topic.split("/", 2)[1]


def _unshared(topic: str) -> str:
    return topic.split("/", 2)[2] if _share_group(topic) is not None else topic


def _covers_native(settings: Settings) -> bool:
    """Whether the main session subscribes to every native topic (a test or a sharded
    ingest following some sites only gets no emergency lane of its own); shared or not."""
    whole = ("#", f"{NATIVE_ROOT}/#", format_native_topic("+", "+", "+"))
    return any(_unshared(t) in whole for t in settings.mqtt_topics)


def emergency_topics(settings: Settings) -> tuple[str, ...]:
    """The emergency lane's topics: shared like the main session's (a cluster's ingest
    workers, one group), in a group of their own, so each emergency reaches one worker
    on each lane and the detectors drop the second copy as in one process."""
    group = next((g for t in settings.mqtt_topics if (g := _share_group(t)) is not None), None)
    if group is None:
        return EMERGENCY_TOPICS
    return tuple(f"$share/{group}-emergency/{t}" for t in EMERGENCY_TOPICS)


def _consume_outcome(future: asyncio.Future[None]) -> None:
    """Retrieve a write outcome nobody awaits, so asyncio does not log it as lost."""
    if not future.cancelled():
        future.exception()


class IngestService:
    """The ingest `Component`: `start()` spawns the pipeline, `stop()` drains and stops it."""

    name = "ingest"

    def __init__(
        self,
        settings: Settings,
        index_provider: Callable[[], RegistryIndex],
        sink: ReadingSink,
        *,
        clock: Clock | None = None,
        mqtt: MqttConfig | None = None,
        limits: DecodeLimits | None = None,
        max_batch: int = 5000,
        instance: str | None = None,
    ) -> None:
        self.settings = settings
        self.index_provider = index_provider
        self.sink = sink
        self.clock = clock or WallClock()
        self.mqtt_config = mqtt or MqttConfig.from_settings(settings)
        if limits is None and settings.clock_mode == "event":
            # Replaying a recording on its own event clock: a year-old event time is the
            # point, not a stuck spool or a reset device clock.
            limits = replace(DEFAULT_LIMITS, max_age_s=math.inf)
        self.limits = limits
        self.max_batch = max_batch
        self.instance = instance or f"{socket.gethostname()}:{settings.mqtt_client_id}"
        run_dir = settings.run_dir
        self.spool = Spool(
            run_dir / "spool",
            max_bytes=settings.spool_max_mb * 1024 * 1024,
            min_free_bytes=settings.spool_min_free_mb * 1024 * 1024,
        )
        self.quarantine = Quarantine(run_dir / "quarantine")
        self.influx = InfluxClient.from_settings(settings)
        self.writer = InfluxWriter(self.influx, settings.influx_db, self.spool)
        # An attribute, not only the module default, so a test can wait seconds, not 10 s.
        self.spool_full_retry_s = SPOOL_FULL_RETRY_S
        self._engine: AsyncEngine | None = None
        self.unregistered: UnregisteredDevices | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._loops = [
            Periodic("ingest-housekeeping", self._housekeep, HOUSEKEEPING_INTERVAL_S),
            Periodic(
                "ingest-unregistered-flush",
                self._flush_unregistered,
                UNREGISTERED_FLUSH_S,
                on_error=partial(self._log_housekeeping_error, "unregistered-flush"),
            ),
            Periodic(
                "ingest-stats",
                self._write_stats,
                STATS_INTERVAL_S,
                on_error=partial(self._log_housekeeping_error, "stats"),
            ),
        ]
        self._connection: MqttConnection | None = None
        self._seen = RecentKeys(DEDUP_WINDOW)
        self._stamps: dict[str, tuple[str | None, str | None]] = {}
        self._stamps_for: RegistryIndex | None = None
        # Per-site fairness (ingest/site_limits.py); a replay's arrival rate says nothing
        # about the devices, so event-clock runs are not throttled.
        self.limiter = (
            SiteLimiter(settings.ingest_site_rates)
            if settings.ingest_site_limits and settings.clock_mode == "wall"
            else None
        )
        self._log_limits = LogLimiter()
        self._throttled_report: dict[str, int] = {}
        # A second session for native SOS and fall topics only: a flood queued on the
        # main session (up to `queue_max` messages in this process, more at the broker)
        # cannot hold an emergency up. Both sessions get every emergency; the detectors
        # drop the second copy (same device, stream and event time).
        self.emergency_config = (
            MqttConfig.from_settings(
                settings,
                client_id=f"{settings.mqtt_client_id}-emergency",
                topics=emergency_topics(settings),
                queue_max=EMERGENCY_QUEUE_MAX,
            )
            if mqtt is None and settings.ingest_emergency_lane and _covers_native(settings)
            else None
        )
        self.ready = asyncio.Event()  # set once subscribed (tests, health)
        self._unacked = 0  # messages handed on, not yet acknowledged (this connection)
        self._ack_progress = asyncio.Event()
        # Cumulative figures, also exported as `ingest_stats` points.
        self.received = 0
        self.decoded = 0
        self.quarantined = 0
        self.unregistered_count = 0
        self.throttled = 0
        self.duplicates = 0
        self.readings = 0
        self.acked = 0
        self.lag_seconds = 0.0
        self._stats_last = (time.monotonic(), 0)

    # -- Component -------------------------------------------------------------
    async def start(self) -> None:
        self._engine = create_engine(self.settings.database_url)
        await init_unregistered_store(self._engine)
        self.unregistered = UnregisteredDevices(session_factory(self._engine))
        await self.writer.start()
        _HEARTBEAT.set(time.time())
        self._tasks = [asyncio.create_task(self._consume_forever(), name="ingest-consume")]
        if self.emergency_config is not None:
            self._tasks.append(
                asyncio.create_task(self._consume_emergencies(), name="ingest-emergencies")
            )
        for task in self._tasks:  # consumers, not periodic: health hears if one ends
            health.watch(task, task.get_name())
        for loop in self._loops:
            loop.start()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for loop in self._loops:
            await loop.stop()
        for part in ("broker", EMERGENCY_LANE, "ingest-consume", "ingest-emergencies"):
            health.restored(part)  # stopped: no longer this service's to report
        await self.writer.stop()
        if self.unregistered is not None:
            with contextlib.suppress(Exception):
                await self.unregistered.flush()
        self.quarantine.close()
        await self.influx.aclose()
        if self._engine is not None:
            await self._engine.dispose()

    # -- the reconnect loop, outside the message iteration -------------------------
    async def _consume_forever(self) -> None:
        backoff = Backoff(initial=0.5, maximum=30.0)
        while True:
            try:
                async with MqttConnection(self.mqtt_config) as conn:
                    self._connection = conn
                    _CONNECTED.set(1)
                    health.restored("broker")
                    backoff.reset()
                    self.ready.set()
                    await self._pump(conn)
            except MqttError as exc:
                delay = backoff.next()
                _RECONNECTS.inc()
                health.impaired("broker", f"MQTT broker unreachable: {exc}")
                log.warning(
                    "mqtt unavailable; reconnecting", extra={"error": str(exc), "in_s": delay}
                )
            except SpoolFull:
                # InfluxDB away and the spool at its cap (logged by the writer): the broker
                # keeps the unacknowledged messages; come back for them at a slow pace
                # instead of reconnecting at once, over and over.
                delay = max(backoff.next(), self.spool_full_retry_s)
            except Exception:
                # The batch was not acknowledged; after reconnecting, the broker resends it.
                delay = backoff.next()
                log.exception("ingest batch failed; reconnecting", extra={"in_s": delay})
            finally:
                _CONNECTED.set(0)
                self._connection = None
            await asyncio.sleep(delay)

    async def _consume_emergencies(self) -> None:
        """The emergency lane: few messages, each batch made durable, handed on and
        acknowledged before the next."""
        assert self.emergency_config is not None
        backoff = Backoff(initial=0.5, maximum=30.0)
        while True:
            try:
                async with MqttConnection(self.emergency_config) as conn:
                    backoff.reset()
                    health.restored(EMERGENCY_LANE)
                    async for batch in conn.batches(self.max_batch):
                        await self.handle_batch(batch)
                        conn.ack(batch)
            except Exception as exc:
                delay = backoff.next()
                # Emergencies still come on the main session, but a flood there may now
                # hold them up: the operator is told.
                health.impaired(EMERGENCY_LANE, f"emergency lane unavailable: {str(exc)[:200]}")
                held = self._log_limits.allow(f"emergency-lane:{type(exc).__name__}", 0.0)
                if held is not None:
                    log.warning(
                        "emergency lane unavailable; reconnecting (the main session still "
                        "carries emergencies)",
                        extra={"error": str(exc)[:300], "in_s": delay},
                    )
            await asyncio.sleep(delay)

    async def _pump(self, conn: MqttConnection) -> None:
        """Hand batches on as they come; acknowledge each, in order, once it is durable.
        Returns or raises when either side fails (then nothing later is acknowledged)."""
        unacked: asyncio.Queue[_Unacked] = asyncio.Queue()
        self._unacked = 0
        reader = asyncio.create_task(self._hand_on(conn, unacked), name="ingest-hand-on")
        acker = asyncio.create_task(self._ack_in_order(conn, unacked), name="ingest-ack")
        try:
            done, _ = await asyncio.wait({reader, acker}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        finally:
            for task in (reader, acker):
                task.cancel()
            for task in (reader, acker):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _hand_on(self, conn: MqttConnection, unacked: asyncio.Queue[_Unacked]) -> None:
        async for batch in conn.batches(self.max_batch):
            readings, durable = await self.hand_on_batch(batch)
            unacked.put_nowait((batch, durable, readings))
            self._unacked += len(batch)
            while self._unacked >= UNACKED_MAX:
                self._ack_progress.clear()
                await self._ack_progress.wait()

    async def _ack_in_order(self, conn: MqttConnection, unacked: asyncio.Queue[_Unacked]) -> None:
        while True:
            batch, durable, readings = await unacked.get()
            await durable  # raises if even the spool failed: this batch stays unacknowledged
            conn.ack(batch)
            self.acked += len(batch)
            _ACKED.inc(len(batch))
            self._unacked -= len(batch)
            self._ack_progress.set()
            self._count_duplicates(readings)

    # -- one batch ------------------------------------------------------------------
    async def handle_batch(self, batch: Sequence[InboundMessage]) -> list[Reading]:
        """Decode, resolve, write durably and hand on one batch; the caller acks it."""
        readings, durable = await self.hand_on_batch(batch)
        await durable
        return readings

    async def hand_on_batch(
        self, batch: Sequence[InboundMessage]
    ) -> tuple[list[Reading], asyncio.Future[None]]:
        """Decode and resolve one batch, submit its lines to the writer and hand its
        readings to the sink. The future is done once the lines are durable: only then
        may the batch be acknowledged."""
        readings, lines = self.prepare_batch(batch)
        durable = self.writer.submit(lines)
        try:
            if readings:
                await self.sink.handle_readings(readings)
                self.readings += len(readings)
                _READINGS.inc(len(readings))
                newest = max(r.ts for r in readings)
                self.lag_seconds = self.clock.now() - newest
                _LAG.set(self.lag_seconds)
        except BaseException:
            # Not acknowledged; the write still goes on (harmless: redelivery overwrites).
            durable.add_done_callback(_consume_outcome)
            raise
        _BATCHES.inc()
        _HEARTBEAT.set(time.time())
        return readings, durable

    def prepare_batch(self, batch: Sequence[InboundMessage]) -> tuple[list[Reading], list[str]]:
        """Decode, resolve and stamp: the readings and their line-protocol lines."""
        index = self.index_provider()
        if index is not self._stamps_for:
            self._stamps, self._stamps_for = {}, index
        readings: list[Reading] = []
        lines: list[str] = []
        decoded = 0
        ignored = 0
        limits = self.limits
        limiter = self.limiter
        quarantined_before = self.quarantined
        for m in batch:
            if m.bad_topic:
                self._quarantine(m, RejectCause.BAD_TOPIC.value, "topic is not UTF-8")
                continue
            native = m.topic.startswith(_NATIVE_PREFIX)
            if limiter is not None and native and not self._native_allowed(index, m):
                continue  # over its site's rate: dropped before it costs a decode
            result = decode(m.topic, m.payload, m.received_at, limits=limits)
            if type(result) is Decoded:
                decoded += 1
                identity = result.identity
                if type(identity) is NativeIdentity:
                    resolved = index.resolve_native(identity.site_id, identity.device_id)
                else:
                    resolved = index.resolve_vendor(identity.key)  # type: ignore[union-attr]
                if (
                    limiter is not None
                    and not native
                    and not self._vendor_allowed(index, resolved, result, m)
                ):
                    continue
                if resolved is None:
                    self._note_unregistered(result, m)
                    continue
                self._stamp(resolved, result, m, readings, lines)
            elif type(result) is Rejected:
                self._quarantine(m, result.cause.value, result.detail)
            else:
                ignored += 1
        if self.quarantined != quarantined_before:
            # Into the OS before the batch is acknowledged: a crash after the ack
            # must not lose the record of what was refused.
            self.quarantine.flush()
        self.received += len(batch)
        self.decoded += decoded
        _RECEIVED.inc(len(batch))
        _DECODED.inc(decoded)
        if ignored:
            _IGNORED.inc(ignored)
        if any(r.stream in EMERGENCY_STREAMS for r in readings):
            # Emergencies first: the detectors raise them before working through the rest.
            readings.sort(key=lambda r: r.stream not in EMERGENCY_STREAMS)
        return readings, lines

    def _native_allowed(self, index: RegistryIndex, m: InboundMessage) -> bool:
        """The site's rate check for `eldercare/<site>/<device>/<stream>`, from the topic."""
        assert self.limiter is not None
        levels = m.topic.split("/")
        site_id = levels[1] if len(levels) == 4 else None
        stream = _STREAM_NAMES.get(levels[-1])
        if self.limiter.allow(index, site_id, stream, m.received_at):
            return True
        self.throttled += 1
        return False

    def _vendor_allowed(
        self,
        index: RegistryIndex,
        resolved: ResolvedDevice | None,
        result: Decoded,
        m: InboundMessage,
    ) -> bool:
        """The rate check of a vendor message, once decoding told its device."""
        assert self.limiter is not None
        site_id = resolved.site.id if resolved is not None else None
        emergency = next((r.stream for r in result.readings if r.stream in EMERGENCY_STREAMS), None)
        if emergency is None and resolved is not None:
            # A button pattern the registry makes an SOS is one too (rare: a cheap check).
            for raw in result.readings:
                if raw.stream is Stream.ACTION:
                    meant = adapt_to_device(raw, resolved.device)
                    if meant is not None and meant.stream in EMERGENCY_STREAMS:
                        emergency = meant.stream
        if self.limiter.allow(index, site_id, emergency, m.received_at):
            return True
        self.throttled += 1
        return False

    def _stamp(
        self,
        resolved: ResolvedDevice,
        result: Decoded,
        m: InboundMessage,
        readings: list[Reading],
        lines: list[str],
    ) -> None:
        device = resolved.device
        stamp = self._stamps.get(device.id)
        if stamp is None:
            stamp = self._stamps[device.id] = (resolved.room_id, resolved.resident_id)
        room_id, resident_id = stamp
        native = result.source == "native"
        for raw in result.readings:
            # An action means what the registry says, whichever codec decoded it.
            if not native or raw.stream is Stream.ACTION:
                adapted = adapt_to_device(raw, device)
                if adapted is None:
                    continue
                raw = adapted
            reading = Reading(
                resolved.site.id,
                device.id,
                raw.stream,
                raw.ts,
                raw.fields,
                m.received_at,
                room_id,
                resident_id,
                result.source,
                time_from_payload=result.event_time_from_payload,
            )
            try:
                line = point_for_reading(reading)
            except LineProtocolError as exc:
                self._quarantine(m, RejectCause.SCHEMA.value, f"not storable: {exc}")
                continue
            readings.append(reading)
            lines.append(line)

    def _quarantine(self, m: InboundMessage, cause: str, detail: str) -> None:
        self.quarantined += 1
        self.quarantine.add(cause, detail, m.topic, m.payload, m.received_at)

    def _note_unregistered(self, result: Decoded, m: InboundMessage) -> None:
        self.unregistered_count += 1
        assert self.unregistered is not None
        self.unregistered.note(result.identity, result.source, m.topic, m.payload, m.received_at)

    def _count_duplicates(self, readings: Sequence[Reading]) -> None:
        """Count readings handled before (redeliveries), once their batch is acknowledged."""
        seen_before = self._seen.seen_before
        dups = 0
        for r in readings:
            # Reading.key without the enum lookups (device ids are unique across sites),
            # and the content: another value at the same event time is not a redelivery.
            if seen_before((r.device_id, r.stream, r.ts, tuple(sorted(r.fields.items())))):
                dups += 1
        if dups:
            self.duplicates += dups
            _DUPLICATES.inc(dups)

    # -- periodic work ----------------------------------------------------------------
    # Each its own `Periodic`: a failing flush is counted and shown in /healthz, and cannot
    # hold the heartbeat or the stats up.
    async def _housekeep(self) -> None:
        _HEARTBEAT.set(time.time())
        self.quarantine.flush()
        self._report_throttled(time.monotonic())

    async def _flush_unregistered(self) -> None:
        if self.unregistered is not None:
            await self.unregistered.flush()

    async def _write_stats(self) -> None:
        await self.writer.write([self.stats_line()])

    def _log_housekeeping_error(self, what: str, exc: Exception) -> None:
        # The same failure recurs every few seconds; a statement's text can be megabytes
        # (every parameter): one short line a minute, with a count.
        held = self._log_limits.allow(f"{what}:{type(exc).__name__}", time.monotonic())
        if held is not None:
            log.error(
                "ingest housekeeping failed; will retry",
                extra={
                    "work": what,
                    "error": f"{type(exc).__name__}: {str(exc)[:300]}",
                    "held": held,
                },
            )

    def _report_throttled(self, now: float) -> None:
        if self.limiter is None:
            return
        for site, n in self.limiter.take_throttled().items():
            self._throttled_report[site] = self._throttled_report.get(site, 0) + n
        if not self._throttled_report:
            return
        if self._log_limits.allow("throttled", now) is None:
            return
        worst = sorted(self._throttled_report.items(), key=lambda kv: -kv[1])
        log.warning(
            "sites over their message rate: throttled",
            extra={
                "sites": ", ".join(f"{site} ({n})" for site, n in worst[:10]),
                "site_count": len(worst),
                "dropped": sum(n for _, n in worst),
            },
        )
        self._throttled_report = {}

    def stats_line(self) -> str:
        """An `ingest_stats` point (docs/influx-schema.md)."""
        mono = time.monotonic()
        last_t, last_received = self._stats_last
        rate = (self.received - last_received) / max(mono - last_t, 1e-6)
        self._stats_last = (mono, self.received)
        fields: dict[str, Any] = {
            "received": self.received,
            "decoded": self.decoded,
            "quarantined": self.quarantined,
            "unregistered": self.unregistered_count,
            "throttled": self.throttled,
            "written": self.writer.written,
            "spooled": self.writer.spooled,
            "duplicates": self.duplicates,
            "lag_seconds": float(self.lag_seconds),
            "rate": float(rate),
        }
        ts_ns = int(self.clock.now() * 1e9)
        return encode_line("ingest_stats", {"instance": self.instance}, fields, ts_ns)

    @property
    def connected(self) -> bool:
        return self._connection is not None and self._connection.connected


__all__ = ["IngestService", "MqttError"]
