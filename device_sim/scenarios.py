"""Incidents injected into residents' lives, each with the alert a correct platform raises.

A scenario rewrites a stretch of a resident's life (an `Override` of segments) and/or
adds device facts (a fall report, an SOS press, an accelerometer impact, a battery
running low, an outage), and returns the `TruthRecord`s it implies. The timings
follow the default rules in ARCHITECTURE.md, with margin on both sides: a bed exit
at night lasts well over 30 min, a long lie well over the rule's delay, and so on.

Specs on the command line: `NAME` (once, at a random eligible site and time),
`NAME:COUNT`, `NAME@2026-11-20T02:10+08:00` (at that time, at a random eligible
site), or `all` (every scenario once).
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from device_sim import accel
from device_sim.device import BATTERY_REPORT_S, SimDevice
from device_sim.resident import Activity, Profile, ResidentSpec, Segment
from device_sim.routine import MIN, Override, Visit
from device_sim.sensors import Fact
from device_sim.site import Outage, SimSite, VitalsOverride
from device_sim.truth import TruthRecord
from eldercare.domain import AlertKind, DeviceKind, SiteKind, Stream
from eldercare.errors import EldercareError

HOUR = 3600.0
# Incidents rewrite up to this much of the resident's life before their start time.
LEAD_IN_S = 3600.0


class ScenarioError(EldercareError, ValueError):
    """A scenario spec that cannot be honoured (unknown name, no eligible site...)."""


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    kind: AlertKind
    # Local clock hours (may wrap past 24) when it may start by default.
    window_h: tuple[float, float]
    # How long the incident occupies the site, for spacing incidents apart.
    span_s: float
    eligible: Callable[[SimSite, ResidentSpec], bool]
    inject: Callable[[SimSite, ResidentSpec, float, random.Random, float], list[TruthRecord]]
    night: bool = False  # the resident must be asleep in bed at the chosen time
    # The first day of the run (0 = its first local day) it may happen on: a learned
    # rule judges only after its baseline.
    first_day: int = 0


def _up_and_about(site: SimSite, r: ResidentSpec) -> bool:
    return r.profile is not Profile.BED_BOUND


def _home_resident(site: SimSite, r: ResidentSpec) -> bool:
    return site.kind is SiteKind.HOME and r.profile is not Profile.BED_BOUND


def _device_for(site: SimSite, r: ResidentSpec, kind: DeviceKind) -> SimDevice | None:
    return site.resident_device(r.id, kind)


def _room_device(site: SimSite, r: ResidentSpec, place: str, kind: DeviceKind) -> SimDevice | None:
    room = r.places.get(place)
    return None if room is None else site.room_device(room, kind)


def _record(
    name: str,
    kind: AlertKind,
    site: SimSite,
    r: ResidentSpec | None,
    device: SimDevice | None,
    start: float,
    due: float,
    end: float | None,
    **details: object,
) -> TruthRecord:
    return TruthRecord(
        scenario=name,
        kind=kind,
        site=site.id,
        resident=None if r is None else r.id,
        device=None if device is None else device.id,
        # Rounded as payloads carry times (ms), so truth and readings compare exactly.
        start=round(start, 3),
        due=round(due, 3),
        end=None if end is None else round(end, 3),
        details=details,
    )


def _segments(t: float, *parts: tuple[str | None, Activity, float]) -> tuple[Segment, ...]:
    out: list[Segment] = []
    for place, activity, duration in parts:
        out.append(Segment(t, t + duration, place, activity, scripted=True))
        t += duration
    return tuple(out)


def _override(
    r: ResidentSpec, site: SimSite, segments: tuple[Segment, ...], visits: Iterable[Visit] = ()
) -> None:
    site.routines[r.id].add_override(
        Override(segments[0].start, segments[-1].end, segments, tuple(visits))
    )


def _accel_facts(device: SimDevice, t: float, batches: list[list[list[float]]]) -> list[Fact]:
    return [
        Fact(t + i, device.id, Stream.ACCEL, {"rate_hz": accel.RATE_HZ, "samples": b})
        for i, b in enumerate(batches)
    ]


def _wearable_fall_facts(
    device: SimDevice, t0: float, lie_s: float, rng: random.Random
) -> list[Fact]:
    """Walking, the fall (impact in the batch at t0), stillness on the floor for the
    pendant's post-impact capture, and later getting up and walking again."""
    up, down = accel.gravity("upright", rng), accel.gravity("lying", rng)
    pre = [accel.walk(rng, up) for _ in range(4)]
    capture = [accel.still(down, rng) for _ in range(int(min(lie_s - 5, 120)))]
    facts = _accel_facts(device, t0 - 4, [*pre, accel.fall(rng, up, down), *capture])
    risen = accel.gravity("upright", rng)
    getting_up = [accel.change_posture(down, risen, rng)]
    getting_up += [accel.walk(rng, risen) for _ in range(14)]
    facts += _accel_facts(device, t0 + lie_s, getting_up)
    return facts


