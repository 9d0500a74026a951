"""Durable, batched writes to InfluxDB: written, or else spooled to disk.

`await writer.write(lines)` returns once the lines are durable: in InfluxDB, or
fsync'd to the spool when InfluxDB cannot take them. Only then may the MQTT
messages behind them be acknowledged (at least once, end to end).

Batching: one write is in flight at a time; lines that arrive meanwhile are
coalesced into the next, at most `max_lines` (5,000) lines a request. No line
waits for a timer: a quiet system writes each reading at once (well inside the
1 s bound), a busy one writes big batches back to back.

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
from collections.abc import Sequence
from pathlib import Path

from eldercare import metrics
from eldercare.influx import InfluxClient, InfluxError
from eldercare.logs import get_logger
from ingest.spool import Spool

log = get_logger(__name__)

_WRITTEN = metrics.counter("ingest_written_total", "lines written to InfluxDB")
_SPOOLED = metrics.counter("ingest_spooled_total", "lines spooled to disk (InfluxDB away)")
_DRAINED = metrics.counter("ingest_spool_drained_total", "spooled lines replayed into InfluxDB")
_REFUSED = metrics.counter("ingest_influx_refused_total", "batches InfluxDB refused as invalid")
_WRITE_ERRORS = metrics.counter("ingest_influx_errors_total", "failed InfluxDB write attempts")
_INFLUX_UP = metrics.gauge("ingest_influx_up", "1 while InfluxDB takes writes, 0 while spooling")
_SPOOL_BYTES = metrics.gauge("ingest_spool_bytes", "bytes waiting in the spool")


class InfluxWriter:
    def __init__(
        self,
        client: InfluxClient,
        db: str,
        spool: Spool,
        *,
        max_lines: int = 5000,
        attempts: int = 3,
        retry_initial: float = 0.2,
        drain_interval: float = 1.0,
    ) -> None:
        self.client = client
        self.db = db
        self.spool = spool
        self.max_lines = max_lines
        self.attempts = attempts
        self.retry_initial = retry_initial
        self.drain_interval = drain_interval
        self.influx_up = True
        self.written = 0
        self.spooled = 0
        self.drained = 0
        self.refused_batches = 0
        self._pending: list[tuple[Sequence[str], asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self._drainer: asyncio.Task[None] | None = None
        self._stopping = False
        self._spool_lock = asyncio.Lock()

    async def start(self) -> None:
        _INFLUX_UP.set(1)
        _SPOOL_BYTES.set(self.spool.size_bytes())
        self._flusher = asyncio.create_task(self._flush_loop(), name="influx-flush")
        self._drainer = asyncio.create_task(self._drain_loop(), name="influx-drain")

    async def stop(self) -> None:
        """Write (or spool) what is pending, then stop. The spool stays for the next run."""
        self._stopping = True
        self._wake.set()
        if self._flusher is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        if self._drainer is not None:
            self._drainer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._drainer
        self.spool.close()

    async def write(self, lines: Sequence[str]) -> None:
        """Return once `lines` are durable (written or spooled)."""
        if not lines:
            return
        if self._stopping:
            raise RuntimeError("writer stopped")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((lines, future))
        self._wake.set()
        await future

    @property
    def pending_lines(self) -> int:
        return sum(len(lines) for lines, _ in self._pending)

    # -- flushing ------------------------------------------------------------------
    async def _flush_loop(self) -> None:
        while True:
            if not self._pending:
                if self._stopping:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            items, self._pending = self._pending, []
            try:
                await self._write_items(items)
            except Exception as exc:  # the spool itself failed: nothing is durable
                log.exception("write and spool both failed")
                for _, future in items:
                    if not future.done():
                        future.set_exception(exc)
            else:
                for _, future in items:
                    if not future.done():
                        future.set_result(None)

    async def _write_items(self, items: list[tuple[Sequence[str], asyncio.Future[None]]]) -> None:
        chunk: list[str] = []
        for lines, _ in items:
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
            outcome = await self._try_write(body, len(lines))
            if outcome == "written":
                self.written += len(lines)
                _WRITTEN.inc(len(lines))
                return
            if outcome == "refused":
                return
        await self._spool(body)
        self.spooled += len(lines)
        _SPOOLED.inc(len(lines))

    async def _try_write(self, body: bytes, n_lines: int) -> str:
        """Outcome: `written`, `refused` (invalid data: retrying cannot help) or `failed`."""
        delay = self.retry_initial
        for attempt in range(1, self.attempts + 1):
            try:
                await self.client.write_body(body, self.db)
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

    async def _spool(self, body: bytes) -> None:
        async with self._spool_lock:
            await asyncio.to_thread(self.spool.append, body)
        _SPOOL_BYTES.set(self.spool.size_bytes())

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

    # -- draining --------------------------------------------------------------------
    async def _drain_loop(self) -> None:
        while True:
            await asyncio.sleep(self.drain_interval)
            try:
                await self.drain_once()
            except Exception:
                log.exception("spool drain failed; will retry")

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
            _SPOOL_BYTES.set(self.spool.size_bytes())
        return self.spool.is_empty()


def _read_all(segment: Path) -> list[bytes]:
    return list(Spool.read(segment))
