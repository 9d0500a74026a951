"""Which reading keys ingest has handled lately, in little memory (to count redeliveries).

A key is remembered as its 64-bit hash, in two generations of sets: new hashes go
into the current one; when it holds half the capacity it becomes the previous one
and the one before is dropped. So between `capacity / 2` and `capacity` of the
latest distinct keys are remembered, at ~60 bytes a key instead of the ~250 of a
tuple of strings and a float in an ordered dict (200,000 keys: ~12 MB, not ~50).
Two different keys sharing a hash would count one false duplicate: with 64-bit
hashes and 200,000 keys, about one chance in 10^9.
"""

from __future__ import annotations

from collections.abc import Hashable


class RecentKeys:
    def __init__(self, capacity: int) -> None:
        if capacity < 2:
            raise ValueError("capacity must be at least 2")
        self.capacity = capacity
        self._generation = capacity // 2
        self._current: set[int] = set()
        self._previous: set[int] = set()

    def seen_before(self, key: Hashable) -> bool:
        """True if `key` was seen lately; else remember it and return False."""
        h = hash(key)
        if h in self._current or h in self._previous:
            return True
        current = self._current
        current.add(h)
        if len(current) >= self._generation:
            self._previous, self._current = current, set()
        return False

    def __len__(self) -> int:
        return len(self._current) + len(self._previous)
