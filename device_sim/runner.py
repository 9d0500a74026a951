"""Plays a simulation onto a broker: paced by a `Pacer`, stoppable, with figures at the end."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from device_sim.clock import Pacer
from device_sim.encoding import Message, SiteEncoder
from device_sim.simulation import Simulation
from eldercare.wire import format_native_topic

# Sites publish over separate connections, and a broker reads its sockets in no
# particular order. So before a message with event time T is written to a socket,
# every message older than T - MAX_SKEW_S has been acknowledged by the broker (QoS 1):
# no message reaches subscribers after one more than MAX_SKEW_S of event time newer,
# inside the 120 s of lateness the platform's event clock tolerates. The runner waits
# only when that would be broken, so it advances up to MAX_SKEW_S of event time per
# broker round trip and otherwise keeps every connection busy. QoS 0: best effort.
MAX_SKEW_S = 90.0
WRITE_EVERY = 1024  # messages queued between writes to the sockets
MAX_UNACKED = 50_000  # back-pressure: memory for unacknowledged messages
HOLD_CHECK_S = 0.5  # how often the `hold` callback is asked


class Publisher(Protocol):
    def connect(self, site_id: str, will: Message, timeout: float = 10.0) -> None: ...
    def publish(self, site_id: str, message: Message) -> int: ...
    def cut(self, site_id: str) -> None: ...
    def pump(self, timeout: float = 0.0) -> None: ...
    def pending(self) -> int: ...
    def acked_through(self, seq: int) -> bool: ...
    def wait_acked(self, seq: int) -> None: ...
    def send_all(self) -> None: ...
    def flush(self, timeout: float = 30.0) -> bool: ...
    def close(self) -> None: ...


@dataclass(slots=True)
class RunStats:
    messages: int = 0
    wall_s: float = 0.0
    first_ts: float | None = None
    last_ts: float | None = None
    stopped: bool = False
    impairments: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.messages / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def simulated_s(self) -> float:
        if self.first_ts is None or self.last_ts is None:
            return 0.0
        return self.last_ts - self.first_ts


def run(
    sim: Simulation,
    publisher: Publisher,
    pacer: Pacer,
    stop: threading.Event | None = None,
    progress: Callable[[RunStats], None] | None = None,
    progress_every_s: float = 10.0,
    hold: Callable[[int], bool] | None = None,
) -> RunStats:
    """Publish every message of `sim` at the time `pacer` says. `hold(messages published)`,
    asked every HOLD_CHECK_S, pauses publishing while it returns True (e.g. while a
    consumer's backlog is too long for the broker to queue)."""
    stats = RunStats()
    wills = {s.id: SiteEncoder(s).will() for s in sim.sites}
    gateways = {s.id: s.gateway.id for s in sim.sites}
    began = time.monotonic()
    last_progress = began
    # (event time, publish number) of messages queued in the last MAX_SKEW_S, oldest first.
    recent: deque[tuple[float, int]] = deque()
    queued = 0
    last_hold = began
    seq = 0
    try:
        for item in sim.messages():
            if stop is not None and stop.is_set():
                stats.stopped = True
                break
            while (wait := pacer.wait_s(item.deliver_at)) > 0:
                publisher.pump(min(wait, 0.25))
                if stop is not None and stop.is_set():
                    stats.stopped = True
                    break
            if stats.stopped:
                break
            if item.control == "connect":
                publisher.connect(item.site_id, wills[item.site_id])
            elif item.control == "cut":
                if sim.cfg.live:
                    publisher.cut(item.site_id)
            elif item.control == "restore":
                if sim.cfg.live:
                    publisher.connect(item.site_id, wills[item.site_id])
                    topic = format_native_topic(
                        item.site_id, gateways[item.site_id], "availability"
                    )
                    publisher.publish(item.site_id, Message(topic, b"online", True))
            elif item.message is not None:
                horizon = item.deliver_at - MAX_SKEW_S
                if recent and recent[0][0] < horizon:
                    mark = 0
                    while recent and recent[0][0] < horizon:
                        mark = recent.popleft()[1]
                    if not publisher.acked_through(mark):
                        publisher.send_all()
                        publisher.wait_acked(mark)
                seq = publisher.publish(item.site_id, item.message)
                recent.append((item.deliver_at, seq))
                stats.messages += 1
                if stats.first_ts is None:
                    stats.first_ts = item.ts
                stats.last_ts = item.deliver_at
                queued += 1
                if queued >= WRITE_EVERY:
                    queued = 0
                    publisher.pump(0.0)
                    while publisher.pending() > MAX_UNACKED:
                        publisher.pump(0.01)
                    if hold is not None and time.monotonic() - last_hold >= HOLD_CHECK_S:
                        while hold(stats.messages) and not (stop is not None and stop.is_set()):
                            publisher.pump(0.25)
                        last_hold = time.monotonic()
            now = time.monotonic()
            if progress is not None and now - last_progress >= progress_every_s:
                last_progress = now
                stats.wall_s = now - began
                progress(stats)
        publisher.flush()
    finally:
        stats.wall_s = time.monotonic() - began
        stats.impairments = dict(sim.impairer_counts)
    return stats
