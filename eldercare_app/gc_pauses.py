"""Garbage-collector pauses of a long-running platform process: measured, and kept short.

A full collection walks every object the collector tracks. With the registry and the
detector state of thousands of homes loaded, that is hundreds of milliseconds during
which the event loop (and an SOS on its way to the console) waits. What is loaded at
start-up lives as long as the process, so it is frozen (`gc.freeze`) out of every later
collection; detector sets built lazily afterwards are frozen as their number grows.
Pauses are exported (`eldercare_gc_*`) so a slow tail can be told apart from slow code.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from eldercare import metrics

_collections = metrics.counter(
    "gc_collections_total", "Garbage collections, by generation", ["generation"]
)
_pause_total = metrics.counter(
    "gc_pause_seconds_total", "Time spent in garbage collection, by generation", ["generation"]
)
_pause_max = metrics.gauge("gc_pause_max_seconds", "Longest garbage-collection pause since start")

_started: list[float] = []
_longest = [0.0]
_quiet = [False]  # a deliberate collection before traffic


def _on_gc(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _started.append(time.perf_counter())
        return
    if not _started:
        return
    took = time.perf_counter() - _started.pop()
    if _quiet[0]:
        return
    generation = int(info.get("generation", 0))
    label = str(generation)
    _collections.inc(generation=label)
    _pause_total.inc(took, generation=label)
    if took > _longest[0]:
        _longest[0] = took
        _pause_max.set(took)


def watch_pauses() -> None:
    """Count and time every collection (idempotent)."""
    if _on_gc not in gc.callbacks:
        gc.callbacks.append(_on_gc)


def freeze_loaded() -> None:
    """Start-up, before traffic: collect once, then move every survivor out of later
    collections' reach. That collection is not a pause anyone waits for: not counted."""
    _quiet[0] = True
    try:
        gc.collect()
    finally:
        _quiet[0] = False
    gc.freeze()


def freeze_grown() -> None:
    """Many objects built since the last freeze (new detector sets): freeze them too,
    without a full collection (that is the pause this avoids). Not after every change:
    frozen objects are still freed when their last reference goes, but a reference
    cycle among them, or garbage pending at the time, never is."""
    gc.freeze()
