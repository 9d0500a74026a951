"""The process's health: its periodic loops and the parts of the safety path.

Like `eldercare.metrics`, one process-wide registry every part reports to and the
gateway reads (`/healthz`, `/metrics`). Two kinds of entry:

- loops (`eldercare.periodic.Periodic` registers them): each tick records when it
  ran; a loop that has not ticked for `overdue_after_s` (stuck, never started, or
  its task died) makes the process unhealthy;
- parts (the broker connection, the InfluxDB write path, the alert store, the
  spool...): a part reports `impaired(part, reason)` when it cannot do its work and
  `restored(part)` when it can again; an impaired part of the safety path makes the
  process unhealthy, with its reason and since when.

Times are wall-clock seconds (what an operator reads: "since 14:02"); loops also
keep a monotonic stamp for their age, so a wall-clock step never makes a loop look
stuck or fresh.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eldercare import metrics

_loop_age = metrics.gauge(
    "loop_age_seconds", "Seconds since each periodic loop last ticked", ["loop"]
)
_loop_overdue = metrics.gauge("loop_overdue", "1 while a periodic loop is overdue", ["loop"])
_part_impaired = metrics.gauge(
    "part_impaired", "1 while a part of the platform reports itself impaired", ["part"]
)


@dataclass
class LoopHealth:
    name: str
    every_s: float
    overdue_after_s: float
    started_mono: float
    last_tick_mono: float | None = None  # None: not ticked yet
    last_tick_wall: float | None = None
    last_error: str | None = None
    failing_since_mono: float | None = None  # its ticks have raised since (None: last one ok)
    running: bool = True  # False once its task ended other than by `stop`


@dataclass(frozen=True)
class PartHealth:
    part: str
    reason: str
    since: float  # wall-clock seconds


@dataclass(frozen=True)
class Problem:
    """One reason the process is not healthy, for `/healthz` and the console banner."""

    part: str
    reason: str
    since: float | None  # wall-clock seconds, when known


class HealthRegistry:
    def __init__(
        self,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.monotonic = monotonic
        self.wall = wall
        self._loops: dict[str, LoopHealth] = {}
        self._parts: dict[str, PartHealth] = {}
        self._lock = threading.Lock()

    # --- loops ------------------------------------------------------------------------
    def loop_started(self, name: str, every_s: float, overdue_after_s: float) -> None:
        with self._lock:
            self._loops[name] = LoopHealth(name, every_s, overdue_after_s, self.monotonic())

    def loop_ticked(self, name: str, error: str | None = None) -> None:
        with self._lock:
            loop = self._loops.get(name)
            if loop is None:
                return
            loop.last_tick_mono = self.monotonic()
            loop.last_tick_wall = self.wall()
            loop.last_error = error
            if error is None:
                loop.failing_since_mono = None
            elif loop.failing_since_mono is None:
                loop.failing_since_mono = loop.last_tick_mono

    def loop_died(self, name: str, error: str) -> None:
        with self._lock:
            loop = self._loops.get(name)
            if loop is not None:
                loop.running = False
                loop.last_error = error

    def loop_stopped(self, name: str) -> None:
        with self._lock:
            self._loops.pop(name, None)
        _loop_overdue.set(0, loop=name)  # stopped on purpose: not overdue

    def loops(self) -> list[LoopHealth]:
        with self._lock:
            return sorted(self._loops.values(), key=lambda loop: loop.name)

    def loop_age(self, loop: LoopHealth) -> float:
        """Seconds since its last tick (since its start when it never ticked)."""
        last = loop.last_tick_mono if loop.last_tick_mono is not None else loop.started_mono
        return max(0.0, self.monotonic() - last)

    # --- parts ------------------------------------------------------------------------
    def impaired(self, part: str, reason: str, since: float | None = None) -> None:
        """`part` cannot do its work; `since` (wall seconds) defaults to the first report."""
        with self._lock:
            current = self._parts.get(part)
            start = since if since is not None else (current.since if current else self.wall())
            self._parts[part] = PartHealth(part, reason, start)
        _part_impaired.set(1, part=part)

    def restored(self, part: str) -> None:
        with self._lock:
            self._parts.pop(part, None)
        _part_impaired.set(0, part=part)

    def watch(self, task: asyncio.Task[Any], part: str) -> None:
        """`task` must run until cancelled (a consumer, not a `Periodic`): should it end
        otherwise, `part` is impaired with how it ended."""

        def ended(done: asyncio.Task[Any]) -> None:
            if done.cancelled():
                return
            error = done.exception()
            how = repr(error)[:300] if error is not None else "returned"
            self.impaired(part, f"task {done.get_name()} ended: {how}")

        task.add_done_callback(ended)

    def parts(self) -> list[PartHealth]:
        with self._lock:
            return sorted(self._parts.values(), key=lambda p: p.part)

    # --- verdict ----------------------------------------------------------------------
    def problems(self) -> list[Problem]:
        """Every impaired part and every overdue or dead loop, oldest first."""
        out = [Problem(p.part, p.reason, p.since) for p in self.parts()]
        now_wall = self.wall()
        for loop in self.loops():
            age = self.loop_age(loop)
            if not loop.running:
                reason = f"loop stopped: {loop.last_error or 'ended'}"
            elif age > loop.overdue_after_s:
                never = loop.last_tick_mono is None
                reason = (
                    f"loop has not ticked since it started {age:.0f} s ago"
                    if never
                    else f"loop last ticked {age:.0f} s ago (every {loop.every_s:g} s)"
                )
            elif self._failing_for(loop) > loop.overdue_after_s:
                failing = self._failing_for(loop)
                reason = f"loop failing for {failing:.0f} s: {loop.last_error}"
                age = failing
            else:
                continue
            out.append(Problem(f"loop:{loop.name}", reason, now_wall - age))
        return sorted(out, key=lambda p: (p.since is None, p.since or 0.0, p.part))

    def _failing_for(self, loop: LoopHealth) -> float:
        if loop.failing_since_mono is None:
            return 0.0
        return max(0.0, self.monotonic() - loop.failing_since_mono)

    def collect(self) -> None:
        """Refresh the loop gauges (run before each `/metrics` rendering)."""
        for loop in self.loops():
            age = self.loop_age(loop)
            _loop_age.set(age, loop=loop.name)
            overdue = (
                not loop.running
                or age > loop.overdue_after_s
                or self._failing_for(loop) > loop.overdue_after_s
            )
            _loop_overdue.set(1 if overdue else 0, loop=loop.name)

    def clear(self) -> None:
        """Forget everything (tests only)."""
        with self._lock:
            self._loops.clear()
            self._parts.clear()


HEALTH = HealthRegistry()
metrics.REGISTRY.add_collector(HEALTH.collect)


def impaired(part: str, reason: str, since: float | None = None) -> None:
    HEALTH.impaired(part, reason, since)


def restored(part: str) -> None:
    HEALTH.restored(part)


def watch(task: asyncio.Task[Any], part: str) -> None:
    HEALTH.watch(task, part)


def problems() -> list[Problem]:
    return HEALTH.problems()
