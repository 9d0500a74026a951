"""Ingest workers on a real NATS cluster: they share the MQTT subscription, and a
message is acknowledged to the broker only once JetStream has stored its reading."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

import nats.js.errors

from cluster.jetstream import open_jetstream
from cluster.partitions import READINGS_STREAM
from cluster.publishers import PUBLISH_RETRY_FOR_S, JetStreamReadings, _retried
from eldercare.domain import Reading, Stream
from eldercare.settings import Settings
from eldercare_app.cluster_roles import shared_topics
from eldercare_app.local_services import NatsCluster
from ingest.service import IngestService
from tests.helpers.cluster import wipe
from tests.helpers.ingest import Publisher, heartbeat, registry_index
from tests.helpers.polling import wait_for

MESSAGES = 20


async def test_broker_ack_waits_for_jetstream(
    settings: Settings, nats_cluster: NatsCluster, mqtt_credentials: tuple[str, str]
) -> None:
    await wipe(nats_cluster.url)
    site = f"s-{uuid.uuid4().hex[:6]}"
    settings = settings.model_copy(
        update={"nats_url": nats_cluster.url, "cluster_replicas": 3, "cluster_partitions": 8}
    )
    stream = await open_jetstream(settings, name="test-ingest")
    # No readings stream: JetStream cannot take a reading, so nothing may be acknowledged.
    await stream.js.delete_stream(READINGS_STREAM)
    workers = [
        IngestService(
            settings.model_copy(
                update={
                    # Only this site's topics: messages other tests left retained on
                    # the session broker would be acknowledged without JetStream.
                    "mqtt_topics": shared_topics([f"eldercare/{site}/#"]),
                    "mqtt_client_id": f"ingest-{site}-{n}",
                    "run_dir": settings.run_dir / f"w{n}",
                }
            ),
            lambda: registry_index(site=site),
            # No stream will answer here: give up after 1 s, not the 8 s a leader election gets.
            JetStreamReadings(stream.js, settings.cluster_partitions, retry_for_s=1.0),
        )
        for n in range(2)
    ]
    publisher = Publisher(
        settings.mqtt_host, settings.mqtt_port, f"pub-{site}", credentials=mqtt_credentials
    )
    try:
        for w in workers:
            await w.start()
        await wait_for(lambda: all(w.ready.is_set() for w in workers), 20, "subscribed")
        base = time.time()
        publisher.publish_all(heartbeat(i, base, site=site) for i in range(MESSAGES))
        # The broker delivered them again after the failed batch: they were never acked.
        await wait_for(
            lambda: sum(w.received for w in workers) > MESSAGES, 30, "messages delivered again"
        )
        assert sum(w.acked for w in workers) == 0
        declarer = await open_jetstream(settings, name="test-declare")  # the stream is back
        await declarer.close()
        await wait_for(lambda: sum(w.acked for w in workers) >= MESSAGES, 60, "acked once stored")
        info = await stream.js.stream_info(READINGS_STREAM)
        assert info.state.messages >= MESSAGES, "every acknowledged reading is in JetStream"
    finally:
        publisher.close()
        for w in workers:
            with contextlib.suppress(Exception):
                await w.stop()
        with contextlib.suppress(nats.js.errors.Error):
            await stream.close()


async def test_a_publish_waits_for_the_stream_to_answer_again_within_the_bound(
    settings: Settings, nats_cluster: NatsCluster
) -> None:
    """While a stream has no leader (its node stopped, a survivor not yet elected),
    JetStream answers "no responders": the sink tries again instead of failing the batch
    at once (and ingest reconnecting to the broker with a growing back-off)."""
    await wipe(nats_cluster.url)
    settings = settings.model_copy(update={"nats_url": nats_cluster.url, "cluster_replicas": 3})
    stream = await open_jetstream(settings, name="test-publish-retry")
    try:
        await stream.js.delete_stream(READINGS_STREAM)  # nobody answers its subjects now
        retried = _retried.value()
        motion = Reading("s-retry", "pir", Stream.MOTION, time.time(), {"motion": True})
        sink = JetStreamReadings(stream.js, settings.cluster_partitions)
        publishing = asyncio.create_task(sink.handle_readings([motion]))
        await wait_for(lambda: _retried.value() > retried, 10, "the publish tried again")
        assert not publishing.done()
        declarer = await open_jetstream(settings, name="test-declare")  # the stream is back
        await declarer.close()
        await asyncio.wait_for(publishing, PUBLISH_RETRY_FOR_S)
        info = await stream.js.stream_info(READINGS_STREAM)
        assert info.state.messages == 1
    finally:
        await stream.close()
