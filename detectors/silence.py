"""Device silence deadlines, shared by `device_offline` and `site_offline`.

A device is overdue `factor` × its report interval after its last message, or at once
when its availability says offline (a Last Will). Deadlines count from `timed_from` at
the earliest: when the rule first saw the site's time (a device that never reports is
still timed), moved to the site's return after an outage (every device then has a
full `factor` × interval to be heard again, and an availability `offline` from before
the return says nothing about now).

`Deadlines` keeps one (deadline, device) per device a rule counts, sorted, so the
earliest deadlines are read without scanning every device per reading: a reading
changes only its own device's deadline, moved in place (binary searches, no Python
loop); anything else (a timer, a restore, a site's return) rebuilds the list from the
state when next asked.
"""

from __future__ import annotations

from abc import ABC
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, overload

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
    """The sorted (deadline, device) of the devices a rule counts; not part of its state.

    Two columns (an array of deadlines, a list of the devices' shared ids), not a list of
    pairs: a (float, str) tuple and its float cost ~80 bytes a device, by a dozen devices
    a site and two rules, by the thousand sites; `items` reads them as pairs."""

    __slots__ = ("_devices", "_when")

    def __init__(self) -> None:
        self._when: array[float] | None = None  # None: rebuild when next asked
        self._devices: list[str] = []

    def reset(self) -> None:
        self._when = None
        self._devices = []

    def _columns(self, build: Build) -> tuple[array[float], list[str]]:
        when = self._when
        if when is None:
            pairs = sorted(build())
            when = self._when = array("d", [w for w, _ in pairs])
            self._devices = [d for _, d in pairs]
        return when, self._devices

    def items(self, build: Build) -> Pairs:
        return Pairs(*self._columns(build))

    def move(self, device_id: str, old: float | None, new: float | None) -> None:
        """The device's deadline went from `old` to `new` (None: not counted)."""
        when, devices = self._when, self._devices
        if when is None or old == new:
            return
        if old is not None:
            lo = bisect_left(when, old)
            i = bisect_left(devices, device_id, lo, bisect_right(when, old, lo))
            if i == len(when) or when[i] != old or devices[i] != device_id:
                self.reset()  # not where the state says: rebuild rather than guess
                return
            del when[i], devices[i]
        if new is not None:
            lo = bisect_left(when, new)
            i = bisect_right(devices, device_id, lo, bisect_right(when, new, lo))
            when.insert(i, new)
            devices.insert(i, device_id)

    def due_by(self, until: float, build: Build) -> bool:
        when, _ = self._columns(build)
        return bool(when) and when[0] <= until

    def pop_until(self, until: float, build: Build) -> list[tuple[float, str]]:
        """Take out every entry due by `until`, in order (the caller handles those devices
        and moves each to whatever deadline it has next)."""
        when, devices = self._columns(build)
        if not when or when[0] > until:
            return []
        k = bisect_right(when, until)
        out = list(zip(when[:k], devices[:k], strict=True))
        del when[:k], devices[:k]
        return out


class Pairs(Sequence[tuple[float, str]]):
    """`Deadlines` read as its sorted (deadline, device) pairs, made when read."""

    __slots__ = ("_devices", "_when")

    def __init__(self, when: array[float], devices: list[str]) -> None:
        self._when, self._devices = when, devices

    def __len__(self) -> int:
        return len(self._when)

    @overload
    def __getitem__(self, i: int) -> tuple[float, str]: ...
    @overload
    def __getitem__(self, i: slice) -> list[tuple[float, str]]: ...
    def __getitem__(self, i: int | slice) -> tuple[float, str] | list[tuple[float, str]]:
        if isinstance(i, slice):
            return list(zip(self._when[i], self._devices[i], strict=True))
        return self._when[i], self._devices[i]


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
