"""The stage contracts over JetStream: a `ReadingSink` for ingest workers and a
`TransitionSink` for detector workers.

Each returns only once JetStream has acknowledged every message of the batch (stored
on a quorum of the stream's replicas), so ingest acknowledges the MQTT messages
behind a batch only then, as `eldercare.stage_contracts` asks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from nats.js.client import JetStreamContext

from cluster.partitions import partition_of, readings_subject, transitions_subject
from cluster.wire import reading_bytes, transition_bytes, transition_id
from eldercare.domain import Reading, Transition
from eldercare.metrics import counter

_published = counter(
    "eldercare_cluster_published_total", "messages stored by JetStream", ["stream"]
)
_duplicates = counter(
    "eldercare_cluster_duplicate_transitions_total",
    "transitions JetStream had already stored (a replay after a takeover)",
)


# A publish whose NATS node went away gets no answer: fail the batch after this long (the
# broker delivers it again, through a node that is up) rather than the API's 10 s.
PUBLISH_TIMEOUT_S = 3.0


class JetStreamReadings:
    """Publishes each reading on its site's partition subject."""

    def __init__(self, js: JetStreamContext, partitions: int) -> None:
        self.js = js
        self.partitions = partitions

    async def handle_readings(self, readings: Sequence[Reading]) -> None:
        if not readings:
            return
        await asyncio.gather(
            *(
                self.js.publish(
                    readings_subject(partition_of(r.site_id, self.partitions)),
                    reading_bytes(r),
                    timeout=PUBLISH_TIMEOUT_S,
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
                self.js.publish(
                    transitions_subject(partition_of(t.site_id, self.partitions)),
                    transition_bytes(t),
                    headers={"Nats-Msg-Id": transition_id(t)},
                    timeout=PUBLISH_TIMEOUT_S,
                )
                for t in transitions
            )
        )
        dup = sum(1 for ack in acks if ack.duplicate)
        if dup:
            _duplicates.inc(dup)
        _published.inc(len(transitions) - dup, stream="transitions")
