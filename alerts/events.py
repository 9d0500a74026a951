"""Alert events for InfluxDB (`alert_event`, docs/influx-schema.md): Grafana's
annotations and response statistics.

The store is the record of truth; these events are a copy for dashboards. A write
that fails for a transient reason is kept (bounded) and retried with the next
batch, and anything dropped beyond the bound is counted and logged.

The alert pipeline never waits for InfluxDB: it `submit`s events (encoded into the
backlog at once) and a background flush of its own writes them, so a hung InfluxDB
(a write waits out its 10 s timeout) holds up neither storing an alert, nor the
live stream, nor the first notification. `record` (submit, then flush) is for
callers that want the write done, such as the one-shot CLI.

A process that ends with events still unwritten (InfluxDB away) hands them over
(`hand_over`): one fsync'd file of lines in the outbox folder (`<run_dir>/
alert-events-outbox`). A running recorder (the platform's, flushed every tick)
writes the outbox's files once InfluxDB takes its own backlog, deleting each file
only after it is written. So `eldercare alerts ack` while InfluxDB is down, or a
platform stopped during an outage, loses none of the dashboards' events.
"""

from __future__ import annotations

import asyncio
import os
import time
import zlib
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from alerts.records import AlertRecord
from eldercare.influx import InfluxClient, InfluxError, LineProtocolError, encode_line, ts_to_ns
from eldercare.logs import get_logger

log = get_logger(__name__)

EVENTS = (
    "raised",
    "re_raised",
    "updated",
    "cleared",
    "acknowledged",
    "resolved",
    "escalated",
    "notified",
    "inhibited",
)


@dataclass(frozen=True, slots=True)
class AlertEvent:
    event: str  # one of EVENTS
    alert: AlertRecord
    ts: float  # event time of the step (wall time for human actions)
    org: str | None = None
    ack_seconds: float | None = None
    resolve_seconds: float | None = None
    step: int | None = None
    outcome: str | None = None
    discriminator: str = ""  # e.g. the recipient of a `notified` event

    def line(self) -> str:
        fields: dict[str, bool | int | float | str] = {
            "alert_id": str(self.alert.id),
            "resident": self.alert.resident or "",
            "value": 1,
        }
        if self.ack_seconds is not None:
            fields["ack_seconds"] = float(self.ack_seconds)
        if self.resolve_seconds is not None:
            fields["resolve_seconds"] = float(self.resolve_seconds)
        if self.step is not None:
            fields["step"] = int(self.step)
        if self.outcome is not None:
            fields["outcome"] = self.outcome
        tags = {
            "site": self.alert.site,
            "kind": self.alert.kind,
            "severity": self.alert.severity,
            "event": self.event,
            "org": self.org,
        }
        # A point is identified by its tags and time; two events of one site, kind and
        # step in the same microsecond (say, two recipients notified at once) would
        # overwrite each other. The sub-microsecond nanoseconds, unused by the schema's
        # microsecond resolution, carry a stable discriminator instead.
        salt = f"{self.alert.id}/{self.step}/{self.discriminator}".encode()
        ns = ts_to_ns(self.ts) + zlib.crc32(salt) % 1000
        return encode_line("alert_event", tags, fields, ns)


def _write_durably(path: Path, lines: list[str]) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
        f.flush()
        os.fsync(f.fileno())
    tmp.rename(path)  # whole or not at all: a reader never sees half a file


class AlertEventRecorder(Protocol):
    async def record(self, events: Sequence[AlertEvent]) -> None:
        """Write the events; never raise for an outage (keep, retry, count)."""
        ...

    def submit(self, events: Sequence[AlertEvent]) -> None:
        """Take the events for a later `flush`, without waiting for anything."""
        ...

    async def flush(self) -> None:
        """Write what was submitted; never raise for an outage (keep, retry, count)."""
        ...


class NullRecorder:
    async def record(self, events: Sequence[AlertEvent]) -> None:
        return None

    def submit(self, events: Sequence[AlertEvent]) -> None:
        return None

    async def flush(self) -> None:
        return None


OUTBOX_DIR = "alert-events-outbox"  # under the run directory


