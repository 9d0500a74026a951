"""Simulated devices: what a real sensor adds to the truth of what happened.

Real devices report on a schedule (a little more often than their nominal report
interval, so one lost heartbeat never looks like an offline device), drain their
batteries, have a radio link that wanders, and their messages are sometimes
duplicated, delayed, overtaken or lost. All of that is modelled here and is
configurable; none of it changes the ground truth of what the resident did.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from eldercare.domain import DeviceKind, Stream

BATTERY_REPORT_S = 6 * 3600.0

# Fire-and-forget periodic reports: the only messages radio trouble loses or delays by
# minutes. A device retries its events, and a gateway delivers one device's reports in
# order, so a state change (door, bed, presence, fall, SOS, tamper) or a movement is
# never lost, nor delivered minutes late behind newer reports of the same device: that
# would be an incident (a bed left empty for hours, a door opening now) the ground truth
# does not know of. Events are still duplicated and overtaken by a few seconds.
PERIODIC_STREAMS = frozenset({Stream.HEARTBEAT, Stream.BATTERY, Stream.LINK, Stream.VITALS})
# Devices heartbeat this much faster than their registered report interval.
HEARTBEAT_FACTOR = 0.95

# Registered report intervals: mains-powered devices check in often, battery
# sensors about hourly (as zigbee sensors do); the gateway is the site's heartbeat.
REPORT_INTERVAL_S: dict[DeviceKind, float] = {
    DeviceKind.GATEWAY: 300.0,
    DeviceKind.FALL_RADAR: 900.0,
    DeviceKind.BED: 900.0,
    DeviceKind.VITALS: 900.0,
    DeviceKind.WEARABLE: 900.0,
    DeviceKind.MOTION: 3600.0,
    DeviceKind.DOOR: 3600.0,
    DeviceKind.SOS_BUTTON: 3600.0,
    DeviceKind.SMOKE_ALARM: 3600.0,
    DeviceKind.GAS_ALARM: 900.0,  # mains powered
    DeviceKind.WATER_LEAK: 3600.0,
    DeviceKind.CLIMATE: 1800.0,  # also its temperature report
}

BATTERY_POWERED = {
    DeviceKind.SMOKE_ALARM,
    DeviceKind.WATER_LEAK,
    DeviceKind.CLIMATE,
    DeviceKind.MOTION,
    DeviceKind.DOOR,
    DeviceKind.BED,
    DeviceKind.SOS_BUTTON,
    DeviceKind.WEARABLE,
}

# Devices that exist in zigbee2mqtt form in a z2m home; the rest always speak native.
Z2M_KINDS = {
    DeviceKind.SMOKE_ALARM,
    DeviceKind.GAS_ALARM,
    DeviceKind.WATER_LEAK,
    DeviceKind.CLIMATE,
    DeviceKind.MOTION,
    DeviceKind.DOOR,
    DeviceKind.BED,
    DeviceKind.FALL_RADAR,
    DeviceKind.SOS_BUTTON,
}


@dataclass(slots=True)
class SimDevice:
    id: str
    kind: DeviceKind
    room: str | None
    resident: str | None = None
    bed: str | None = None
    outer_door: bool = False
    room_door: bool = False  # a contact on the door of its room (not on furniture)
    z2m_name: str | None = None  # friendly name when the device speaks zigbee2mqtt
    report_interval_s: float = 3600.0
    phase: float = 0.0  # offset of the device's report schedule, seconds
    battery_start: float = 100.0  # percent at the run's start
    battery_drain_per_day: float = 0.1
    link_base: int = 150
    # Battery forced low from this event time (low_battery scenario), then drained on.
    battery_low_from: float | None = None
    battery_low_level: float = 14.0
    battery_replaced_at: float | None = None

    @property
    def z2m(self) -> bool:
        return self.z2m_name is not None

    @property
    def has_battery(self) -> bool:
        return self.kind in BATTERY_POWERED

    @property
    def heartbeat_period(self) -> float:
        return self.report_interval_s * HEARTBEAT_FACTOR

    def heartbeat_times(self, a: float, b: float, origin: float) -> list[tuple[int, float]]:
        """(seq, time) of scheduled reports in [a, b); seq counts from the run's origin."""
        period = self.heartbeat_period
        first = max(0, math.ceil((a - origin - self.phase) / period))
        out: list[tuple[int, float]] = []
        k = first
        while True:
            t = origin + self.phase + k * period
            if t >= b:
                return out
            out.append((k, t))
            k += 1

    def last_heartbeat_before(self, t: float, origin: float) -> float:
        period = self.heartbeat_period
        k = math.floor((t - origin - self.phase) / period)
        return origin + self.phase + k * period

    def battery_at(self, t: float, origin: float) -> float:
        if self.battery_replaced_at is not None and t >= self.battery_replaced_at:
            days = (t - self.battery_replaced_at) / 86400.0
            return round(max(0.0, 100.0 - self.battery_drain_per_day * days), 1)
        if self.battery_low_from is not None and t >= self.battery_low_from:
            days = (t - self.battery_low_from) / 86400.0
            return round(max(0.0, self.battery_low_level - 0.5 * days), 1)
        days = (t - origin) / 86400.0
        level = self.battery_start - self.battery_drain_per_day * days
        # A technician swaps batteries before they run low on their own in a long run.
        while level < 20.0:
            level += 80.0
        return round(level, 1)

    def link_at(self, t: float) -> int:
        """Link quality: a slow daily wander around the device's own base, 0..255."""
        wobble = 18 * math.sin(t / 5400.0 + self.phase) + 9 * math.sin(t / 777.0 + self.link_base)
        return max(5, min(255, int(self.link_base + wobble)))


