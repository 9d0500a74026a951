"""A local three-node NATS JetStream cluster for tests, and helpers around it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import nats
import nats.errors
import nats.js.errors
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from cluster.jetstream import LEASES_BUCKET, POSITIONS_BUCKET, WORKERS_BUCKET
from cluster.partitions import READINGS_STREAM, TRANSITIONS_STREAM
from cluster.wire import transition_from
from eldercare.domain import Transition


async def wipe(url: str) -> None:
    """Remove the cluster's streams and buckets, so a test starts from nothing."""
    nc = await nats.connect(url.split(","))
    js = nc.jetstream(timeout=5)
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                for name in (READINGS_STREAM, TRANSITIONS_STREAM):
                    with contextlib.suppress(nats.js.errors.NotFoundError):
                        await js.delete_stream(name)
                for bucket in (LEASES_BUCKET, WORKERS_BUCKET, POSITIONS_BUCKET):
                    with contextlib.suppress(nats.js.errors.NotFoundError):
                        await js.delete_key_value(bucket)
                return
            except (nats.errors.TimeoutError, nats.js.errors.ServiceUnavailableError):
                # A cluster just started answers before JetStream has its leader.
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.25)
    finally:
        await nc.close()


async def stored_transitions(url: str) -> list[Transition]:
    """Every transition in the transitions stream, in stream order."""
    nc = await nats.connect(url.split(","))
    js = nc.jetstream(timeout=5)
    out: list[Transition] = []
    try:
        info = await js.stream_info(TRANSITIONS_STREAM)
        if info.state.messages == 0:
            return out
        sub = await js.pull_subscribe(
            "eldercare.transitions.*",
            durable=None,
            stream=TRANSITIONS_STREAM,
            config=ConsumerConfig(ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL),
        )
        while len(out) < info.state.messages:
            for msg in await sub.fetch(1000, timeout=5):
                out.append(transition_from(msg.data))
        await sub.unsubscribe()
    finally:
        await nc.close()
    return out


class SseReader:
    """One open Server-Sent Events response, read event by event."""

    def __init__(self, lines: AsyncIterator[str]) -> None:
        self._lines = lines

    async def next_event(self, within_s: float) -> dict[str, str]:
        async def read() -> dict[str, str]:
            event: dict[str, str] = {}
            async for line in self._lines:
                if line == "":
                    if event:
                        return event
                elif not line.startswith(":"):
                    name, _, value = line.partition(":")
                    event[name] = value.lstrip(" ")
            raise AssertionError("the stream ended")

        return await asyncio.wait_for(read(), within_s)

    async def next_of(self, kind: str, within_s: float) -> dict[str, str]:
        deadline = time.monotonic() + within_s
        while True:
            event = await self.next_event(max(0.01, deadline - time.monotonic()))
            if event.get("event") == kind:
                return event
