"""Reading one partition's readings from a stream position on.

An ephemeral pull consumer filtered to the partition's subject, starting after the
position recorded with the partition's last snapshot. Nothing is acknowledged to
JetStream: the position recorded with each snapshot is what says how far the
partition was handled (a takeover replays from there).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import nats.errors
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext

from cluster.partitions import READINGS_STREAM, readings_subject
from cluster.wire import WireError, reading_from
from eldercare.domain import Reading
from eldercare.logs import get_logger
from eldercare.metrics import counter

log = get_logger(__name__)

_bad = counter("eldercare_cluster_bad_messages_total", "stream messages that did not decode")


async def partition_batches(
    js: JetStreamContext,
    partition: int,
    after: int,
    *,
    batch: int = 1000,
    wait_s: float = 0.2,
) -> AsyncIterator[tuple[int, list[Reading]]]:
    """Yield (last stream sequence, readings) batches from sequence `after + 1` on;
    (position, []) when nothing came within `wait_s` (so callers can do their timers)."""
    config = ConsumerConfig(
        ack_policy=AckPolicy.NONE,
        inactive_threshold=60.0,  # the server removes it once its reader is gone
        mem_storage=True,
    )
    if after > 0:
        config.deliver_policy = DeliverPolicy.BY_START_SEQUENCE
        config.opt_start_seq = after + 1
    else:
        config.deliver_policy = DeliverPolicy.ALL
    sub = await js.pull_subscribe(
        readings_subject(partition), durable=None, stream=READINGS_STREAM, config=config
    )
    position = after
    try:
        while True:
            try:
                msgs = await sub.fetch(batch, timeout=wait_s)
            except (nats.errors.TimeoutError, TimeoutError):
                yield position, []
                continue
            readings: list[Reading] = []
            for msg in msgs:
                position = max(position, msg.metadata.sequence.stream)
                try:
                    readings.append(reading_from(msg.data))
                except WireError as exc:
                    _bad.inc()
                    log.warning(
                        "undecodable reading on the stream; skipped",
                        extra={"partition": partition, "seq": position, "error": str(exc)},
                    )
            yield position, readings
    finally:
        await sub.unsubscribe()