# -- the scenarios -------------------------------------------------------------------


def _fall_long_lie(
    site: SimSite, r: ResidentSpec, t0: float, rng: random.Random, origin: float
) -> list[TruthRecord]:
    radar = _room_device(site, r, "bathroom", DeviceKind.FALL_RADAR)
    assert radar is not None
    lie = rng.uniform(60, 90) * MIN
    segs = _segments(
        t0 - 6 * MIN,
        ("bathroom", Activity.ACTIVE, 6 * MIN),
        ("bathroom", Activity.FALLEN, lie),
        ("bathroom", Activity.ACTIVE, 3 * MIN),  # helped up
        ("living", Activity.SITTING, 20 * MIN),
    )
    helper = Visit(t0 + lie - 2 * MIN, t0 + lie + 25 * MIN, "bathroom", site.kind is SiteKind.HOME)
    _override(r, site, segs, [helper])
    site.extra_facts += [
        Fact(t0 + 1.5, radar.id, Stream.FALL, {"status": "fall"}),
        Fact(t0 + lie + 20, radar.id, Stream.FALL, {"status": "none"}),
    ]
    out = [_record("fall_long_lie", AlertKind.FALL, site, r, radar, t0, t0 + 1.5, t0 + lie,
                   lie_minutes=round(lie / MIN, 1), room=r.places["bathroom"])]  # fmt: skip
    # On the bathroom floor for over an hour: the bathroom rule is right to fire too
    # (by day: 45 min after walking in).
    entered = t0 - 6 * MIN
    out.append(_record("fall_long_lie", AlertKind.BATHROOM_TOO_LONG, site, r, radar, entered,
                       entered + 45 * MIN, t0 + lie, room=r.places["bathroom"]))  # fmt: skip
    wearable = _device_for(site, r, DeviceKind.WEARABLE)
    if wearable is not None:
        site.extra_facts += _wearable_fall_facts(wearable, t0, lie, rng)
        out.append(_record("fall_long_lie", AlertKind.WEARABLE_FALL, site, r, wearable,
                           t0, t0 + 10, t0 + lie))  # fmt: skip
    return out


def _wearable_fall(
    site: SimSite, r: ResidentSpec, t0: float, rng: random.Random, origin: float
) -> list[TruthRecord]:
    wearable = _device_for(site, r, DeviceKind.WEARABLE)
    assert wearable is not None
    lie = rng.uniform(15, 30) * MIN
    segs = _segments(
        t0 - 5 * MIN,
        ("living", Activity.ACTIVE, 5 * MIN),
        ("living", Activity.FALLEN, lie),
        ("living", Activity.ACTIVE, 3 * MIN),
        ("living", Activity.SITTING, 20 * MIN),
    )
    _override(r, site, segs)
    site.extra_facts += _wearable_fall_facts(wearable, t0, lie, rng)
    # The impact peak is ~0.65 s into the batch at t0; the rule judges ~5 s later.
    return [_record("wearable_fall", AlertKind.WEARABLE_FALL, site, r, wearable, t0, t0 + 10,
                    t0 + lie, lie_minutes=round(lie / MIN, 1))]  # fmt: skip


def _night_wandering_exit(
    site: SimSite, r: ResidentSpec, t0: float, rng: random.Random, origin: float
) -> list[TruthRecord]:
    door = site.outer_door
    assert door is not None
    out_s = rng.uniform(16, 19) * MIN
    segs = _segments(
        t0 - 20 * MIN,
        ("bedroom", Activity.ASLEEP, 20 * MIN),
        ("bedroom", Activity.ACTIVE, 1 * MIN),
        ("living", Activity.WANDERING, 3 * MIN),
        ("entrance", Activity.ACTIVE, 1 * MIN),
        (None, Activity.OUT, out_s),
        ("entrance", Activity.ACTIVE, 1 * MIN),
        ("living", Activity.WANDERING, 2 * MIN),
        ("bedroom", Activity.ACTIVE, 1 * MIN),
        ("bedroom", Activity.ASLEEP, 20 * MIN),
    )
    _override(r, site, segs)
    left = t0 + 5 * MIN
    opened = left - 6.0  # the door opens just before the resident is out (sensors._transition)
    due = opened + 10 * MIN
    return [_record("night_wandering_exit", AlertKind.NIGHT_DOOR_EXIT, site, r, door, opened,
                    due, left + out_s, out_minutes=round(out_s / MIN, 1))]  # fmt: skip