class InfluxAlertEventRecorder:
    """Writes alert events through `eldercare.influx`; keeps up to `max_backlog` lines
    across an InfluxDB outage and sends them with the next write."""

    def __init__(
        self,
        client: InfluxClient,
        db: str,
        org_of: Callable[[str], str | None] = lambda site: None,
        max_backlog: int = 100_000,
        outbox: Path | None = None,
        outbox_every_s: float = 10.0,
    ) -> None:
        self.client = client
        self.db = db
        self.org_of = org_of
        self._backlog: deque[str] = deque()
        self.max_backlog = max_backlog
        self.dropped = 0
        self.invalid = 0
        self.outbox = outbox
        self.outbox_every_s = outbox_every_s
        self._outbox_checked = float("-inf")
        self.adopted = 0  # lines written from the outbox
        self._flush_lock = asyncio.Lock()

    async def record(self, events: Sequence[AlertEvent]) -> None:
        self.submit(events)
        await self.flush()

    def submit(self, events: Sequence[AlertEvent]) -> None:
        """Encode the events into the backlog; the next `flush` writes them."""
        for e in events:
            if e.org is None:
                e = AlertEvent(
                    e.event,
                    e.alert,
                    e.ts,
                    self.org_of(e.alert.site),
                    e.ack_seconds,
                    e.resolve_seconds,
                    e.step,
                    e.outcome,
                    e.discriminator,
                )
            try:
                self._backlog.append(e.line())
            except LineProtocolError as exc:
                self.invalid += 1
                log.warning("alert event not encodable", extra={"error": str(exc)})

    async def flush(self) -> None:
        if await self._flush_backlog():
            await self._write_outbox()

    async def _flush_backlog(self) -> bool:
        """Write the backlog; True when it is empty afterwards (InfluxDB took it)."""
        # One write at a time: concurrent callers would send (and drop) the same lines.
        async with self._flush_lock:
            if len(self._backlog) > self.max_backlog:
                excess = len(self._backlog) - self.max_backlog
                for _ in range(excess):
                    self._backlog.popleft()
                self.dropped += excess
                log.warning(
                    "alert events dropped over backlog bound", extra={"dropped": self.dropped}
                )
            if not self._backlog:
                return True
            lines = list(self._backlog)
            try:
                await self.client.write(lines, self.db)
            except InfluxError as exc:
                if not exc.retryable:
                    # InfluxDB refused the data itself; retrying would refuse it again.
                    # Drop only what was sent: lines queued meanwhile get their own try.
                    self.invalid += len(lines)
                    for _ in lines:
                        self._backlog.popleft()
                    log.error("alert events refused by InfluxDB", extra={"error": str(exc)})
                    return not self._backlog
                log.warning(
                    "alert events kept for retry",
                    extra={"backlog": len(self._backlog), "error": str(exc)},
                )
                return False
            for _ in lines:
                self._backlog.popleft()
            return not self._backlog

    async def _write_outbox(self) -> None:
        """Write what other processes handed over, a file at a time, oldest first; a file
        is deleted once written. Checked every `outbox_every_s`, and only after this
        recorder's own backlog went through (InfluxDB is taking writes)."""
        if self.outbox is None or time.monotonic() - self._outbox_checked < self.outbox_every_s:
            return
        self._outbox_checked = time.monotonic()
        async with self._flush_lock:
            for path in sorted(self.outbox.glob("*.lp")):
                text = await asyncio.to_thread(path.read_text, encoding="utf-8")
                lines = [x for x in text.splitlines() if x]
                try:
                    if lines:
                        await self.client.write(lines, self.db)
                except InfluxError as exc:
                    if exc.retryable:
                        return  # away again: the file waits for the next check
                    self.invalid += len(lines)
                    log.error("handed-over alert events refused", extra={"file": path.name})
                else:
                    self.adopted += len(lines)
                path.unlink(missing_ok=True)

    async def hand_over(self) -> int:
        """At the end of a process: put the unwritten backlog in the outbox (one fsync'd
        file) for a running recorder to write. Returns the lines handed over."""
        async with self._flush_lock:
            if not self._backlog or self.outbox is None:
                return 0
            lines = list(self._backlog)
            self.outbox.mkdir(parents=True, exist_ok=True)
            path = self.outbox / f"{time.time_ns():020d}-{os.getpid()}.lp"
            await asyncio.to_thread(_write_durably, path, lines)
            self._backlog.clear()
        log.warning("alert events handed over for later", extra={"lines": len(lines)})
        return len(lines)
