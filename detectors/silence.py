"""Device silence deadlines, shared by `device_offline` and `site_offline`.

A device is overdue `factor` × its report interval after its last message, or at once
when its availability says offline (a Last Will). Deadlines count from `timed_from` at
the earliest: when the rule first saw the site's time (a device that never reports is
still timed), moved to the site's return after an outage (every device then has a
full `factor` × interval to be heard again, and an availability `offline` from before
the return says nothing about now).

`DeadlineHeap` keeps (deadline, device) entries so the earliest deadlines are found
without scanning every device per reading. A reading changes only its own device's
deadline and pushes the new one; entries that no longer hold (the device spoke since,
or the rule no longer counts it) are dropped when they reach the top.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable

# The deadline a device has now, or None if the rule does not count it.
Current = Callable[[str], float | None]


def silence_deadline(
    seen: float | None,
    offline_at: float | None,
    timed_from: float | None,
    interval_s: float,
    factor: float,
) -> float | None:
    """When a device is overdue: its last message `seen` (None: never heard), its
    availability `offline` at `offline_at` (None: not offline), the rule's `timed_from`."""
    if offline_at is not None and (timed_from is None or offline_at >= timed_from):
        return offline_at
    if seen is None or (timed_from is not None and timed_from > seen):
        seen = timed_from
    return None if seen is None else seen + factor * interval_s


class DeadlineHeap:
    """A lazily pruned heap of (deadline, device); not part of a rule's state."""

    __slots__ = ("_heap",)

    def __init__(self) -> None:
        self._heap: list[tuple[float, str]] | None = None  # None: rebuild when next asked

    def reset(self) -> None:
        self._heap = None

    def push(self, due: float | None, device_id: str, devices: int) -> None:
        heap = self._heap
        if heap is None or due is None:
            return
        heapq.heappush(heap, (due, device_id))
        if len(heap) > 2 * devices + 8:
            self._heap = None  # mostly stale entries: rebuild when next asked

    def _built(self, build: Callable[[], Iterable[tuple[float, str]]]) -> list[tuple[float, str]]:
        heap = self._heap
        if heap is None:
            heap = self._heap = list(build())
            heapq.heapify(heap)
        return heap

    def smallest(
        self, k: int, current: Current, build: Callable[[], Iterable[tuple[float, str]]]
    ) -> list[float]:
        """The `k` earliest deadlines that hold (fewer if fewer devices count), in order."""
        heap = self._built(build)
        found: list[tuple[float, str]] = []
        while heap and len(found) < k:
            entry = heapq.heappop(heap)
            # A device's deadline may be in twice (two readings at one time): count it once.
            if current(entry[1]) == entry[0] and entry not in found:
                found.append(entry)
        for entry in found:
            heapq.heappush(heap, entry)
        return [due for due, _ in found]

    def pop_until(
        self, until: float, current: Current, build: Callable[[], Iterable[tuple[float, str]]]
    ) -> list[tuple[float, str]]:
        """Take out every entry due by `until` that holds, in order (the caller handles
        those devices and pushes whatever deadline each has next)."""
        heap = self._built(build)
        out: list[tuple[float, str]] = []
        while heap and heap[0][0] <= until:
            entry = heapq.heappop(heap)
            if current(entry[1]) == entry[0] and (not out or out[-1] != entry):
                out.append(entry)
        return out

    def earliest(
        self, current: Current, build: Callable[[], Iterable[tuple[float, str]]]
    ) -> float | None:
        heap = self._built(build)
        while heap:
            due, device_id = heap[0]
            if current(device_id) == due:
                return due
            heapq.heappop(heap)
        return None