def _bed_exit_no_return(
    site: SimSite, r: ResidentSpec, t0: float, rng: random.Random, origin: float
) -> list[TruthRecord]:
    bed = _device_for(site, r, DeviceKind.BED)
    away = rng.uniform(50, 70) * MIN
    segs = _segments(
        t0 - 20 * MIN,
        ("bedroom", Activity.ASLEEP, 20 * MIN),
        ("bedroom", Activity.ACTIVE, 1 * MIN),
        ("living", Activity.ACTIVE, 2 * MIN),
        ("living", Activity.SITTING, away - 4 * MIN),
        ("bedroom", Activity.ACTIVE, 1 * MIN),
        ("bedroom", Activity.ASLEEP, 20 * MIN),
    )
    _override(r, site, segs)
    return [_record("bed_exit_no_return", AlertKind.BED_EXIT_NO_RETURN, site, r, bed, t0,
                    t0 + 30 * MIN, t0 + away, away_minutes=round(away / MIN, 1))]  # fmt: skip


def _bathroom_too_long(
    site: SimSite, r: ResidentSpec, t0: float, rng: random.Random, origin: float
) -> list[TruthRecord]:
    # Out of bed for the stay + 2 min: under bed_exit_no_return's 30 min, so the
    # incident is one alert, not two (a longer stay would rightly raise both).
    stay = rng.uniform(20, 26) * MIN
    segs = _segments(
        t0 - 21 * MIN,
        ("bedroom", Activity.ASLEEP, 20 * MIN),
        ("bedroom", Activity.ACTIVE, 1 * MIN),
        ("bathroom", Activity.ACTIVE, stay),
        ("bedroom", Activity.ACTIVE, 1 * MIN),
        ("bedroom", Activity.ASLEEP, 20 * MIN),
    )
    _override(r, site, segs)
    device = _room_device(site, r, "bathroom", DeviceKind.FALL_RADAR) or _room_device(
        site, r, "bathroom", DeviceKind.MOTION
    )
    return [_record("bathroom_too_long", AlertKind.BATHROOM_TOO_LONG, site, r, device, t0,
                    t0 + 15 * MIN, t0 + stay, stay_minutes=round(stay / MIN, 1),
                    room=r.places["bathroom"])]  # fmt: skip


def _no_activity(
    site: SimSite, r: ResidentSpec, t0: float, rng: random.Random, origin: float
) -> list[TruthRecord]:
    still = rng.uniform(4.5, 5.0) * HOUR
    segs = _segments(
        t0 - 5 * MIN,
        ("living", Activity.ACTIVE, 5 * MIN),
        ("living", Activity.STILL, still),
        ("living", Activity.ACTIVE, 10 * MIN),
    )
    # A neighbour checks in and finds them.
    visitor = Visit(t0 + still - MIN, t0 + still + 30 * MIN, "living", through_door=True)
    _override(r, site, segs, [visitor])
    pir = _room_device(site, r, "living", DeviceKind.MOTION)
    return [_record("no_activity", AlertKind.INACTIVITY, site, r, pir, t0, t0 + 3 * HOUR,
                    t0 + still, still_hours=round(still / HOUR, 2),
                    rule="3 h before learning")]  # fmt: skip


def _not_up(
    site: SimSite, r: ResidentSpec, t0: float, rng: random.Random, origin: float
) -> list[TruthRecord]:
    routine = site.routines[r.id]
    cal = routine.calendar
    d = cal.day_of(t0)
    wake = routine.wake(d)
    deadline = cal.at(d, 10.0)
    until = cal.at(d, rng.uniform(11.25, 11.75))
    segs = _segments(
        wake - 30 * MIN,
        ("bedroom", Activity.STILL_IN_BED, until - wake + 30 * MIN),
        ("bedroom", Activity.ACTIVE, 3 * MIN),
    )
    _override(r, site, segs)
    bed = _device_for(site, r, DeviceKind.BED)
    return [_record("not_up", AlertKind.NOT_UP, site, r, bed, wake, deadline, until,
                    rule="10:00 before learning; learned wake + 2 h")]  # fmt: skip


def _offline_device(site: SimSite, r: ResidentSpec) -> SimDevice:
    return _device_for(site, r, DeviceKind.SOS_BUTTON) or next(
        d for d in site.devices if d.kind is DeviceKind.DOOR
    )