@dataclass(frozen=True, slots=True)
class Impairments:
    """How unreliable delivery is. Rates are per message unless named otherwise."""

    duplicate_rate: float = 0.005
    late_rate: float = 0.002
    late_delay_s: tuple[float, float] = (30.0, 300.0)
    reorder_rate: float = 0.005  # delivered a few seconds late, after newer messages
    reorder_delay_s: tuple[float, float] = (1.0, 8.0)
    drop_rate: float = 0.001
    dropouts_per_device_day: float = 0.05  # short radio outages
    dropout_max_s: float = 300.0
    dropout_fraction: float = 0.8  # of the heartbeat period at most: loses <= 1 heartbeat

    @classmethod
    def none(cls) -> Impairments:
        return cls(
            duplicate_rate=0.0,
            late_rate=0.0,
            reorder_rate=0.0,
            drop_rate=0.0,
            dropouts_per_device_day=0.0,
        )

    @property
    def active(self) -> bool:
        return any(
            (
                self.duplicate_rate,
                self.late_rate,
                self.reorder_rate,
                self.drop_rate,
                self.dropouts_per_device_day,
            )
        )


@dataclass(slots=True)
class Impairer:
    """Decides each message's delivery times (none = lost), with its own seeded RNG."""

    impairments: Impairments
    rng: random.Random
    counts: dict[str, int] = field(
        default_factory=lambda: {"duplicated": 0, "late": 0, "reordered": 0, "dropped": 0}
    )

    def deliveries(self, ts: float, stream: Stream, keep: bool = False) -> list[float]:
        """When the message of an event at `ts` arrives (none: lost). Only periodic reports
        are lost or delivered late (see PERIODIC_STREAMS), and not when `keep`."""
        imp = self.impairments
        if not imp.active:
            return [ts]
        r = self.rng.random()
        fragile = stream in PERIODIC_STREAMS and not keep
        if r < imp.drop_rate:
            if not fragile:
                return [ts]
            self.counts["dropped"] += 1
            return []
        r -= imp.drop_rate
        if r < imp.late_rate:
            if not fragile:
                return [ts]
            self.counts["late"] += 1
            return [ts + self.rng.uniform(*imp.late_delay_s)]
        r -= imp.late_rate
        if r < imp.reorder_rate:
            self.counts["reordered"] += 1
            return [ts + self.rng.uniform(*imp.reorder_delay_s)]
        r -= imp.reorder_rate
        if r < imp.duplicate_rate:
            self.counts["duplicated"] += 1
            return [ts, ts + self.rng.uniform(0.05, 2.0)]
        return [ts]

    def dropouts(
        self, device: SimDevice, day_seed: str, a: float, b: float
    ) -> list[tuple[float, float]]:
        """Short radio outages of `device` within [a, b), seeded per device and day."""
        imp = self.impairments
        if imp.dropouts_per_device_day <= 0:
            return []
        rng = random.Random(f"{day_seed}|{device.id}|dropout")
        expected = imp.dropouts_per_device_day * (b - a) / 86400.0
        out: list[tuple[float, float]] = []
        for _ in range(_count(rng, expected)):
            start = rng.uniform(a, b)
            longest = min(imp.dropout_max_s, imp.dropout_fraction * device.heartbeat_period)
            length = rng.uniform(min(30.0, longest), longest)
            out.append((start, start + length))
        return out


def _count(rng: random.Random, mean: float) -> int:
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1
