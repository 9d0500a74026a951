"""Plays a simulation onto a broker: paced by a `Pacer`, stoppable, with figures at the end."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from device_sim.clock import Pacer
from device_sim.encoding import Message, SiteEncoder, native_topic
from device_sim.simulation import Simulation

MAX_UNACKED = 20_000  # back-pressure: wait for the broker's acks beyond this
# The publisher gathers writes per site connection; sending them at least every 30 s
# of event time keeps sites' messages within 30 s of each other at the broker (the
# platform's event clock tolerates 120 s of lateness across sites).
FLUSH_EVERY_EVENT_S = 30.0
FLUSH_EVERY_MESSAGES = 512


class Publisher(Protocol):
    def connect(self, site_id: str, will: Message, timeout: float = 10.0) -> None: ...
    def publish(self, site_id: str, message: Message) -> None: ...
    def cut(self, site_id: str) -> None: ...
    def pump(self, timeout: float = 0.0) -> None: ...
    def buffered(self) -> int: ...
    def pending(self) -> int: ...
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
    flushed_at: float | None = None
    since_flush = 0
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
                if pacer.live:
                    publisher.cut(item.site_id)
            elif item.control == "restore":
                if pacer.live:
                    publisher.connect(item.site_id, wills[item.site_id])
                    topic = native_topic(item.site_id, gateways[item.site_id], "availability")
                    publisher.publish(item.site_id, Message(topic, b"online", True))
            elif item.message is not None:
                publisher.publish(item.site_id, item.message)
                stats.messages += 1
                if stats.first_ts is None:
                    stats.first_ts = item.ts
                stats.last_ts = item.deliver_at
                since_flush += 1
                if flushed_at is None:
                    flushed_at = item.deliver_at
                if (
                    since_flush >= FLUSH_EVERY_MESSAGES
                    or item.deliver_at - flushed_at >= FLUSH_EVERY_EVENT_S
                ):
                    publisher.pump(0.0)
                    # Every site's share out before any site gets further ahead, even
                    # when one connection's socket is full (a burst of accelerometer data).
                    while publisher.buffered():
                        publisher.pump(0.002)
                    flushed_at, since_flush = item.deliver_at, 0
                    while publisher.pending() > MAX_UNACKED:
                        publisher.pump(0.01)
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
