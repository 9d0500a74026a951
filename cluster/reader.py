"""Reading one partition's readings from a stream position on.

An ephemeral pull consumer filtered to the partition's subject, starting after the
position recorded with the partition's last snapshot. Nothing is acknowledged to
JetStream: the position recorded with each snapshot is what says how far the
partition was handled (a takeover replays from there).

The consumer is replicated like its stream: when the NATS node leading it stops, a
replica on a surviving node takes over and fetches carry on, with no consumer to find
missing and make again (an R1 consumer on the stopped node took its reader 3 s of
silence, a lookup waiting out the JetStream API timeout, and a new consumer that
2.9 servers may place on the stopped node again). A take-over leaves two traces that
are handled here, so nothing is lost or handed on twice:

- the replica may know less of what was delivered than the old leader did, and send
  some readings again: anything at or before the position reached is skipped;
- deliveries in flight from the old leader may be lost on the way while the replicas
  recorded them as delivered (no acks, so nobody sends them again): the consumer's own
  delivery count then jumps, or its info shows more delivered than arrived, and the
  consumer is made again from the position reached.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import NamedTuple

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext

from cluster.partitions import READINGS_STREAM, readings_subject
from cluster.wire import WireError, reading_from
from eldercare.domain import Reading
from eldercare.logs import get_logger
from eldercare.metrics import counter

log = get_logger(__name__)

_bad = counter("eldercare_cluster_bad_messages_total", "stream messages that did not decode")
_remade = counter(
    "eldercare_cluster_consumers_remade_total", "partition consumers made again after a loss"
)
_resent = counter(
    "eldercare_cluster_readings_resent_total",
    "readings a partition consumer sent again after a replica took it over (skipped)",
)

# A consumer's info comes back in milliseconds; unanswered this long, the consumer has no
# leader at the moment (a replica is being elected): fetching goes on meanwhile, instead
# of waiting out the JetStream API's 10 s.
LOOKUP_TIMEOUT_S = 1.0
# Unanswered (or offline) for this long, the consumer is taken for lost and made again: a
# replicated one elects a new leader within seconds unless its stream lost its quorum.
REMAKE_AFTER_S = 6.0
# Making a consumer needs the meta leader and the stream leader; while they are being
# elected the attempt is given up after this long and tried again.
CREATE_TIMEOUT_S = 3.0


class ConsumerLost(Exception):
    """The partition's consumer is gone, unanswered for too long, or lost deliveries."""


@dataclass
class _Consumer:
    sub: JetStreamContext.PullSubscription
    name: str
    delivered: int = 0  # the consumer's sequence of the last delivery that reached us


async def partition_batches(
    js: JetStreamContext,
    partition: int,
    after: int,
    *,
    batch: int = 1000,
    wait_s: float = 0.2,
    check_every_s: float = 3.0,
) -> AsyncIterator[tuple[int, list[Reading]]]:
    """Yield (last stream sequence, readings) batches from sequence `after + 1` on;
    (position, []) when nothing came within `wait_s` (so callers can do their timers).

    After `check_every_s` of nothing the consumer is looked up: gone, unanswered for
    `REMAKE_AFTER_S`, or showing deliveries that never arrived, it is made again from
    the position reached."""
    position = after
    replicas: int | None = None  # the stream's, asked once
    # A consumer's name is kept until it is made: asking again for the same one after an
    # unanswered request (made, its answer late) is idempotent, and leaves no orphan
    # consumer behind to replicate until the server drops it.
    name: str | None = None
    while True:
        try:
            if replicas is None:
                replicas = await _stream_replicas(js)
            name = name or f"p{partition}-{uuid.uuid4().hex[:12]}"
            consumer = await _subscribe(js, name, partition, position, replicas)
            name = None
        except (nats.errors.Error, TimeoutError) as exc:
            log.warning(
                "partition consumer not made; trying again",
                extra={"partition": partition, "error": str(exc)},
            )
            yield position, []
            await asyncio.sleep(0.5)  # a back-off while NATS answers nothing
            continue
        quiet_since = time.monotonic()
        unanswered_since: float | None = None
        try:
            while True:
                try:
                    msgs = await consumer.sub.fetch(batch, timeout=wait_s)
                except (nats.errors.TimeoutError, TimeoutError):
                    yield position, []
                    now = time.monotonic()
                    if now - quiet_since >= check_every_s:
                        quiet_since = now
                        if await _answers(js, consumer):
                            unanswered_since = None
                        elif unanswered_since is None:
                            unanswered_since = now
                        elif now - unanswered_since >= REMAKE_AFTER_S:
                            raise ConsumerLost("unanswered") from None
                    continue
                quiet_since = time.monotonic()
                unanswered_since = None
                taken = take(msgs, position, consumer.delivered, partition)
                position, consumer.delivered = taken.position, taken.delivered
                yield position, taken.readings
                if taken.gap:
                    raise ConsumerLost("deliveries lost on the way")
        except (ConsumerLost, nats.errors.Error, TimeoutError) as exc:
            _remade.inc()
            log.warning(
                "partition consumer lost; making it again",
                extra={"partition": partition, "position": position, "error": str(exc)},
            )
        finally:
            with contextlib.suppress(Exception):
                await consumer.sub.unsubscribe()


