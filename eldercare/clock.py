"""Clocks. Detectors never read one: runtimes do, and pass the time in.

`WallClock` is the live clock; `FakeClock` is for tests and replays, advanced by
hand, so no test sleeps to make time pass.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the Unix epoch."""
        ...


class WallClock:
    def now(self) -> float:
        return time.time()


class FakeClock:
    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("time does not run backwards")
        self._now += seconds
        return self._now

    def set(self, ts: float) -> None:
        if ts < self._now:
            raise ValueError("time does not run backwards")
        self._now = ts
