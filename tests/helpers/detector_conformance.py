"""A scripted day of a home that exercises every rule: used by the conformance suite.

It is not meant to be realistic, only to drive every detector through open
episodes (so snapshots are taken mid-episode) and timers.
"""

from __future__ import annotations

import math

from eldercare.domain import Reading, Stream
from eldercare.registry_model import Site
from tests.helpers.detectors import home_site, local_ts, reading

TZ = "Europe/Berlin"
WEARABLE = {"id": "pendant-1", "kind": "wearable", "report_interval_s": 60}
HAZARD_DEVICES = [
    {"id": "smoke-1", "kind": "smoke_alarm", "room": "kitchen"},
    {"id": "gas-1", "kind": "gas_alarm", "room": "kitchen"},
    {"id": "co-1", "kind": "co_alarm", "room": "living"},
    {"id": "leak-1", "kind": "water_leak", "room": "bathroom"},
    {"id": "th-living", "kind": "climate", "room": "living"},
    {"id": "th-bed", "kind": "climate", "room": "bedroom"},
]


def scripted_site() -> Site:
    from tests.helpers.detectors import HOME_DEVICES

    # A short baseline so that routine_deviation judges within the scripted days.
    overrides = {"routine_deviation": {"baseline_days": 3}}
    devices = [*HOME_DEVICES, WEARABLE, *HAZARD_DEVICES]
    return home_site(TZ, devices=devices, resident_overrides=overrides)


def _accel(site: Site, ts: float, lying: bool, impact: bool = False) -> Reading:
    n = 50
    if lying:
        xs, ys, zs = [0.0] * n, [0.0] * n, [1.0] * n
    else:
        xs, ys, zs = [0.0] * n, [1.0] * n, [0.0] * n
    if impact:
        ys = [1.0] * 20 + [3.5] * 3 + [0.0] * 27
        zs = [0.0] * 23 + [1.0] * 27
    return reading(
        site, "pendant-1", Stream.ACCEL, ts, rate_hz=50.0, x=tuple(xs), y=tuple(ys), z=tuple(zs)
    )


def scripted_day(site: Site) -> list[Reading]:
    t0 = local_ts(TZ, 2024, 3, 4, 21, 0)
    out: list[Reading] = []

    def at(minutes: float, device: str, stream: Stream, **fields: object) -> None:
        out.append(reading(site, device, stream, t0 + minutes * 60, **fields))  # type: ignore[arg-type]

    at(0, "pir-living", Stream.MOTION, motion=True)
    at(1, "bed-1", Stream.BATTERY, percent=12.0)
    at(2, "door-front", Stream.TAMPER, tamper=True)
    at(5, "sos-1", Stream.SOS, pressed=True)
    at(5.5, "sos-1", Stream.SOS, pressed=True)
    at(30, "bed-1", Stream.OCCUPANCY, occupied=True)
    at(40, "vitals-1", Stream.VITALS, heart_rate=150.0, breathing_rate=14.0)
    at(47, "vitals-1", Stream.VITALS, heart_rate=152.0, breathing_rate=14.0)
    at(60, "bed-1", Stream.OCCUPANCY, occupied=False)  # 22:00 left bed
    at(61, "pir-bath", Stream.MOTION, motion=True)
    at(62, "radar-1", Stream.FALL, status="maybe_fall")
    at(70, "radar-1", Stream.FALL, status="fall")
    at(80, "radar-1", Stream.FALL, status="none")
    # Hazards: a hot living room from 21:03 (heat at 23:03), a cold bedroom from 22:05
    # (cold at 23:05), smoke twice (clear between), gas, CO and a leak.
    at(3, "th-living", Stream.TEMPERATURE, celsius=31.0)
    at(65, "th-bed", Stream.TEMPERATURE, celsius=15.0)
    at(100, "smoke-1", Stream.SMOKE, smoke=True)
    at(101, "gas-1", Stream.GAS, gas=True)
    at(102, "co-1", Stream.CARBON_MONOXIDE, carbon_monoxide=True)
    at(103, "leak-1", Stream.WATER_LEAK, water_leak=True)
    at(110, "smoke-1", Stream.SMOKE, smoke=False)
    at(120, "smoke-1", Stream.SMOKE, smoke=True)
    at(130, "smoke-1", Stream.SMOKE, smoke=False)
    at(131, "gas-1", Stream.GAS, gas=False)
    at(132, "co-1", Stream.CARBON_MONOXIDE, carbon_monoxide=False)
    at(133, "leak-1", Stream.WATER_LEAK, water_leak=False)
    at(150, "door-front", Stream.CONTACT, open=True)  # 23:30 out at night
    at(151, "door-front", Stream.CONTACT, open=False)
    at(200, "door-front", Stream.AVAILABILITY, online=False)
    for k in range(20):  # the wearable streams a minute of samples, with a fall in it
        out.append(_accel(site, t0 + 210 * 60 + k, lying=k >= 10, impact=k == 10))
    at(400, "pir-kitchen", Stream.MOTION, motion=True)
    at(401, "bed-1", Stream.BATTERY, percent=25.0)
    at(402, "door-front", Stream.TAMPER, tamper=False)
    at(405, "th-living", Stream.TEMPERATURE, celsius=25.0)
    at(406, "th-bed", Stream.TEMPERATURE, celsius=20.0)
    at(600, "pir-living", Stream.MOTION, motion=True)
    at(900, "pir-bed", Stream.MOTION, motion=True)
    # Next day: out at 13:10 and not back by night (not_returned), back at 23:00.
    at(960, "pir-living", Stream.MOTION, motion=True)
    at(970, "door-front", Stream.CONTACT, open=True)
    at(971, "door-front", Stream.CONTACT, open=False)
    at(1560, "door-front", Stream.CONTACT, open=True)
    at(1561, "pir-living", Stream.MOTION, motion=True)
    # Four ordinary days, then a very busy one (routine_deviation).
    for d in range(4):
        for k in range(12):
            at(
                1800 + d * 1440 + k * 60,
                "pir-kitchen" if k % 2 else "pir-living",
                Stream.MOTION,
                motion=True,
            )
    for k in range(120):
        at(
            1800 + 4 * 1440 + k * 6,
            "pir-kitchen" if k % 2 else "pir-living",
            Stream.MOTION,
            motion=True,
        )
    out.sort(key=lambda r: r.ts)
    assert all(math.isfinite(r.ts) for r in out)
    return out