def _device_offline(
    site: SimSite, r: ResidentSpec, t0: float, rng: random.Random, origin: float
) -> list[TruthRecord]:
    device = _offline_device(site, r)
    silent = 3.5 * device.report_interval_s
    site.outages.append(Outage(t0, t0 + silent, device.id))
    last = _last_message_before(site, device, t0, origin)
    return [_record("device_offline", AlertKind.DEVICE_OFFLINE, site, None, device, last,
                    last + 2 * device.report_interval_s, t0 + silent,
                    report_interval_s=device.report_interval_s)]  # fmt: skip


def _last_message_before(site: SimSite, device: SimDevice, t0: float, origin: float) -> float:
    """The device's last message before t0: a heartbeat, a battery/link report or an event."""
    last = device.last_heartbeat_before(t0, origin)
    k = math.floor((t0 - 8.0 - origin - device.phase) / BATTERY_REPORT_S)
    report = origin + device.phase + k * BATTERY_REPORT_S + (8.0 if not device.z2m else 7.0)
    events = [f.ts for f in site.extra_facts if isinstance(f, Fact) and f.device_id == device.id]
    return max([last, report, *(t for t in events if t < t0)])


def _site_offline(
    site: SimSite, r: ResidentSpec, t0: float, rng: random.Random, origin: float
) -> list[TruthRecord]:
    intervals = sorted(d.report_interval_s for d in site.devices)
    # Silent long enough for every device to be overdue; site_offline is due once two are
    # (by 2 x the second-shortest interval, as a device reports within its interval).
    silent = 2 * intervals[-1] + 1.5 * HOUR
    second = intervals[1] if len(intervals) > 1 else intervals[0]
    site.outages.append(Outage(t0, t0 + silent, None, cut_connection=True))
    return [_record("site_offline", AlertKind.SITE_OFFLINE, site, None, site.gateway, t0,
                    t0 + 2 * second, t0 + silent,
                    rule="two devices silent past 2x their report interval")]  # fmt: skip


def _low_battery(
    site: SimSite, r: ResidentSpec, t0: float, rng: random.Random, origin: float
) -> list[TruthRecord]:
    candidates = [d for d in site.devices if d.has_battery and d.battery_low_from is None
                  and d.kind is not DeviceKind.WEARABLE]  # fmt: skip
    device = rng.choice(candidates)
    device.battery_low_from = t0
    device.battery_low_level = round(rng.uniform(10, 14), 1)
    device.battery_replaced_at = t0 + rng.uniform(6, 10) * HOUR
    return [_record("low_battery", AlertKind.LOW_BATTERY, site, None, device, t0, t0,
                    device.battery_replaced_at, percent=device.battery_low_level)]  # fmt: skip


def _sos(
    site: SimSite, r: ResidentSpec, t0: float, rng: random.Random, origin: float
) -> list[TruthRecord]:
    button = _device_for(site, r, DeviceKind.SOS_BUTTON)
    assert button is not None
    site.extra_facts.append(Fact(t0, button.id, Stream.SOS, {"pressed": True}))
    return [_record("sos", AlertKind.SOS, site, r, button, t0, t0, None)]


def _abnormal_vitals(
    site: SimSite, r: ResidentSpec, t0: float, rng: random.Random, origin: float
) -> list[TruthRecord]:
    vitals = _device_for(site, r, DeviceKind.VITALS)
    assert vitals is not None
    length = rng.uniform(18, 25) * MIN
    segs = _segments(
        t0 - 30 * MIN,
        ("bedroom", Activity.ASLEEP, 30 * MIN + length + 15 * MIN),
    )
    _override(r, site, segs)
    if rng.random() < 0.7:
        hr, br, what = rng.uniform(128, 140), rng.uniform(24, 28), "tachycardia"
    else:
        hr, br, what = rng.uniform(30, 34), rng.uniform(6, 7), "bradycardia"
    site.vitals_overrides.append(VitalsOverride(vitals.id, t0, t0 + length, hr, br))
    return [_record("abnormal_vitals", AlertKind.VITALS, site, r, vitals, t0, t0 + 5 * MIN,
                    t0 + length, heart_rate=round(hr), condition=what)]  # fmt: skip


def _tamper_device(site: SimSite) -> SimDevice | None:
    doors = [d for d in site.devices if d.kind is DeviceKind.DOOR]
    return next((d for d in doors if d.outer_door), doors[0] if doors else None)


