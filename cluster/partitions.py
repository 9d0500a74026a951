"""Sites to partitions, and partitions to subjects.

A site's every reading must reach one detector worker (its rules are stateful), so
readings travel on a subject carrying the site's partition. The partition comes from
a hash that is the same in every process and every Python (never `hash()`, which is
salted per process), over a fixed partition count: changing the count moves sites,
so it is chosen once per deployment.
"""

from __future__ import annotations

import zlib

READINGS_STREAM = "ELDERCARE_READINGS"
TRANSITIONS_STREAM = "ELDERCARE_TRANSITIONS"
READINGS_SUBJECT = "eldercare.readings"
TRANSITIONS_SUBJECT = "eldercare.transitions"
# Core NATS (not stored): the pipeline says the alert store changed; every gateway wakes
# its live stream at once instead of at its next poll.
ALERTS_CHANGED_SUBJECT = "eldercare.alerts.changed"


def partition_of(site_id: str, partitions: int) -> int:
    if partitions < 1:
        raise ValueError(f"partitions must be at least 1, not {partitions}")
    return zlib.crc32(site_id.encode("utf-8")) % partitions


def readings_subject(partition: int) -> str:
    return f"{READINGS_SUBJECT}.{partition}"


def transitions_subject(partition: int) -> str:
    return f"{TRANSITIONS_SUBJECT}.{partition}"


def fair_share(partitions: int, workers: int) -> int:
    """The most partitions one of `workers` live workers should hold (rounded up, so
    every partition has room somewhere)."""
    return -(-partitions // max(1, workers))
