"""A role's NATS connection closes within the drain bound even when a consumer's task was
cancelled mid-fetch (a lost lease, a stop): nats-py alone would wait 30 s to drain it."""

from __future__ import annotations

import asyncio
import contextlib
import time

from cluster.jetstream import DRAIN_TIMEOUT_S, open_jetstream
from cluster.partitions import READINGS_STREAM, readings_subject
from eldercare.settings import Settings
from eldercare_app.local_services import NatsCluster
from tests.helpers.cluster import wipe
from tests.helpers.polling import wait_for


async def test_close_after_a_cancelled_fetch_is_bounded(
    settings: Settings, nats_cluster: NatsCluster
) -> None:
    await wipe(nats_cluster.url)
    settings = settings.model_copy(update={"nats_url": nats_cluster.url, "cluster_replicas": 3})
    stream = await open_jetstream(settings, name="stop-bounded")
    sub = await stream.js.pull_subscribe(readings_subject(0), durable=None, stream=READINGS_STREAM)
    fetching = asyncio.create_task(sub.fetch(1, timeout=30))

    async def request_waiting() -> bool:  # the server holds the fetch's pull request
        return bool((await sub.consumer_info()).num_waiting)

    await wait_for(request_waiting, 10, "the pull request at the server")
    fetching.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await fetching
    # The server still holds the pull request: a reading published now is delivered to
    # the subscription with nobody left to take it, and draining waits for it.
    await stream.js.publish(readings_subject(0), b"{}")
    await wait_for(lambda: sub.pending_msgs >= 1, 10, "the reading delivered to nobody")
    started = time.monotonic()
    await stream.close()  # (not under asyncio.timeout: nats-py's drain swallows the cancel)
    assert stream.nc.is_closed
    assert time.monotonic() - started < DRAIN_TIMEOUT_S + 3  # nats-py alone: 30 s