def _tamper(
    site: SimSite, r: ResidentSpec, t0: float, rng: random.Random, origin: float
) -> list[TruthRecord]:
    """The cover of a door contact is prised off (its tamper switch opens); a technician
    refits it 1-3 h later."""
    door = _tamper_device(site)
    assert door is not None
    refit = t0 + rng.uniform(1, 3) * HOUR
    site.extra_facts += [
        Fact(t0, door.id, Stream.TAMPER, {"tamper": True}),
        Fact(refit, door.id, Stream.TAMPER, {"tamper": False}),
    ]
    return [_record("tamper", AlertKind.TAMPER, site, None, door, t0, t0, refit)]


# -- hazards in the home ------------------------------------------------------------


def _hazard_device(site: SimSite, kind: DeviceKind) -> SimDevice | None:
    found = site.devices_of(kind)
    return found[0] if found else None


def _alarm(
    name: str,
    kind: AlertKind,
    stream: Stream,
    device_kind: DeviceKind,
    lasts_s: tuple[float, float],
) -> Callable[[SimSite, ResidentSpec, float, random.Random, float], list[TruthRecord]]:
    """A detector sounds at t0 (raised at once) and reports clear when it stops."""

    def inject(
        site: SimSite, r: ResidentSpec, t0: float, rng: random.Random, origin: float
    ) -> list[TruthRecord]:
        device = _hazard_device(site, device_kind)
        assert device is not None
        clear = t0 + rng.uniform(*lasts_s)
        site.extra_facts += [
            Fact(t0, device.id, stream, {stream.value: True}),
            Fact(clear, device.id, stream, {stream.value: False}),
        ]
        return [_record(name, kind, site, r, device, t0, t0, clear)]

    return inject


def _at_home_through(site: SimSite, r: ResidentSpec, start: float, end: float) -> None:
    """The resident stays in through a hot afternoon: sitting, the kitchen, the bathroom."""
    parts: list[tuple[str | None, Activity, float]] = []
    t = start
    while t < end:
        parts += [
            ("living", Activity.SITTING, 35 * MIN),
            ("kitchen", Activity.ACTIVE, 10 * MIN),
            ("bathroom", Activity.ACTIVE, 5 * MIN),
            ("living", Activity.ACTIVE, 10 * MIN),
        ]
        t += 60 * MIN
    _override(r, site, _segments(start, *parts))


def _temperatures(
    device: SimDevice, points: list[tuple[float, float]], step_s: float = 300.0
) -> list[Fact]:
    """Readings every `step_s` along a piecewise-linear (time, °C) course."""
    out: list[Fact] = []
    for (t_a, c_a), (t_b, c_b) in itertools.pairwise(points):
        t = t_a
        while t < t_b:
            c = c_a + (c_b - c_a) * (t - t_a) / (t_b - t_a)
            out.append(Fact(t, device.id, Stream.TEMPERATURE, {"celsius": round(c, 1)}))
            t += step_s
    return out


def _summer_heat(
    site: SimSite, r: ResidentSpec, t0: float, rng: random.Random, origin: float
) -> list[TruthRecord]:
    """A 34 °C summer afternoon in a flat without air conditioning: the living room
    passes 30 °C at t0, climbs to 34 °C over 2.5 h (too slowly to count as rising
    fast), holds, and cools below 29 °C in the evening. She stays in."""
    climate = _hazard_device(site, DeviceKind.CLIMATE)
    assert climate is not None
    top = rng.uniform(33.5, 34.5)
    points = [
        (t0 - HOUR, 28.2),
        (t0 - 1.0, 29.9),
        (t0, 30.0),
        (t0 + 2.5 * HOUR, top),
        (t0 + 4 * HOUR, top),
        (t0 + 5 * HOUR, 28.0),
        (t0 + 5 * HOUR + 1.0, 28.0),
    ]
    facts = _temperatures(climate, points)
    cleared = next(f.ts for f in facts if f.ts > t0 and float(f.fields["celsius"]) < 29.0)
    site.extra_facts += facts
    site.scripted_climate.append((t0 - HOUR, t0 + 5 * HOUR + 1.0))
    _at_home_through(site, r, t0 - HOUR, t0 + 5 * HOUR)
    return [_record("summer_heat", AlertKind.HEAT, site, r, climate, t0, t0 + 2 * HOUR,
                    cleared, celsius=round(top, 1))]  # fmt: skip


