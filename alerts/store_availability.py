"""Whether the alert store can be written: "alert store unavailable since T, reason".

While the store refuses writes (a SQLite file write-locked by another process, a
read-only file, PostgreSQL away) the alert pipeline holds the transitions it was
given and retries them; ingest holds too, so nothing is acknowledged to the
broker and nothing is dropped. That hold must be visible: this object is the one
place that knows it. It logs one line when an episode starts (with its reason)
and one when it ends (with how many writes failed and for how long), keeps the
metrics `eldercare_alert_store_available` (1/0),
`eldercare_alert_store_unavailable_since_seconds` (wall time the episode began, 0
when available) and `eldercare_alert_store_write_failures_total`, and answers
`status()`. Given a health registry (`eldercare run` passes the process's), it
reports the episode there as the impaired part `alert_store` (reason and since), so
`/healthz` answers 503 and the console's banner reads "alerts may be delayed: alert
store unavailable since 14:02"; `restored` when the episode ends or the pipeline stops.
"""

from __future__ import annotations

from dataclasses import dataclass

from eldercare import metrics
from eldercare.clock import Clock, WallClock
from eldercare.health import HealthRegistry
from eldercare.logs import get_logger

log = get_logger(__name__)

_AVAILABLE = metrics.gauge("alert_store_available", "1 while the alert store takes writes")
_SINCE = metrics.gauge(
    "alert_store_unavailable_since_seconds",
    "Wall time the alert store became unwritable (0 while it takes writes)",
)
_FAILURES = metrics.counter(
    "alert_store_write_failures_total", "Alert store writes that failed and are being retried"
)
_AVAILABLE.set(1)
HEALTH_PART = "alert_store"  # its part in `eldercare.health`


@dataclass(frozen=True, slots=True)
class StoreUnavailable:
    """An episode in progress: since when (wall time), why, and how many writes failed."""

    since: float
    reason: str
    failures: int


class AlertStoreAvailability:
    """Tracks episodes of an unwritable alert store (see the module docstring)."""

    def __init__(self, clock: Clock | None = None, health: HealthRegistry | None = None) -> None:
        self.clock = clock or WallClock()
        self.health = health
        self._episode: StoreUnavailable | None = None

    @property
    def available(self) -> bool:
        return self._episode is None

    def status(self) -> StoreUnavailable | None:
        """None while the store takes writes; else the episode (for /healthz, the banner)."""
        return self._episode

    def failed(self, error: BaseException) -> StoreUnavailable:
        """A write failed and will be retried: start an episode, or count into the current."""
        _FAILURES.inc()
        reason = _reason(error)
        episode = self._episode
        if episode is None:
            episode = StoreUnavailable(self.clock.now(), reason, 1)
            _AVAILABLE.set(0)
            _SINCE.set(episode.since)
            log.error(
                "alert store unavailable: holding alerts and ingest, retrying",
                extra={"reason": reason, "since": episode.since},
            )
        else:
            episode = StoreUnavailable(episode.since, reason, episode.failures + 1)
        self._episode = episode
        if self.health is not None:  # the latest reason, the episode's start
            self.health.impaired(HEALTH_PART, reason, episode.since)
        return episode

    def succeeded(self) -> None:
        """A write went through: end the episode, if there was one."""
        episode = self._episode
        if episode is None:
            return
        self._episode = None
        _AVAILABLE.set(1)
        _SINCE.set(0)
        if self.health is not None:
            self.health.restored(HEALTH_PART)
        log.warning(
            "alert store available again: held alerts stored",
            extra={
                "failed_writes": episode.failures,
                "unavailable_s": round(self.clock.now() - episode.since, 3),
                "reason": episode.reason,
            },
        )

    def withdraw(self) -> None:
        """The pipeline stopped: whatever the store's state, it is no longer reported."""
        if self.health is not None:
            self.health.restored(HEALTH_PART)


def _reason(error: BaseException) -> str:
    """A short reason: the driver's message (e.g. "database is locked"), not a traceback."""
    inner = getattr(error, "orig", None) or error  # SQLAlchemy wraps the driver's error
    text = str(inner).strip().splitlines()[0] if str(inner).strip() else ""
    return f"{type(inner).__name__}: {text}" if text else type(inner).__name__
