"""The stage contracts over JetStream: a `ReadingSink` for ingest workers and a
`TransitionSink` for detector workers.

Each returns only once JetStream has acknowledged every message of the batch (stored
on a quorum of the stream's replicas), so ingest acknowledges the MQTT messages
behind a batch only then, as `eldercare.stage_contracts` asks.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import nats.errors
import nats.js.errors
from nats.js.api import PubAck
from nats.js.client import JetStreamContext

from cluster.partitions import partition_of, readings_subject, transitions_subject
from cluster.wire import reading_bytes, transition_bytes, transition_id
from eldercare.domain import Reading, Transition
from eldercare.metrics import counter

_published = counter(
    "eldercare_cluster_published_total", "messages stored by JetStream", ["stream"]
)
_retried = counter(
    "eldercare_cluster_publish_retries_total",
    "publishes tried again while the stream's leader was away or moving",
)
_duplicates = counter(
    "eldercare_cluster_duplicate_transitions_total",
    "transitions JetStream had already stored (a replay after a takeover)",
)


# A publish whose NATS node went away gets no answer: try again after this long rather
# than the API's 10 s.
PUBLISH_TIMEOUT_S = 3.0
# While a stream's leader is being elected (its node stopped), JetStream answers "no
# responders" at once, for a few seconds. A publish is tried again for up to this long,
# then the batch fails (the broker delivers it again) — rather than failing it at once
# and reconnecting to the broker with a growing back-off.
PUBLISH_RETRY_FOR_S = 8.0
PUBLISH_RETRY_EVERY_S = 0.25


async def publish_stored(
    js: JetStreamContext,
    subject: str,
    payload: bytes,
    headers: dict[str, str] | None = None,
    retry_for_s: float = PUBLISH_RETRY_FOR_S,
) -> PubAck:
    """Publish and return JetStream's acknowledgement, trying again within the bound.

    A retry after an unanswered publish may store a reading twice (it may have been
    stored, its answer lost with the node): the detectors' recent-reading keys absorb
    it, as they do the broker's redeliveries; a transition's message id drops it."""
    deadline = time.monotonic() + retry_for_s
    while True:
        left = deadline - time.monotonic()
        try:
            return await js.publish(
                subject, payload, timeout=min(PUBLISH_TIMEOUT_S, max(0.1, left)), headers=headers
            )
        except (nats.js.errors.NoStreamResponseError, nats.errors.TimeoutError):
            if time.monotonic() + PUBLISH_RETRY_EVERY_S >= deadline:
                raise
            _retried.inc()
            await asyncio.sleep(PUBLISH_RETRY_EVERY_S)


class JetStreamReadings:
    """Publishes each reading on its site's partition subject."""

    def __init__(
        self, js: JetStreamContext, partitions: int, retry_for_s: float = PUBLISH_RETRY_FOR_S
    ) -> None:
        self.js = js
        self.partitions = partitions
        self.retry_for_s = retry_for_s  # how long a publish waits for the stream to answer

    async def handle_readings(self, readings: Sequence[Reading]) -> None:
        if not readings:
            return
        await asyncio.gather(
            *(
                publish_stored(
                    self.js,
                    readings_subject(partition_of(r.site_id, self.partitions)),
                    reading_bytes(r),
                    retry_for_s=self.retry_for_s,
                )
                for r in readings
            )
        )
        _published.inc(len(readings), stream="readings")


class JetStreamTransitions:
    """Publishes each transition on its site's partition subject, with a message id
    naming the change so a replayed one is dropped by JetStream."""

    def __init__(self, js: JetStreamContext, partitions: int) -> None:
        self.js = js
        self.partitions = partitions

    async def handle_transitions(self, transitions: Sequence[Transition]) -> None:
        if not transitions:
            return
        acks = await asyncio.gather(
            *(
                publish_stored(
                    self.js,
                    transitions_subject(partition_of(t.site_id, self.partitions)),
                    transition_bytes(t),
                    headers={"Nats-Msg-Id": transition_id(t)},
                )
                for t in transitions
            )
        )
        dup = sum(1 for ack in acks if ack.duplicate)
        if dup:
            _duplicates.inc(dup)
        _published.inc(len(transitions) - dup, stream="transitions")
