"""What a partition reader takes from a fetched batch after a consumer replica took over
from a stopped node (no daemons): readings sent again are skipped, and deliveries lost
on the way stop the batch where they were lost."""

from __future__ import annotations

from typing import Any

from nats.aio.msg import Msg

from cluster.reader import take
from cluster.wire import reading_bytes
from eldercare.domain import Reading, Stream

T0 = 1_780_000_000.0


def delivered(stream_seq: int, consumer_seq: int) -> Msg:
    """A message as JetStream delivers it: the sequences ride in its reply subject."""
    reading = Reading("home-1", "pir-1", Stream.MOTION, T0 + stream_seq, {"motion": True})
    client: Any = None  # never acknowledged: readers use AckPolicy.NONE
    return Msg(
        client,
        subject="eldercare.readings.3",
        reply=f"$JS.ACK.ELDERCARE_READINGS.p3-x.1.{stream_seq}.{consumer_seq}.0.0",
        data=reading_bytes(reading),
    )


def seqs(readings: list[Reading]) -> list[int]:
    return [int(r.ts - T0) for r in readings]


def test_readings_a_new_leader_sends_again_are_skipped() -> None:
    # Handed on up to stream sequence 40 (consumer sequence 4); the replica that took
    # over knew of deliveries up to 2 only, and sends 3 and 4 again.
    batch = [delivered(30, 3), delivered(40, 4), delivered(50, 5), delivered(60, 6)]
    taken = take(batch, position=40, delivered=4, partition=3)
    assert seqs(taken.readings) == [50, 60]
    assert (taken.position, taken.delivered, taken.gap) == (60, 6, False)


def test_deliveries_lost_on_the_way_stop_the_batch_there() -> None:
    # Consumer sequences 5 and 6 were recorded as delivered but never arrived.
    batch = [delivered(50, 4), delivered(90, 7), delivered(95, 8)]
    taken = take(batch, position=40, delivered=3, partition=3)
    assert seqs(taken.readings) == [50]
    assert (taken.position, taken.delivered, taken.gap) == (50, 4, True)


def test_a_batch_in_order_is_taken_whole() -> None:
    taken = take([delivered(7, 1), delivered(9, 2)], position=0, delivered=0, partition=3)
    assert seqs(taken.readings) == [7, 9]
    assert (taken.position, taken.delivered, taken.gap) == (9, 2, False)