def _winter_cold_night(
    site: SimSite, r: ResidentSpec, t0: float, rng: random.Random, origin: float
) -> list[TruthRecord]:
    """A 12 °C winter night (the heating fails): the living room reaches 16 °C at t0,
    late in the evening with her asleep, falls to 12 °C and warms again after 06:30."""
    climate = _hazard_device(site, DeviceKind.CLIMATE)
    assert climate is not None
    cal = site.routines[r.id].calendar
    morning = cal.at(cal.day_of(t0 + 6 * HOUR), 6.5)
    points = [
        (t0 - HOUR, 18.0),
        (t0 - 1.0, 16.1),
        (t0, 16.0),
        (t0 + 2 * HOUR, 12.0),
        (morning, 12.0),
        (morning + HOUR, 18.5),
        (morning + HOUR + 1.0, 18.5),
    ]
    facts = _temperatures(climate, points)
    cleared = next(f.ts for f in facts if f.ts > t0 and float(f.fields["celsius"]) > 17.0)
    site.extra_facts += facts
    site.scripted_climate.append((t0 - HOUR, morning + HOUR + 1.0))
    return [_record("winter_cold_night", AlertKind.COLD, site, r, climate, t0, t0 + HOUR,
                    cleared, celsius=12.0)]  # fmt: skip


def _has_hazard(kind: DeviceKind) -> Callable[[SimSite, ResidentSpec], bool]:
    return lambda s, r: s.kind is SiteKind.HOME and _hazard_device(s, kind) is not None


# routine_deviation judges a day against `baseline_days` (14) earlier scored days.
ROUTINE_BASELINE_DAYS = 14


