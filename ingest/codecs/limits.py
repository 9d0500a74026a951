"""Bounds a codec enforces before trusting a message."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    """Limits applied to every message; the defaults suit a district-sized deployment."""

    # Checked on the raw bytes before parsing, so a huge payload costs nothing to refuse.
    max_payload_bytes: int = 65536
    # Event time later than received_at + this is a device with a wrong clock: FUTURE_TIMESTAMP.
    max_future_s: float = 300.0
    # Event time older than received_at - this: ANCIENT_TIMESTAMP (a stuck spool, a reset clock).
    max_age_s: float = 30 * 86400.0
    # zigbee2mqtt base topics ingest listens to; each may itself contain '/'.
    z2m_base_topics: tuple[str, ...] = ("zigbee2mqtt",)
    # One native accel message carries at most this many [x, y, z] samples (40 s at 50 Hz).
    max_accel_samples: int = 2000


DEFAULT_LIMITS = DecodeLimits()
