"""Alert events for InfluxDB (`alert_event`, docs/influx-schema.md): Grafana's
annotations and response statistics.

The store is the record of truth; these events are a copy for dashboards. A write
that fails for a transient reason is kept (bounded) and retried with the next
batch, and anything dropped beyond the bound is counted and logged.
"""

from __future__ import annotations

import asyncio
import zlib
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from alerts.records import AlertRecord
from eldercare.influx import InfluxClient, InfluxError, LineProtocolError, encode_line, ts_to_ns
from eldercare.logs import get_logger

log = get_logger(__name__)

EVENTS = (
    "raised",
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


class AlertEventRecorder(Protocol):
    async def record(self, events: Sequence[AlertEvent]) -> None:
        """Write the events; never raise for an outage (keep, retry, count)."""
        ...


class NullRecorder:
    async def record(self, events: Sequence[AlertEvent]) -> None:
        return None


class InfluxAlertEventRecorder:
    """Writes alert events through `eldercare.influx`; keeps up to `max_backlog` lines
    across an InfluxDB outage and sends them with the next write."""

    def __init__(
        self,
        client: InfluxClient,
        db: str,
        org_of: Callable[[str], str | None] = lambda site: None,
        max_backlog: int = 100_000,
    ) -> None:
        self.client = client
        self.db = db
        self.org_of = org_of
        self._backlog: deque[str] = deque()
        self.max_backlog = max_backlog
        self.dropped = 0
        self.invalid = 0
        self._flush_lock = asyncio.Lock()

    async def record(self, events: Sequence[AlertEvent]) -> None:
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
        await self.flush()

    async def flush(self) -> None:
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
                return
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
                else:
                    log.warning(
                        "alert events kept for retry",
                        extra={"backlog": len(self._backlog), "error": str(exc)},
                    )
                return
            for _ in lines:
                self._backlog.popleft()
