"""Pacing: when, on the wall clock, a message due at an event time goes out.

`speed` 1 is real time (publish as events happen); `speed` X plays X times faster;
`speed` 0 publishes as fast as the broker takes them, in event-time order, each
message carrying its own `ts` (the `event` clock mode of the platform).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(slots=True)
class Pacer:
    speed: float
    event_origin: float  # event time that maps to the wall time the run started
    monotonic: Callable[[], float] = time.monotonic
    wall_origin: float = field(default=-1.0)

    def __post_init__(self) -> None:
        if self.speed < 0:
            raise ValueError("speed must be >= 0 (0 = as fast as possible)")
        if self.wall_origin < 0:
            self.wall_origin = self.monotonic()

    @property
    def unpaced(self) -> bool:
        return self.speed == 0

    @property
    def real_time(self) -> bool:
        return self.speed == 1

    def wall_due(self, event_time: float) -> float:
        """Monotonic wall time at which `event_time` is due."""
        if self.unpaced:
            return self.wall_origin
        return self.wall_origin + (event_time - self.event_origin) / self.speed

    def wait_s(self, event_time: float) -> float:
        """Seconds to wait before `event_time` is due (0 when due or unpaced)."""
        return max(0.0, self.wall_due(event_time) - self.monotonic())