class Taken(NamedTuple):
    readings: list[Reading]
    position: int  # the stream sequence of the last reading taken
    delivered: int  # the consumer sequence of the last message looked at
    gap: bool  # deliveries were lost before the rest of the batch (left for a new consumer)


def take(msgs: list[Msg], position: int, delivered: int, partition: int) -> Taken:
    """The readings of a fetched batch past stream sequence `position`, given the
    consumer sequence `delivered` of the last message before it: one sent again is
    skipped, and a jump in the consumer's sequence stops the batch there."""
    readings: list[Reading] = []
    for msg in msgs:
        seq = msg.metadata.sequence
        if seq.consumer > delivered + 1:
            return Taken(readings, position, delivered, True)
        delivered = seq.consumer
        if seq.stream <= position:
            _resent.inc()
            continue
        position = seq.stream
        try:
            readings.append(reading_from(msg.data))
        except WireError as exc:
            _bad.inc()
            log.warning(
                "undecodable reading on the stream; skipped",
                extra={"partition": partition, "seq": position, "error": str(exc)},
            )
    return Taken(readings, position, delivered, False)


async def _answers(js: JetStreamContext, consumer: _Consumer) -> bool:
    """Whether the consumer answered for itself; raises `ConsumerLost` when it is gone
    or says it delivered what never arrived."""
    try:
        info = await js.consumer_info(READINGS_STREAM, consumer.name, timeout=LOOKUP_TIMEOUT_S)
    except nats.js.errors.NotFoundError:
        raise ConsumerLost("gone") from None
    except (nats.errors.Error, TimeoutError):
        return False  # no leader now (offline, being elected): fetching goes on
    # (What came in since the last fetch waits in the subscription: not lost.)
    arrived = consumer.delivered + consumer.sub.pending_msgs
    if info.delivered is not None and info.delivered.consumer_seq > arrived:
        raise ConsumerLost("delivered more than arrived")
    return True


async def _stream_replicas(js: JetStreamContext) -> int:
    # (nats-py's stream info has no timeout of its own but the API's 10 s.)
    info = await asyncio.wait_for(js.stream_info(READINGS_STREAM), CREATE_TIMEOUT_S)
    return info.config.num_replicas or 1


async def _subscribe(
    js: JetStreamContext, name: str, partition: int, after: int, replicas: int
) -> _Consumer:
    config = ConsumerConfig(
        name=name,
        filter_subject=readings_subject(partition),
        ack_policy=AckPolicy.NONE,
        inactive_threshold=60.0,  # the server removes it once its reader is gone
        mem_storage=True,
        # Ephemeral consumers are R1 unless asked: replicated like the stream, a node's stop
        # is ridden out by a replica instead of losing the consumer.
        num_replicas=replicas,
    )
    if after > 0:
        config.deliver_policy = DeliverPolicy.BY_START_SEQUENCE
        config.opt_start_seq = after + 1
    else:
        config.deliver_policy = DeliverPolicy.ALL
    await js.add_consumer(READINGS_STREAM, config, timeout=CREATE_TIMEOUT_S)
    sub = await js.pull_subscribe_bind(consumer=name, stream=READINGS_STREAM)
    return _Consumer(sub, name)
