"""Device silence deadlines, shared by `device_offline` and `site_offline`.

A device is overdue `factor` × its report interval after its last message, or at once
when its availability says offline (a Last Will). Deadlines count from `timed_from` at
the earliest: when the rule first saw the site's time (a device that never reports is
still timed), moved to the site's return after an outage (every device then has a
full `factor` × interval to be heard again, and an availability `offline` from before
the return says nothing about now).

`Deadlines` keeps one (deadline, device) per device a rule counts, sorted, so the
earliest deadlines are read without scanning every device per reading: a reading
changes only its own device's deadline, moved in place (a binary search, no Python
loop); anything else (a timer, a restore, a site's return) rebuilds the list from the
state when next asked.
"""

from __future__ import annotations

from abc import ABC
from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Iterable, Mapping
from operator import itemgetter
from typing import Any

from detectors.rule import Rule, StateT
from detectors.site_context import SiteContext

Build = Callable[[], Iterable[tuple[float, str]]]  # every (deadline, device) counted


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


class Deadlines:
    """The sorted (deadline, device) of the devices a rule counts; not part of its state."""

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: list[tuple[float, str]] | None = None  # None: rebuild when next asked

    def reset(self) -> None:
        self._items = None

    def items(self, build: Build) -> list[tuple[float, str]]:
        items = self._items
        if items is None:
            items = self._items = sorted(build())
        return items

    def move(self, device_id: str, old: float | None, new: float | None) -> None:
        """The device's deadline went from `old` to `new` (None: not counted)."""
        items = self._items
        if items is None or old == new:
            return
        if old is not None:
            i = bisect_left(items, (old, device_id))
            if i == len(items) or items[i] != (old, device_id):
                self._items = None  # not where the state says: rebuild rather than guess
                return
            del items[i]
        if new is not None:
            insort(items, (new, device_id))

    def due_by(self, until: float, build: Build) -> bool:
        items = self._items
        if items is None:
            items = self.items(build)
        return bool(items) and items[0][0] <= until

    def pop_until(self, until: float, build: Build) -> list[tuple[float, str]]:
        """Take out every entry due by `until`, in order (the caller handles those devices
        and moves each to whatever deadline it has next)."""
        items = self.items(build)
        if not items or items[0][0] > until:
            return []
        k = bisect_right(items, until, key=itemgetter(0))
        out = items[:k]
        del items[:k]
        return out


class SilenceRule(Rule[StateT], ABC):
    """A rule that judges devices' silence by their deadlines, kept in `_deadlines`
    (derived from the state, so dropped whenever the state changes outside a reading)."""

    def __init__(self, ctx: SiteContext) -> None:
        super().__init__(ctx)
        self._deadlines = Deadlines()

    def state_changed(self) -> None:
        self._deadlines.reset()
        super().state_changed()

    def restore(self, state: Mapping[str, Any]) -> None:
        self._deadlines.reset()
        super().restore(state)
