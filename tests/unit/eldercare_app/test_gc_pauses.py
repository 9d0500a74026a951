"""Garbage-collection pauses are measured, and start-up state is frozen out of them."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from eldercare import metrics
from eldercare_app import gc_pauses


def _sample(name: str) -> float:
    total = 0.0
    for line in metrics.render_prometheus().splitlines():
        if line.startswith(f"eldercare_{name}"):
            total += float(line.rpartition(" ")[2])
    return total


def _full_collections() -> float:
    for line in metrics.render_prometheus().splitlines():
        if line.startswith('eldercare_gc_collections_total{generation="2"}'):
            return float(line.rpartition(" ")[2])
    return 0.0


@pytest.fixture
def watched() -> Iterator[None]:
    gc_pauses.watch_pauses()
    gc_pauses.watch_pauses()  # idempotent: one callback, each collection counted once
    try:
        yield
    finally:
        gc.callbacks.remove(gc_pauses._on_gc)
        gc.unfreeze()


def test_a_collection_is_counted_and_timed(watched: None) -> None:
    assert gc.callbacks.count(gc_pauses._on_gc) == 1
    before, spent = _full_collections(), _sample("gc_pause_seconds_total")
    gc.collect()
    assert _full_collections() == before + 1
    assert _sample("gc_pause_seconds_total") > spent
    assert _sample("gc_pause_max_seconds") > 0


def test_start_up_freeze_is_not_a_counted_pause_and_freezes_survivors(watched: None) -> None:
    kept = [{"site": i} for i in range(1000)]  # long-lived state loaded at start-up
    frozen = gc.get_freeze_count()
    before = _full_collections()
    gc_pauses.freeze_loaded()
    assert _full_collections() == before
    assert gc.get_freeze_count() >= frozen + len(kept)
    more = [{"site": i} for i in range(500)]  # detector sets built later
    gc_pauses.freeze_grown()
    assert gc.get_freeze_count() >= frozen + len(kept) + len(more)
    assert _full_collections() == before  # freezing what grew needs no full collection
