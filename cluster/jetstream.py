"""Connecting to NATS and declaring the cluster's streams and buckets (idempotent).

Every role calls `open_jetstream` at start: the first to come up declares the streams;
later ones find them. A freshly started NATS cluster answers clients before JetStream
has elected its leader, so declaring retries until a deadline.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import nats
from nats.aio.client import Client
from nats.js.api import KeyValueConfig, StorageType, StreamConfig
from nats.js.client import JetStreamContext
from nats.js.errors import Error as JetStreamError
from nats.js.kv import KeyValue

from cluster.partitions import (
    READINGS_STREAM,
    READINGS_SUBJECT,
    TRANSITIONS_STREAM,
    TRANSITIONS_SUBJECT,
)
from eldercare.errors import EldercareError
from eldercare.logs import get_logger
from eldercare.settings import Settings

log = get_logger(__name__)

LEASES_BUCKET = "eldercare_leases"  # partition and pipeline leases, expiring with the TTL
WORKERS_BUCKET = "eldercare_workers"  # live detector workers (heartbeats), same TTL
POSITIONS_BUCKET = "eldercare_positions"  # a partition's stream position of its snapshots

# Readings are kept long enough to replay from any snapshot (taken every few seconds)
# and to ride out a detector outage; transitions long enough for a pipeline takeover.
READINGS_MAX_AGE_S = 6 * 3600
TRANSITIONS_MAX_AGE_S = 24 * 3600
# A replay re-publishes transitions of at most one snapshot interval plus the lateness
# the runtime allows; an hour of duplicate window covers both with room.
DUPLICATE_WINDOW_S = 3600
# JetStream answers slowly while a node is away or leaders are being elected.
JETSTREAM_API_TIMEOUT_S = 10.0
# A stop drains the connection (pending acks and publishes go out); a subscription whose
# task was cancelled never finishes draining, and nats-py would wait 30 s before closing
# anyway: a role's stop (a lost lease, SIGTERM) is bounded by this instead.
DRAIN_TIMEOUT_S = 5.0


class ClusterUnavailable(EldercareError, RuntimeError):
    """NATS or its JetStream did not answer in time."""


@dataclass
class JetStream:
    """One connection with the context and buckets the roles use."""

    nc: Client
    js: JetStreamContext
    leases: KeyValue
    workers: KeyValue
    positions: KeyValue

    async def close(self) -> None:
        await self.nc.drain()


def servers(settings: Settings) -> list[str]:
    urls = [u.strip() for u in settings.nats_url.split(",") if u.strip()]
    if not urls:
        raise ClusterUnavailable(
            "no NATS configured: set ELDERCARE_NATS_URL or run `eldercare services up`"
        )
    return urls


async def open_jetstream(settings: Settings, *, name: str, timeout_s: float = 30.0) -> JetStream:
    try:
        nc = await nats.connect(
            servers(settings),
            name=name,
            max_reconnect_attempts=-1,  # a node's restart is ridden out, not fatal
            reconnect_time_wait=0.5,
            connect_timeout=2,
            drain_timeout=DRAIN_TIMEOUT_S,
        )
    except Exception as exc:  # nats-py raises several unrelated types when nothing answers
        raise ClusterUnavailable(f"NATS at {settings.nats_url!r} did not answer: {exc}") from exc
    js = nc.jetstream(timeout=JETSTREAM_API_TIMEOUT_S)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            buckets = await _declare(js, settings)
            return JetStream(nc, js, *buckets)
        except (JetStreamError, TimeoutError, nats.errors.Error) as exc:
            if time.monotonic() >= deadline:
                await nc.close()
                raise ClusterUnavailable(f"JetStream not ready: {exc}") from exc
            log.info("waiting for JetStream", extra={"error": str(exc)})
            await asyncio.sleep(0.25)


async def _declare(js: JetStreamContext, settings: Settings) -> tuple[KeyValue, KeyValue, KeyValue]:
    replicas = settings.cluster_replicas
    for name, subject, max_age in (
        (READINGS_STREAM, READINGS_SUBJECT, READINGS_MAX_AGE_S),
        (TRANSITIONS_STREAM, TRANSITIONS_SUBJECT, TRANSITIONS_MAX_AGE_S),
    ):
        config = StreamConfig(
            name=name,
            subjects=[f"{subject}.*"],
            storage=StorageType.FILE,
            num_replicas=replicas,
            max_age=max_age,
            duplicate_window=DUPLICATE_WINDOW_S,
        )
        try:
            await js.stream_info(name)
        except nats.js.errors.NotFoundError:
            await js.add_stream(config)
    ttl = settings.cluster_lease_ttl_s
    leases = await _bucket(js, LEASES_BUCKET, replicas, ttl)
    workers = await _bucket(js, WORKERS_BUCKET, replicas, ttl)
    positions = await _bucket(js, POSITIONS_BUCKET, replicas, None)
    return leases, workers, positions


async def _bucket(js: JetStreamContext, name: str, replicas: int, ttl: float | None) -> KeyValue:
    try:
        return await js.key_value(name)
    except nats.js.errors.BucketNotFoundError:
        config = KeyValueConfig(
            bucket=name, history=1, replicas=replicas, ttl=ttl, storage=StorageType.FILE
        )
        return await js.create_key_value(config)
