"""Reading one partition's readings from a stream position on.

An ephemeral pull consumer filtered to the partition's subject, starting after the
position recorded with the partition's last snapshot. Nothing is acknowledged to
JetStream: the position recorded with each snapshot is what says how far the
partition was handled (a takeover replays from there).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
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
_remade = counter(
    "eldercare_cluster_consumers_remade_total", "partition consumers made again after a loss"
)


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

    The consumer lives on one NATS node: when that node goes away, so does the consumer,
    and fetches just time out. So after `check_every_s` of nothing the consumer is
    looked up, and made again from the position reached if it is gone."""
    position = after
    while True:
        try:
            sub = await _subscribe(js, partition, position)
        except (nats.errors.Error, TimeoutError) as exc:
            log.warning(
                "partition consumer not made; trying again",
                extra={"partition": partition, "error": str(exc)},
            )
            yield position, []
            await asyncio.sleep(0.5)  # a back-off while NATS answers nothing
            continue
        quiet_since = time.monotonic()
        try:
            while True:
                try:
                    msgs = await sub.fetch(batch, timeout=wait_s)
                except (nats.errors.TimeoutError, TimeoutError):
                    yield position, []
                    if time.monotonic() - quiet_since >= check_every_s:
                        await sub.consumer_info()  # raises when the consumer is gone
                        quiet_since = time.monotonic()
                    continue
                quiet_since = time.monotonic()
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
        except (nats.errors.Error, TimeoutError) as exc:
            _remade.inc()
            log.warning(
                "partition consumer lost; making it again",
                extra={"partition": partition, "position": position, "error": str(exc)},
            )
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()


async def _subscribe(
    js: JetStreamContext, partition: int, after: int
) -> JetStreamContext.PullSubscription:
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
    return await js.pull_subscribe(
        readings_subject(partition), durable=None, stream=READINGS_STREAM, config=config
    )