def _routine_deviation(
    site: SimSite, r: ResidentSpec, t0: float, rng: random.Random, origin: float
) -> list[TruthRecord]:
    """A day unwell at home: up at the usual time, then mostly dozing in bed, getting up
    every 2.5-3 h for the bathroom or a drink in the kitchen, in bed early. Far less
    movement than the resident's usual day; never long still out of bed."""
    routine = site.routines[r.id]
    cal = routine.calendar
    d = cal.day_of(t0)
    night = routine.bedtime(d)
    parts: list[tuple[str | None, Activity, float]] = [
        ("bedroom", Activity.ACTIVE, 2 * MIN),
        ("bathroom", Activity.ACTIVE, 8 * MIN),
        ("kitchen", Activity.ACTIVE, 10 * MIN),
    ]
    t = t0 + 20 * MIN
    trip = 0
    while t < night - 3 * HOUR:
        doze = rng.uniform(140, 170) * MIN
        place = "bathroom" if trip % 2 == 0 else "kitchen"
        parts += [
            ("bedroom", Activity.ACTIVE, MIN),
            ("bedroom", Activity.RESTING, 10 * MIN),
            ("bedroom", Activity.ASLEEP, doze),
            ("bedroom", Activity.RESTING, 10 * MIN),
            ("bedroom", Activity.ACTIVE, MIN),
            (place, Activity.ACTIVE, 4 * MIN),
        ]
        t += doze + 26 * MIN
        trip += 1
    end = cal.at(d + 1, 0.0)
    parts.append(("bedroom", Activity.ACTIVE, MIN))
    parts.append(("bedroom", Activity.ASLEEP, end + HOUR - t - MIN))
    _override(r, site, _segments(t0, *parts))
    bed = _device_for(site, r, DeviceKind.BED)
    # Judged when the local day ends.
    return [_record("routine_deviation", AlertKind.ROUTINE_DEVIATION, site, r, bed, t0, end,
                    end, rule=f"after {ROUTINE_BASELINE_DAYS} days of baseline")]  # fmt: skip


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in [
        Scenario("fall_long_lie", AlertKind.FALL, (8.5, 20.0), 3 * HOUR,
                 lambda s, r: _up_and_about(s, r)
                 and _room_device(s, r, "bathroom", DeviceKind.FALL_RADAR) is not None,
                 _fall_long_lie),
        Scenario("wearable_fall", AlertKind.WEARABLE_FALL, (9.0, 19.0), 2 * HOUR,
                 lambda s, r: _up_and_about(s, r)
                 and _device_for(s, r, DeviceKind.WEARABLE) is not None,
                 _wearable_fall),
        Scenario("night_wandering_exit", AlertKind.NIGHT_DOOR_EXIT, (25.0, 28.0), 2 * HOUR,
                 lambda s, r: _home_resident(s, r) and s.outer_door is not None,
                 _night_wandering_exit, night=True),
        Scenario("bed_exit_no_return", AlertKind.BED_EXIT_NO_RETURN, (24.5, 27.5), 3 * HOUR,
                 lambda s, r: _up_and_about(s, r)
                 and _device_for(s, r, DeviceKind.BED) is not None,
                 _bed_exit_no_return, night=True),
        Scenario("bathroom_too_long", AlertKind.BATHROOM_TOO_LONG, (24.5, 28.0), 2 * HOUR,
                 lambda s, r: _up_and_about(s, r)
                 and _room_device(s, r, "bathroom", DeviceKind.MOTION) is not None,
                 _bathroom_too_long, night=True),
        Scenario("no_activity", AlertKind.INACTIVITY, (9.5, 12.5), 7 * HOUR,
                 _home_resident, _no_activity),
        Scenario("not_up", AlertKind.NOT_UP, (5.0, 5.0), 8 * HOUR,
                 _home_resident, _not_up),
        Scenario("device_offline", AlertKind.DEVICE_OFFLINE, (0.0, 24.0), 6 * HOUR,
                 lambda s, r: True, _device_offline),
        Scenario("site_offline", AlertKind.SITE_OFFLINE, (0.0, 24.0), 6 * HOUR,
                 lambda s, r: s.kind is SiteKind.HOME, _site_offline),
        Scenario("low_battery", AlertKind.LOW_BATTERY, (8.0, 20.0), 1 * HOUR,
                 lambda s, r: True, _low_battery),
        Scenario("sos", AlertKind.SOS, (8.0, 21.0), 1 * HOUR,
                 lambda s, r: _device_for(s, r, DeviceKind.SOS_BUTTON) is not None, _sos),
        Scenario("abnormal_vitals", AlertKind.VITALS, (24.5, 28.5), 2 * HOUR,
                 lambda s, r: _device_for(s, r, DeviceKind.VITALS) is not None,
                 _abnormal_vitals, night=True),
        Scenario("tamper", AlertKind.TAMPER, (8.0, 20.0), 4 * HOUR,
                 lambda s, r: _tamper_device(s) is not None, _tamper),
        Scenario("kitchen_fire_smoke", AlertKind.SMOKE, (11.0, 19.0), 1 * HOUR,
                 _has_hazard(DeviceKind.SMOKE_ALARM),
                 _alarm("kitchen_fire_smoke", AlertKind.SMOKE, Stream.SMOKE,
                        DeviceKind.SMOKE_ALARM, (8 * MIN, 20 * MIN))),
        Scenario("gas_leak", AlertKind.GAS, (10.0, 20.0), 1 * HOUR,
                 _has_hazard(DeviceKind.GAS_ALARM),
                 _alarm("gas_leak", AlertKind.GAS, Stream.GAS, DeviceKind.GAS_ALARM,
                        (10 * MIN, 30 * MIN))),
        Scenario("burst_pipe", AlertKind.WATER_LEAK, (0.0, 24.0), 4 * HOUR,
                 _has_hazard(DeviceKind.WATER_LEAK),
                 _alarm("burst_pipe", AlertKind.WATER_LEAK, Stream.WATER_LEAK,
                        DeviceKind.WATER_LEAK, (1 * HOUR, 3 * HOUR))),
        Scenario("summer_heat", AlertKind.HEAT, (13.0, 14.0), 7 * HOUR,
                 lambda s, r: _has_hazard(DeviceKind.CLIMATE)(s, r) and _up_and_about(s, r),
                 _summer_heat),
        Scenario("winter_cold_night", AlertKind.COLD, (23.0, 25.0), 10 * HOUR,
                 _has_hazard(DeviceKind.CLIMATE), _winter_cold_night, night=True),
        Scenario("routine_deviation", AlertKind.ROUTINE_DEVIATION, (5.0, 5.0), 26 * HOUR,
                 lambda s, r: _home_resident(s, r)
                 and _device_for(s, r, DeviceKind.BED) is not None,
                 _routine_deviation, first_day=ROUTINE_BASELINE_DAYS + 1),
    ]
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ScenarioRequest:
    name: str
    at: float | None = None  # event time; None = random
    # Skipped quietly when the run has no room for it (`all` in a run too short for a
    # learned rule's baseline), instead of an error.
    optional: bool = False


def parse_specs(text: str) -> list[ScenarioRequest]:
    out: list[ScenarioRequest] = []
    for raw in (p.strip() for p in text.split(",")):
        if not raw:
            continue
        if raw == "all":
            out += [ScenarioRequest(n, optional=s.first_day > 0) for n, s in SCENARIOS.items()]
            continue
        name, count, at = raw, 1, None
        if "@" in raw:
            name, _, when = raw.partition("@")
            try:
                moment = datetime.fromisoformat(when)
            except ValueError as exc:
                raise ScenarioError(f"{raw!r}: bad time {when!r} (ISO 8601 expected)") from exc
            if moment.tzinfo is None:
                raise ScenarioError(f"{raw!r}: give the time with its UTC offset, e.g. +08:00")
            at = moment.timestamp()
        elif ":" in raw:
            name, _, n = raw.partition(":")
            if not n.isdigit() or int(n) < 1:
                raise ScenarioError(f"{raw!r}: count must be a positive integer")
            count = int(n)
        if name not in SCENARIOS:
            known = ", ".join(SCENARIOS)
            raise ScenarioError(f"unknown scenario {name!r}; known: {known}, all")
        out += [ScenarioRequest(name, at) for _ in range(count)]
    return out


