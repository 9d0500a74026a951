"""Plays a simulation onto a broker: paced by a `Pacer`, stoppable, with figures at the end."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from device_sim.clock import Pacer
from device_sim.encoding import Message, SiteEncoder, native_topic
from device_sim.simulation import Simulation

# Sites publish over separate connections, and a broker reads its sockets in no
# particular order. The runner sends in windows of at most 30 s of event time. Before
# a window goes out, every message more than 60 s older than its start has been
# acknowledged by the broker (QoS 1); so no message reaches subscribers after one
# more than 90 s of event time newer, inside the 120 s of lateness the platform's
# event clock tolerates. Waiting only for old windows keeps the connections busy
# instead of idling on round trips. QoS 0: best effort.
WINDOW_EVENT_S = 30.0
WINDOW_MESSAGES = 1024
ACK_LAG_S = 60.0
MAX_SKEW_S = WINDOW_EVENT_S + ACK_LAG_S
MAX_UNACKED = 20_000  # back-pressure: memory for unacknowledged messages


class Publisher(Protocol):
    def connect(self, site_id: str, will: Message, timeout: float = 10.0) -> None: ...
    def publish(self, site_id: str, message: Message) -> int: ...
    def cut(self, site_id: str) -> None: ...
    def pump(self, timeout: float = 0.0) -> None: ...
    def pending(self) -> int: ...
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
) -> RunStats:
    stats = RunStats()
    wills = {s.id: SiteEncoder(s).will() for s in sim.sites}
    gateways = {s.id: s.gateway.id for s in sim.sites}
    began = time.monotonic()
    last_progress = began
    window_start: float | None = None  # event time of the first message of the open window
    window_count = 0
    closed: deque[tuple[float, int]] = deque()  # (start, last publish number) of sent windows
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
                    topic = native_topic(item.site_id, gateways[item.site_id], "availability")
                    publisher.publish(item.site_id, Message(topic, b"online", True))
            elif item.message is not None:
                if window_start is not None and (
                    window_count >= WINDOW_MESSAGES
                    or item.deliver_at - window_start >= WINDOW_EVENT_S
                ):
                    mark = 0
                    while closed and closed[0][0] < window_start - ACK_LAG_S:
                        mark = closed.popleft()[1]
                    publisher.wait_acked(mark)
                    publisher.send_all()  # the open window goes out
                    closed.append((window_start, seq))
                    window_start, window_count = None, 0
                    while publisher.pending() > MAX_UNACKED:
                        publisher.pump(0.01)
                if window_start is None:
                    window_start = item.deliver_at
                seq = publisher.publish(item.site_id, item.message)
                window_count += 1
                stats.messages += 1
                if stats.first_ts is None:
                    stats.first_ts = item.ts
                stats.last_ts = item.deliver_at
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
