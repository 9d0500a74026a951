"""Per-site fairness at ingest: one site's flood is throttled, never the others.

Every registered site has a token bucket sized from what its devices can plausibly
send (`DEVICE_RATE` messages a second per device, at least `SITE_MIN_RATE`, with
`BURST_S` seconds of credit; an operator can set a site's rate by hand). Messages
over it are dropped before they cost a decode, an InfluxDB write or a detector
pass, counted per site, and reported in a rate-limited log line. Emergencies (SOS
presses, fall verdicts) are never throttled, and go first in their batch.
Messages naming no registered site share one bucket, so made-up site ids cannot
buy themselves a budget each.

Arrival (wall) time drives the buckets: this is flow control of the wire, not
detection. A replay (`clock_mode = event`, simulations, evaluations) delivers
months of readings at machine speed, so limits are off there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from eldercare import metrics
from eldercare.domain import Stream
from eldercare.registry_index import RegistryIndex
from eldercare.registry_model import Site

DEVICE_RATE = 1.0  # msg/s a device may sustain (event-driven sensors burst, then rest)
SITE_MIN_RATE = 5.0  # msg/s any registered site may sustain
UNREGISTERED_RATE = 100.0  # msg/s shared by every message naming no registered site
BURST_S = 30.0  # seconds of credit a quiet site has saved up
EMERGENCY_STREAMS = frozenset({Stream.SOS, Stream.FALL})
UNREGISTERED = "(unregistered)"  # the shared bucket's name in counts and logs

_THROTTLED = metrics.counter(
    "ingest_throttled_total", "messages dropped: their site was over its rate", ("site",)
)


@dataclass(slots=True)
class Bucket:
    rate: float  # tokens a second
    capacity: float
    tokens: float
    at: float  # arrival time of the last refill

    def take(self, now: float) -> bool:
        if now > self.at:
            self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
            self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


def default_rate(site: Site) -> float:
    return max(SITE_MIN_RATE, DEVICE_RATE * len(site.devices))


class SiteLimiter:
    """`allow(site_id, stream, now)` per message; `throttled` counts by site."""

    def __init__(
        self,
        overrides: Mapping[str, float] | None = None,
        *,
        unregistered_rate: float = UNREGISTERED_RATE,
    ) -> None:
        self.overrides = dict(overrides or {})
        self.unregistered_rate = unregistered_rate
        self._buckets: dict[str, Bucket] = {}
        self._for: RegistryIndex | None = None
        self.throttled: dict[str, int] = {}

    def _bucket(self, index: RegistryIndex, site_id: str | None, now: float) -> tuple[str, Bucket]:
        if index is not self._for:
            # The registry changed: rates follow the new device counts; credit is kept.
            self._for = index
            for key in [k for k in self._buckets if k != UNREGISTERED and k not in index.sites]:
                del self._buckets[key]
            for name, saved in self._buckets.items():
                if name != UNREGISTERED:
                    saved.rate = self.rate_for(index.sites[name])
                    saved.capacity = saved.rate * BURST_S
        site = index.sites.get(site_id) if site_id is not None else None
        key = site.id if site is not None else UNREGISTERED
        bucket = self._buckets.get(key)
        if bucket is None:
            rate = self.rate_for(site) if site is not None else self.unregistered_rate
            bucket = self._buckets[key] = Bucket(rate, rate * BURST_S, rate * BURST_S, now)
        return key, bucket

    def rate_for(self, site: Site) -> float:
        return self.overrides.get(site.id, default_rate(site))

    def allow(
        self, index: RegistryIndex, site_id: str | None, stream: Stream | None, now: float
    ) -> bool:
        """Whether a message of `site_id` (None: not known yet) may go on. Emergencies
        always may (they still spend credit, so a flood of them is seen as one)."""
        key, bucket = self._bucket(index, site_id, now)
        if bucket.take(now) or stream in EMERGENCY_STREAMS:
            return True
        self.throttled[key] = self.throttled.get(key, 0) + 1
        _THROTTLED.inc(site=key)
        return False

    def take_throttled(self) -> dict[str, int]:
        """Counts since the last call (for the rate-limited log line)."""
        counts, self.throttled = self.throttled, {}
        return counts
