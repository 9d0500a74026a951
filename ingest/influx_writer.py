"""Durable, batched writes to InfluxDB: written, or else spooled to disk.

`await writer.write(lines)` returns once the lines are durable: in InfluxDB, or
fsync'd to the spool when InfluxDB cannot take them. Only then may the MQTT
messages behind them be acknowledged (at least once, end to end).

Batching: lines from every caller are coalesced, at most `max_lines` (5,000) a
request and at most `max_in_flight` (2) requests at a time. A write waits up to
`linger_s` (20 ms) after its first line arrived for more to join it, unless
`eager_lines` (500) are already waiting: at 1,000 msg/s this makes ~50 POSTs a
second instead of one per MQTT batch, and costs a quiet system at most 20 ms
before its lines are durable (so before the MQTT ack, not before the detectors:
see `ingest.service`). `eager_lines` stays well under the broker's in-flight
window (1,000): a flood is not held at the window waiting out the linger.
`submit(lines)` returns the future at once, so a caller can go on while its
lines linger.

Failures: an outage or a 5xx is retried with backoff (`attempts`); if InfluxDB
still cannot take the batch, it goes to the spool and the writer marks
InfluxDB down, so later batches spool at once instead of waiting out retries.
A drain task pings InfluxDB and replays the spool in order, oldest segment
first; the first replay that succeeds marks InfluxDB up again. A batch
InfluxDB refuses as malformed (a 4xx: a field type conflict, say) is counted
and logged, not retried: sending it again would never succeed. Points are
keyed by device and event time, so anything written twice overwrites itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from eldercare import health, metrics
from eldercare.influx import InfluxClient, InfluxError
from eldercare.logs import get_logger
from eldercare.periodic import Periodic
from ingest.spool import Spool, SpoolFull

log = get_logger(__name__)

_WRITTEN = metrics.counter("ingest_written_total", "lines written to InfluxDB")
_SPOOLED = metrics.counter("ingest_spooled_total", "lines spooled to disk (InfluxDB away)")
_DRAINED = metrics.counter("ingest_spool_drained_total", "spooled lines replayed into InfluxDB")
_REQUESTS = metrics.counter("ingest_influx_requests_total", "write requests (coalesced batches)")
_REFUSED = metrics.counter("ingest_influx_refused_total", "batches InfluxDB refused as invalid")
_WRITE_ERRORS = metrics.counter("ingest_influx_errors_total", "failed InfluxDB write attempts")
_INFLUX_UP = metrics.gauge("ingest_influx_up", "1 while InfluxDB takes writes, 0 while spooling")
_SPOOL_BYTES = metrics.gauge("ingest_spool_bytes", "bytes waiting in the spool")
_SPOOL_REFUSED = metrics.counter(
    "ingest_spool_refused_total",
    "lines the full spool refused (left unacknowledged with the broker, redelivered later)",
)


def linger_left(
    pending_lines: int, first_at: float, now: float, *, linger_s: float, eager_lines: int
) -> float:
    """Seconds a coalesced write should still wait for more lines (0: write now).

    A request of `eager_lines` goes at once; otherwise the oldest waiting line bounds
    the wait, so no line lingers more than `linger_s` before its write starts."""
    if pending_lines >= eager_lines:
        return 0.0
    return max(0.0, first_at + linger_s - now)


class InfluxWriter:
    def __init__(
        self,
        client: InfluxClient,
        db: str,
        spool: Spool,
        *,
        max_lines: int = 5000,
        linger_s: float = 0.02,
        eager_lines: int = 500,
        max_in_flight: int = 2,
        attempts: int = 3,
        retry_initial: float = 0.2,
        drain_interval: float = 1.0,
        hung_after_s: float = 3.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.db = db
        self.spool = spool
        self.max_lines = max_lines
        self.eager_lines = min(eager_lines, max_lines)
        self.linger_s = linger_s
        self.max_in_flight = max(1, max_in_flight)
        self.attempts = attempts
        self.retry_initial = retry_initial
        self.drain_interval = drain_interval
        self.monotonic = monotonic
        self.influx_up = True
        self.written = 0
        self.spooled = 0
        self.spool_refused = 0  # lines refused by a full spool
        self._spool_full = False
        self._spool_failed: str | None = None  # why the last spool append failed, if it did
        self.drained = 0
        self.refused_batches = 0
        self.requests = 0  # write requests made (coalesced batches), for tests and stats
        # (lines, their future, monotonic time they arrived)
        self._pending: list[tuple[Sequence[str], asyncio.Future[None], float]] = []
        self._pending_lines = 0
        self._wake = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        # Replays the spool; and watches the write path: a write that neither succeeds nor
        # fails (InfluxDB hung, not down) must not leave it looking up.
        self._drainer = Periodic("influx-spool-drain", self.drain_once, drain_interval)
        self._watch = Periodic("influx-write-watch", self.check_write_path, 1.0)
        self.hung_after_s = hung_after_s
        self._attempts: dict[object, float] = {}  # write requests in flight → monotonic start
        self._writes: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._spool_lock = asyncio.Lock()

    async def start(self) -> None:
        _INFLUX_UP.set(1)
        _SPOOL_BYTES.set(self.spool.bytes)
        self._flusher = asyncio.create_task(self._flush_loop(), name="influx-flush")
        self._drainer.start()
        self._watch.start()

    async def stop(self) -> None:
        """Write (or spool) what is pending, then stop. The spool stays for the next run."""
        self._stopping = True
        self._wake.set()
        if self._flusher is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        await self._drainer.stop()
        await self._watch.stop()
        for part in ("influx", "spool"):  # no longer this writer's to report
            health.restored(part)
        self.spool.close()

    async def write(self, lines: Sequence[str]) -> None:
        """Return once `lines` are durable (written or spooled)."""
        if lines:
            await self.submit(lines)

    def submit(self, lines: Sequence[str]) -> asyncio.Future[None]:
        """Queue `lines`; the future is done once they are durable (written or spooled),
        or fails if even the spool could not take them."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if not lines:
            future.set_result(None)
            return future
        if self._stopping:
            raise RuntimeError("writer stopped")
        self._pending.append((lines, future, self.monotonic()))
        self._pending_lines += len(lines)
        if self._pending_lines >= self.eager_lines or len(self._pending) == 1:
            self._wake.set()
        return future

    @property
    def pending_lines(self) -> int:
        return self._pending_lines

    # -- flushing ------------------------------------------------------------------
    async def _flush_loop(self) -> None:
        while True:
            if not self._pending:
                if self._stopping:
                    if self._writes:
                        await asyncio.wait(set(self._writes))
                        continue
                    return
                await self._sleep_until_woken(None)
                continue
            if len(self._writes) >= self.max_in_flight:
                await asyncio.wait(set(self._writes), return_when=asyncio.FIRST_COMPLETED)
                continue
            if not self._stopping:
                left = linger_left(
                    self._pending_lines,
                    self._pending[0][2],
                    self.monotonic(),
                    linger_s=self.linger_s,
                    eager_lines=self.eager_lines,
                )
                if left > 0:
                    await self._sleep_until_woken(left)
                    continue
            items = self._take_pending()
            task = asyncio.create_task(self._write_and_settle(items), name="influx-write")
            self._writes.add(task)
            task.add_done_callback(self._writes.discard)

    async def _sleep_until_woken(self, within_s: float | None) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):  # not `wait_for`: see AlertStore.wait_changed
            async with asyncio.timeout(within_s):
                await self._wake.wait()

    def _take_pending(self) -> list[tuple[Sequence[str], asyncio.Future[None], float]]:
        """Whole callers' line lists, up to about `max_lines` (one list may be larger:
        `_write_items` cuts it into requests)."""
        taken = 0
        n = 0
        for lines, _, _ in self._pending:
            if n and taken + len(lines) > self.max_lines:
                break
            taken += len(lines)
            n += 1
        items, self._pending = self._pending[:n], self._pending[n:]
        self._pending_lines -= taken
        return items

    async def _write_and_settle(
        self, items: list[tuple[Sequence[str], asyncio.Future[None], float]]
    ) -> None:
        try:
            await self._write_items(items)
        except SpoolFull as exc:  # logged once per episode by _spool
            for _, future, _ in items:
                if not future.done():
                    future.set_exception(exc)
        except Exception as exc:  # the spool itself failed: nothing is durable
            log.exception("write and spool both failed")
            for _, future, _ in items:
                if not future.done():
                    future.set_exception(exc)
        else:
            for _, future, _ in items:
                if not future.done():
                    future.set_result(None)

    async def _write_items(
        self, items: list[tuple[Sequence[str], asyncio.Future[None], float]]
    ) -> None:
        chunk: list[str] = []
        for lines, _, _ in items:
            start = 0
            while start < len(lines):
                room = self.max_lines - len(chunk)
                chunk.extend(lines[start : start + room])
                start += room
                if len(chunk) >= self.max_lines:
                    await self._write_durably(chunk)
                    chunk = []
        if chunk:
            await self._write_durably(chunk)

    async def _write_durably(self, lines: list[str]) -> None:
        body = "\n".join(lines).encode("utf-8")
        if self.influx_up:
            self.requests += 1
            _REQUESTS.inc()
            outcome = await self._try_write(body, len(lines))
            if outcome == "written":
                self.written += len(lines)
                _WRITTEN.inc(len(lines))
                return
            if outcome == "refused":
                return
        await self._spool(body, len(lines))
        self.spooled += len(lines)
        _SPOOLED.inc(len(lines))

    async def _try_write(self, body: bytes, n_lines: int) -> str:
        """Outcome: `written`, `refused` (invalid data: retrying cannot help) or `failed`."""
        delay = self.retry_initial
        for attempt in range(1, self.attempts + 1):
            attempt_key = object()
            self._attempts[attempt_key] = self.monotonic()
            try:
                try:
                    await self.client.write_body(body, self.db)
                finally:
                    del self._attempts[attempt_key]
                return "written"
            except InfluxError as exc:
                _WRITE_ERRORS.inc()
                if not exc.retryable:
                    self.refused_batches += 1
                    _REFUSED.inc()
                    log.error(
                        "InfluxDB refused a batch; not retried",
                        extra={"lines": n_lines, "error": str(exc)[:300]},
                    )
                    return "refused"
                if attempt == self.attempts:
                    break
                await asyncio.sleep(delay)
                delay *= 2
        self._mark_down("write failed after retries")
        return "failed"

    async def _spool(self, body: bytes, n_lines: int) -> None:
        async with self._spool_lock:
            try:
                await asyncio.to_thread(self.spool.append, body)
            except SpoolFull as exc:
                self.spool_refused += n_lines
                _SPOOL_REFUSED.inc(n_lines)
                if not self._spool_full:
                    log.error(
                        "spool full: readings stay unacknowledged with the broker until "
                        "InfluxDB is back (detection goes on)",
                        extra={"why": str(exc)},
                    )
                self._spool_full = True
                raise
            except Exception as exc:  # unwritable, disk error: nothing durable
                self._spool_failed = repr(exc)[:200]
                raise
            self._spool_failed = None
            if self._spool_full:
                log.info("spool taking batches again", extra={"bytes": self.spool.bytes})
            self._spool_full = False
        _SPOOL_BYTES.set(self.spool.bytes)

    def _mark_down(self, why: str) -> None:
        if self.influx_up:
            log.warning("InfluxDB unreachable: spooling to disk", extra={"why": why})
        self.influx_up = False
        _INFLUX_UP.set(0)

    def _mark_up(self) -> None:
        if not self.influx_up:
            log.info("InfluxDB back: writing directly, draining the spool")
        self.influx_up = True
        _INFLUX_UP.set(1)

    # -- health ----------------------------------------------------------------------
    def stalled_s(self) -> float:
        """How long the oldest write request in flight has been waiting (0: none)."""
        if not self._attempts:
            return 0.0
        return max(0.0, self.monotonic() - min(self._attempts.values()))

    async def check_write_path(self) -> None:
        """Report the write path and the spool to `eldercare.health` (every second)."""
        stalled = self.stalled_s()
        if stalled >= self.hung_after_s:
            health.impaired(
                "influx", f"InfluxDB write hung: no answer for {stalled:.0f} s (spooling next)"
            )
            _INFLUX_UP.set(0)
        elif not self.influx_up:
            health.impaired("influx", "InfluxDB unreachable: readings spooled to disk")
        else:
            health.restored("influx")
            _INFLUX_UP.set(1)
        if self._spool_full:
            health.impaired("spool", "spool full: readings stay unacknowledged with the broker")
        elif self._spool_failed is not None and not self.influx_up:
            health.impaired("spool", f"spool cannot be written: {self._spool_failed}")
        else:
            health.restored("spool")

    # -- draining --------------------------------------------------------------------
    async def drain_once(self) -> bool:
        """Replay the spool in order. True when it is empty afterwards."""
        if self.spool.is_empty():
            return True
        if not self.influx_up and not await self.client.ping():
            return False
        async with self._spool_lock:
            await asyncio.to_thread(self.spool.seal)
            segments = self.spool.sealed_segments()
        for segment in segments:
            records = await asyncio.to_thread(_read_all, segment)
            for body in records:
                try:
                    await self.client.write_body(body, self.db)
                except InfluxError as exc:
                    if exc.retryable:
                        self._mark_down("drain write failed")
                        return False
                    self.refused_batches += 1
                    _REFUSED.inc()
                    log.error("InfluxDB refused a spooled batch", extra={"error": str(exc)[:300]})
                n = body.count(b"\n") + 1
                self.drained += n
                _DRAINED.inc(n)
                self._mark_up()
            self.spool.remove(segment)
            _SPOOL_BYTES.set(self.spool.bytes)
        return self.spool.is_empty()


def _read_all(segment: Path) -> list[bytes]:
    return list(Spool.read(segment))
