"""A site's dedupe window: the keys (device, stream, event time) of its recent readings,
each with a hash of its content, in arrival order.

A worker keeps one per site, by the thousand sites, ~16 keys each at a home's rate: as a
dict of key tuples (a tuple, a float and an int object per key, ~180 bytes) it was the
largest part of a site's bookkeeping. Here the keys are columns (two arrays of 8-byte
numbers, two lists of shared strings: ~32 bytes a key), found by the arrays' own search
for the event time (a scan in C: a window of a thousand keys takes a microsecond).
Same behaviour as the dict: a key is kept once, in the order it first came, and a
new content for a known key replaces the old one in place.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Mapping

Key = tuple[str, str, float]  # (device id, stream, event time)

_UNKNOWN = -1  # no content known (restored from a snapshot): `hash` never returns -1


class RecentKeys(Mapping[Key, int | None]):
    """Key → content hash (None: unknown), in arrival order."""

    __slots__ = ("_content", "_devices", "_streams", "_ts")

    def __init__(self, keys: Iterable[Key] = ()) -> None:
        """Keys of unknown content (a snapshot's)."""
        self._devices: list[str] = []
        self._streams: list[str] = []
        self._ts = array("d")
        self._content = array("q")
        for key in keys:
            self[key] = None

    def _find(self, key: Key) -> int:
        device, stream, ts = key
        ts_column, at = self._ts, -1
        while True:
            try:
                at = ts_column.index(ts, at + 1)
            except ValueError:
                return -1
            if self._devices[at] == device and self._streams[at] == stream:
                return at

    def __contains__(self, key: object) -> bool:
        return isinstance(key, tuple) and len(key) == 3 and self._find(key) >= 0

    def __getitem__(self, key: Key) -> int | None:
        at = self._find(key)
        if at < 0:
            raise KeyError(key)
        content = self._content[at]
        return None if content == _UNKNOWN else content

    def __setitem__(self, key: Key, content: int | None) -> None:
        value = _UNKNOWN if content is None else content
        at = self._find(key)
        if at >= 0:
            self._content[at] = value
            return
        device, stream, ts = key
        self._devices.append(device)
        self._streams.append(stream)
        self._ts.append(ts)
        self._content.append(value)

    def __iter__(self) -> Iterator[Key]:
        return zip(self._devices, self._streams, self._ts, strict=True)

    def __len__(self) -> int:
        return len(self._ts)

    def forget_before(self, horizon: float) -> None:
        """Forget the keys older than `horizon` at the front, up to the first one to keep
        (arrival order is nearly time order; a late key behind it waits for a later call)."""
        ts_column, end = self._ts, 0
        while end < len(ts_column) and ts_column[end] < horizon:
            end += 1
        if end:
            del self._devices[:end], self._streams[:end], self._ts[:end], self._content[:end]

    def __repr__(self) -> str:
        return f"RecentKeys({len(self)} keys)"
