"""One NATS node of three stopped while readings flow, on a real three-node cluster of
the test's own (the shared one is left whole): the node leading the partition
consumers goes, a replica takes each over, and the readings published across the stop
reach the detectors once each — no consumer lost with the node and made again."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import nats.errors
import pytest
from nats.js.api import ConsumerInfo

from cluster.jetstream import JetStream, open_jetstream
from cluster.partitions import READINGS_STREAM, readings_subject
from cluster.reader import _remade, partition_batches
from cluster.wire import reading_bytes
from eldercare.domain import Reading, Stream
from eldercare.settings import Settings
from eldercare_app.local_services import NatsCluster, NatsServer
from tests.helpers.cluster import stored_transitions
from tests.helpers.polling import wait_for
from tests.integration.test_cluster_detectors import (
    PARTITIONS,
    SITES,
    Harness,
    cluster_settings,
    key,
    presses,
)


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    cluster = NatsCluster(tmp_path / "nats")
    for node in cluster.nodes:
        node.start()
    yield cluster
    for node in cluster.nodes:
        node.stop()


async def partition_consumers(stream: JetStream) -> dict[int, ConsumerInfo]:
    out = {}
    for info in await stream.js.consumers_info(READINGS_STREAM):
        out[int((info.config.filter_subject or "").rsplit(".", 1)[1])] = info
    return out


def busiest_leader(cluster: NatsCluster, consumers: dict[int, ConsumerInfo]) -> NatsServer:
    """The node leading the most partition consumers (all of them when there is one)."""
    leaders = Counter(c.cluster.leader for c in consumers.values() if c.cluster is not None)
    name = leaders.most_common(1)[0][0]
    return next(node for node in cluster.nodes if node.name == name)


def assert_replicated(consumers: dict[int, ConsumerInfo], replicas: int) -> None:
    for partition, info in consumers.items():
        assert info.config.num_replicas == replicas, f"partition {partition}'s consumer"
        assert info.cluster is not None and len(info.cluster.replicas or []) == replicas - 1


def motion(i: int) -> Reading:
    return Reading("home-0", "pir-0", Stream.MOTION, 1_780_000_000.0 + i, {"motion": i % 2 == 0})


async def publish_stored(stream: JetStream, subject: str, data: bytes, msg_id: str) -> None:
    """Publish until JetStream stores it (its leader may be moving); the message id makes
    a retry of one that was stored unanswered a duplicate JetStream drops."""

    async def stored() -> bool:
        try:
            await stream.js.publish(subject, data, headers={"Nats-Msg-Id": msg_id}, timeout=2)
        except (nats.errors.Error, TimeoutError):
            return False
        return True

    await wait_for(stored, 30, f"reading {msg_id} stored", every_s=0.1)


async def test_a_partition_reader_rides_out_its_consumer_node_stopping(
    own_cluster: NatsCluster, tmp_path: Path
) -> None:
    settings = Settings(run_dir=tmp_path / "run", nats_url=own_cluster.url, cluster_replicas=3)
    reader_side = await open_jetstream(settings, name="reader")
    writer = await open_jetstream(settings, name="writer")
    received: list[int] = []

    async def read() -> None:
        async for _position, readings in partition_batches(reader_side.js, 0, 0):
            received.extend(int(r.ts - motion(0).ts) for r in readings)

    reading = asyncio.create_task(read())
    remade_before = _remade.value()
    try:
        for i in range(20):
            await publish_stored(writer, readings_subject(0), reading_bytes(motion(i)), str(i))
        await wait_for(lambda: len(received) == 20, 20, "the readings before the stop")
        consumers = await partition_consumers(reader_side)
        assert_replicated(consumers, 3)
        before = consumers[0].name
        busiest_leader(own_cluster, consumers).stop()  # as `eldercare bench cluster` does
        for i in range(20, 40):
            await publish_stored(writer, readings_subject(0), reading_bytes(motion(i)), str(i))
        await wait_for(
            lambda: len(received) >= 40,
            30,
            "the readings after the stop",
            detail=lambda: str(received),
        )
        assert received == list(range(40)), "each reading once, in order"
        assert _remade.value() == remade_before, "the consumer was not lost with the node"
        assert [c.name for c in (await partition_consumers(reader_side)).values()] == [before]
    finally:
        reading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reading
        await reader_side.close()
        await writer.close()


async def test_detectors_raise_the_alerts_of_readings_published_after_a_node_stopped(
    own_cluster: NatsCluster, tmp_path: Path
) -> None:
    settings = cluster_settings(own_cluster.url, tmp_path)
    h = Harness(settings, await open_jetstream(settings, name="test"))
    remade_before = _remade.value()
    try:
        worker = await h.worker("worker-a")
        seq = await h.publish(presses(0, 2))
        await h.caught_up([worker], seq)
        consumers = await partition_consumers(h.stream)
        assert len(consumers) == PARTITIONS
        assert_replicated(consumers, 3)
        busiest_leader(own_cluster, consumers).stop()

        async def published_after_the_stop() -> int | None:
            try:
                return await h.publish(presses(2, 4))
            except (nats.errors.Error, TimeoutError):
                return None  # the stream's leader is moving: ingest would get it again

        seq = await wait_for(published_after_the_stop, 30, "presses published")
        await h.caught_up([worker], seq)

        async def read_back() -> list[tuple[object, ...]] | None:
            try:
                return [key(t) for t in await stored_transitions(own_cluster.url)]
            except (nats.errors.Error, TimeoutError):
                return None  # the JetStream API may still be electing its leader (loaded box)

        stored = await wait_for(read_back, 30, "the transitions read back")
        assert len(stored) == SITES * 4, "a raise and three updates per site"
        assert len(set(stored)) == len(stored), "no transition twice"
        assert _remade.value() == remade_before, "no partition consumer lost with the node"
    finally:
        await h.close()