class Injector:
    """Places requested incidents at eligible sites and times, spaced apart per site."""

    def __init__(
        self, sites: list[SimSite], seed: int, start: float, end: float, lead_s: float = 2 * HOUR
    ) -> None:
        self.sites = sites
        self.lead_s = lead_s
        self.rng = random.Random(f"{seed}|scenarios")
        self.start = start
        self.end = end
        self.busy: dict[str, list[tuple[float, float]]] = {}
        self.records: list[TruthRecord] = []

    def inject(self, request: ScenarioRequest, required: bool = True) -> list[TruthRecord]:
        """Inject one incident; if `required` is False, quietly skip one that does not fit."""
        scenario = SCENARIOS[request.name]
        eligible: dict[str, list[ResidentSpec]] = {}
        for s in self.sites:
            residents = [r for r in s.residents if scenario.eligible(s, r)]
            if residents:
                eligible[s.id] = residents
        if not eligible:
            if not required:
                return []
            raise ScenarioError(
                f"no site is eligible for {scenario.name!r} (e.g. wearable_fall needs a "
                "wearable, abnormal_vitals a vitals monitor, site_offline a home)"
            )
        # A site first, then one of its residents: a care home does not take every incident.
        sites = [s for s in self.sites if s.id in eligible]
        for _ in range(1000):
            site = self.rng.choice(sites)
            resident = self.rng.choice(eligible[site.id])
            t0 = request.at
            if t0 is None:
                t0 = self._random_time(site, resident, scenario)
            if not self._fits(site, resident, scenario, t0, request.at is None):
                continue
            rng = random.Random(f"{self.rng.random()}")
            records = scenario.inject(site, resident, t0, rng, self.start)
            self.busy.setdefault(site.id, []).append((t0 - LEAD_IN_S, t0 + scenario.span_s))
            self.records += records
            return records
        if not required:
            return []
        lo, hi = scenario.window_h
        when = "at any time" if hi - lo >= 24 else f"between {_hhmm(lo)} and {_hhmm(hi)} local"
        raise ScenarioError(
            f"found no free time and site for {scenario.name!r} in the run: it starts {when}, "
            f"at least {self.lead_s / HOUR:g} h into the run and {scenario.span_s / HOUR:g} h "
            "before its end, apart from other incidents at the site (make the run longer, "
            "or give a time with NAME@ISO)"
        )

    def _random_time(self, site: SimSite, r: ResidentSpec, sc: Scenario) -> float:
        routine = site.routines[r.id]
        cal = routine.calendar
        first = max(cal.day_of(self.start + self.lead_s) - 1, cal.day_of(self.start) + sc.first_day)
        last = cal.day_of(self.end - sc.span_s)
        d = self.rng.randint(first, max(first, last))
        if sc.name in ("not_up", "routine_deviation"):
            return routine.wake(d)
        lo, hi = sc.window_h
        return cal.at(d, self.rng.uniform(lo, hi))

    def _fits(self, site: SimSite, r: ResidentSpec, sc: Scenario, t0: float, strict: bool) -> bool:
        # A random time keeps clear of the run's start; a requested one only has to fit.
        earliest = self.start + (self.lead_s if strict else 0.0)
        if not (earliest <= t0 and t0 + sc.span_s <= self.end):
            return False
        cal = site.routines[r.id].calendar
        if cal.day_of(t0) < cal.day_of(self.start) + sc.first_day:
            return False
        for a, b in self.busy.get(site.id, []):
            if a < t0 + sc.span_s and t0 - LEAD_IN_S < b:
                return False
        if not strict:
            return True
        seg = site.routines[r.id].at(t0)
        if sc.night:
            return seg.activity is Activity.ASLEEP
        if sc.kind in (
            AlertKind.FALL,
            AlertKind.WEARABLE_FALL,
            AlertKind.INACTIVITY,
            AlertKind.SOS,
        ):
            return seg.place is not None and not seg.in_bed
        return True


def _hhmm(hours: float) -> str:
    minutes = round(hours * 60) % (24 * 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
