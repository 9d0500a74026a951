"""The compact dedupe window ingest uses to count redeliveries."""

from __future__ import annotations

import tracemalloc
from collections import OrderedDict

import pytest

from ingest.recent_keys import RecentKeys


def _key(i: int) -> tuple[str, str, float]:
    return (f"h{i % 2000}-pir", "heartbeat", 1_800_000_000.0 + i * 0.001)


def test_a_key_seen_lately_is_a_duplicate_and_a_new_one_is_not() -> None:
    keys = RecentKeys(1000)
    assert not keys.seen_before(_key(1))
    assert keys.seen_before(_key(1))
    assert keys.seen_before(("h1-pir", "heartbeat", 1_800_000_000.001))  # equal, not identical
    assert not keys.seen_before(_key(2))
    assert not keys.seen_before(("h1-pir", "heartbeat", 1_800_000_000.002))  # other event time


def test_the_latest_half_capacity_is_always_remembered_and_never_more_than_capacity() -> None:
    capacity = 1000
    keys = RecentKeys(capacity)
    for i in range(10 * capacity):
        assert not keys.seen_before(_key(i))
        assert len(keys) <= capacity
        # Every one of the latest capacity/2 keys still counts as seen.
        if i % 97 == 0:
            recent = range(max(0, i - capacity // 2 + 1), i + 1)
            assert all(keys.seen_before(_key(j)) for j in recent)
    # Long gone keys are forgotten (memory is bounded, not the history).
    assert not keys.seen_before(_key(0))


def test_capacity_must_allow_two_generations() -> None:
    with pytest.raises(ValueError):
        RecentKeys(1)


@pytest.mark.slow  # the size is what is tested
def test_two_hundred_thousand_keys_take_well_under_half_of_an_ordered_dict() -> None:
    # As in ingest: each key is built from a reading, which then goes away; the ordered
    # dict keeps the key's tuple and float, the window only its hash.
    devices = [f"h{i}-pir" for i in range(20_000)]  # ids live in the registry already
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        ordered: OrderedDict[tuple[str, str, float], None] = OrderedDict()
        for i in range(200_000):
            ordered[(devices[i % 20_000], "heartbeat", 1_800_000_000.0 + i * 0.001)] = None
        ordered_bytes = tracemalloc.get_traced_memory()[0] - before
        del ordered
        before = tracemalloc.get_traced_memory()[0]
        recent = RecentKeys(200_000)
        for i in range(199_999):  # just before a generation turns over: the fullest it gets
            recent.seen_before((devices[i % 20_000], "heartbeat", 1_800_000_000.0 + i * 0.001))
        recent_bytes = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(recent) == 199_999
    assert recent_bytes < 0.5 * ordered_bytes
    assert recent_bytes < 100 * 200_000  # < 100 bytes a key
