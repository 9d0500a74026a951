"""Daily routines: a resident's segments, day by day, varying with a seeded RNG.

A plan for day `d` runs from that day's wake-up to the next day's wake-up: morning
bathroom and breakfast, lunch, dinner, maybe a nap, an outing or visitors, quiet
hours in the living room with trips to the kitchen and the bathroom, then the night
with bathroom visits (and, for residents with dementia, restless wandering).
Every random draw is seeded by (seed, resident, day), so any day can be generated
on its own and a run is reproducible however it is chunked.

Normal routines keep inside the platform's default rules (night bathroom visits
well under 15 min, night bed exits well under 30 min, no outings at night), so
alerts come from injected incidents, not from ordinary days.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from device_sim.resident import Activity, Profile, ResidentSpec, Segment

MIN = 60.0
HOUR = 3600.0


class Calendar:
    """Day numbers relative to a first local date, in a site's time zone."""

    def __init__(self, first: date, tz: str) -> None:
        self.first = first
        self.zone = ZoneInfo(tz)
        self._cache: dict[int, float] = {}

    def midnight(self, d: int) -> float:
        ts = self._cache.get(d)
        if ts is None:
            day = self.first + timedelta(days=d)
            ts = datetime.combine(day, time(0), self.zone).timestamp()
            self._cache[d] = ts
        return ts

    def at(self, d: int, hours: float) -> float:
        """Epoch seconds of local clock `hours` (may exceed 24) on day `d`."""
        return self.midnight(d) + hours * HOUR

    def day_of(self, ts: float) -> int:
        d = math.floor((ts - self.midnight(0)) / 86400.0)
        while self.midnight(d) > ts:
            d -= 1
        while self.midnight(d + 1) <= ts:
            d += 1
        return d

    def local_hours(self, ts: float) -> float:
        d = self.day_of(ts)
        return (ts - self.midnight(d)) / HOUR


@dataclass(frozen=True, slots=True)
class Visit:
    """Someone else in the home (family, carer, staff round): seen by the PIR of `place`."""

    start: float
    end: float
    place: str
    through_door: bool  # came in through the outer door (a home visitor)


@dataclass(frozen=True, slots=True)
class Override:
    """An incident rewrites the resident's life during [start, end) with `segments`."""

    start: float
    end: float
    segments: tuple[Segment, ...]
    visits: tuple[Visit, ...] = ()


@dataclass(slots=True)
class DayPlan:
    start: float
    end: float
    segments: list[Segment]
    visits: list[Visit] = field(default_factory=list)


def _poisson(rng: random.Random, mean: float) -> int:
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


class Routine:
    """The life of one resident over the run, with incidents spliced in."""

    def __init__(self, spec: ResidentSpec, seed: int, calendar: Calendar) -> None:
        self.spec = spec
        self.seed = seed
        self.calendar = calendar
        self.overrides: list[Override] = []
        self._plans: dict[int, DayPlan] = {}

    def _rng(self, d: int, what: str) -> random.Random:
        return random.Random(f"{self.seed}|{self.spec.id}|{d}|{what}")

    def wake(self, d: int) -> float:
        h = self.spec.habits
        hours = self._rng(d, "wake").gauss(h.wake_h, h.wake_sd_h)
        # Up no earlier than 05:45: a bed left before 05:30 would be a night bed exit.
        return self.calendar.at(d, min(max(hours, 5.75), 8.5))

    def bedtime(self, d: int) -> float:
        h = self.spec.habits
        hours = self._rng(d, "bed").gauss(h.bed_h, h.bed_sd_h)
        return self.calendar.at(d, min(max(hours, 19.5), 22.4))

    def plan(self, d: int) -> DayPlan:
        plan = self._plans.get(d)
        if plan is None:
            if len(self._plans) > 8:
                for old in sorted(self._plans)[:-4]:
                    del self._plans[old]
            plan = self._build(d)
            self._plans[d] = plan
        return plan

    def add_override(self, override: Override) -> None:
        self.overrides.append(override)
        self.overrides.sort(key=lambda o: o.start)

    def timeline(self, a: float, b: float) -> tuple[list[Segment], list[Visit]]:
        """Segments and visits intersecting [a, b), incidents applied."""
        d0 = self.calendar.day_of(a) - 1
        d1 = self.calendar.day_of(b) + 1
        segments: list[Segment] = []
        visits: list[Visit] = []
        for d in range(d0, d1 + 1):
            plan = self.plan(d)
            segments.extend(plan.segments)
            visits.extend(plan.visits)
        for o in self.overrides:
            if o.end <= segments[0].start or o.start >= segments[-1].end:
                continue
            segments = _splice(segments, o)
            visits = [v for v in visits if v.end <= o.start or v.start >= o.end]
            visits.extend(o.visits)
        segments = [s for s in segments if s.end > a and s.start < b]
        visits = sorted((v for v in visits if v.end > a and v.start < b), key=lambda v: v.start)
        return segments, visits

    def at(self, ts: float) -> Segment:
        segments, _ = self.timeline(ts, ts + 1)
        return next(s for s in segments if s.start <= ts < s.end)

    # -- building a day -------------------------------------------------------

    def _build(self, d: int) -> DayPlan:
        rng = self._rng(d, "plan")
        w, w2 = self.wake(d), self.wake(d + 1)
        s = self.bedtime(d)
        if self.spec.profile is Profile.BED_BOUND:
            return self._bed_bound(d, rng, w, s, w2)
        day = _Builder(w)
        day.add("bedroom", Activity.ACTIVE, rng.uniform(1.5, 3) * MIN)
        day.add("bathroom", Activity.ACTIVE, rng.uniform(8, 15) * MIN)
        day.add("kitchen", Activity.ACTIVE, rng.uniform(20, 35) * MIN)
        evening = s - 13 * MIN
        anchors = self._anchors(d, rng, day.t + 10 * MIN, evening - 10 * MIN)
        visits: list[Visit] = []
        for start, end, kind in anchors:
            self._fill(day, rng, start)
            if kind == "meal":
                day.add("kitchen", Activity.ACTIVE, end - start)
            elif kind == "nap":
                day.add("bedroom", Activity.ACTIVE, MIN)
                day.add("bedroom", Activity.RESTING, end - start - 2 * MIN)
                day.add("bedroom", Activity.ACTIVE, MIN)
            elif kind == "outing":
                day.add("entrance", Activity.ACTIVE, 1.5 * MIN)
                day.add(None, Activity.OUT, end - start - 2.5 * MIN)
                day.add("entrance", Activity.ACTIVE, MIN)
            elif kind == "visit":
                day.add("living", Activity.SITTING, end - start)
                visits.append(Visit(start, end, "living", through_door=True))
        self._fill(day, rng, evening)
        day.add("bathroom", Activity.ACTIVE, 10 * MIN)
        day.add("bedroom", Activity.ACTIVE, s - day.t)
        self._night(day, rng, w2)
        return DayPlan(w, w2, day.segments, visits)

    def _anchors(
        self, d: int, rng: random.Random, lo: float, hi: float
    ) -> list[tuple[float, float, str]]:
        h = self.spec.habits
        cal = self.calendar
        wanted: list[tuple[float, float, str]] = []
        lunch = cal.at(d, rng.gauss(11.75, 0.25))
        wanted.append((lunch, lunch + rng.uniform(30, 45) * MIN, "meal"))
        dinner = cal.at(d, rng.gauss(17.75, 0.3))
        wanted.append((dinner, dinner + rng.uniform(30, 45) * MIN, "meal"))
        if rng.random() < h.nap_prob:
            nap = cal.at(d, rng.uniform(13.0, 13.75))
            wanted.append((nap, nap + rng.uniform(30, 90) * MIN, "nap"))
        if self.spec.can_go_out and rng.random() < h.outing_prob:
            if rng.random() < 0.6:
                out = cal.at(d, rng.uniform(8.5, 10.0))
                wanted.append((out, out + rng.uniform(60, 120) * MIN, "outing"))
            else:
                out = cal.at(d, rng.uniform(15.0, 15.75))
                wanted.append((out, out + rng.uniform(45, 90) * MIN, "outing"))
        if rng.random() < h.visitor_prob:
            visit = cal.at(d, rng.uniform(15.0, 16.5))
            wanted.append((visit, visit + rng.uniform(45, 110) * MIN, "visit"))
        kept: list[tuple[float, float, str]] = []
        for start, end, kind in sorted(wanted):
            if start < lo or end > hi:
                continue
            if kept and start < kept[-1][1] + 10 * MIN:
                continue
            kept.append((start, end, kind))
        return kept

    def _fill(self, day: _Builder, rng: random.Random, until: float) -> None:
        """Quiet hours: the living room, with trips to the kitchen and the bathroom."""
        while until - day.t > 0.5 * MIN:
            left = until - day.t
            day.add("living", Activity.ACTIVE, min(MIN, left))
            block = min(rng.uniform(35, 100) * MIN, until - day.t)
            if block > 0:
                day.add("living", Activity.SITTING, block)
            left = until - day.t
            if left > 14 * MIN:
                if rng.random() < 0.5:
                    day.add("kitchen", Activity.ACTIVE, rng.uniform(4, 10) * MIN)
                else:
                    day.add("bathroom", Activity.ACTIVE, rng.uniform(4, 9) * MIN)
        if until > day.t:
            day.add("living", Activity.ACTIVE, until - day.t)

    def _night(self, day: _Builder, rng: random.Random, w2: float) -> None:
        h = self.spec.habits
        s = day.t
        first, last = s + 45 * MIN, w2 - 40 * MIN
        trips: list[tuple[float, str]] = []
        for _ in range(_poisson(rng, h.night_toilet_rate)):
            trips.append((rng.uniform(first, last), "toilet"))
        if rng.random() < h.wander_prob:
            trips.append((rng.uniform(first, last), "wander"))
        trips.sort()
        for at, kind in trips:
            if at < day.t + 30 * MIN or at > last:
                continue
            day.add("bedroom", Activity.ASLEEP, at - day.t)
            day.add("bedroom", Activity.ACTIVE, rng.uniform(0.5, 1.5) * MIN)
            if kind == "toilet":
                day.add("bathroom", Activity.ACTIVE, rng.uniform(3, 8) * MIN)
            else:
                day.add("living", Activity.WANDERING, rng.uniform(5, 11) * MIN)
                day.add("kitchen", Activity.WANDERING, rng.uniform(2, 5) * MIN)
                day.add("bathroom", Activity.ACTIVE, rng.uniform(2, 4) * MIN)
            day.add("bedroom", Activity.ACTIVE, 0.5 * MIN)
        day.add("bedroom", Activity.ASLEEP, w2 - day.t)

    def _bed_bound(self, d: int, rng: random.Random, w: float, s: float, w2: float) -> DayPlan:
        """In bed all day; carers come for meals, turning and night checks."""
        segments = [
            Segment(w, s, "bedroom", Activity.RESTING),
            Segment(s, w2, "bedroom", Activity.ASLEEP),
        ]
        cal = self.calendar
        visits: list[Visit] = []
        for hours, minutes in ((7.5, 25), (11.5, 25), (17.5, 25)):
            start = cal.at(d, hours + rng.uniform(-0.2, 0.2))
            visits.append(Visit(start, start + minutes * MIN, "bedroom", False))
        for hours in (9.5, 14.0, 16.0, 20.0, 24.0, 27.0):
            start = cal.at(d, hours + rng.uniform(-0.25, 0.25))
            visits.append(Visit(start, start + rng.uniform(3, 8) * MIN, "bedroom", False))
        visits = [v for v in visits if w <= v.start and v.end <= w2]
        return DayPlan(w, w2, segments, visits)


class _Builder:
    def __init__(self, start: float) -> None:
        self.t = start
        self.segments: list[Segment] = []

    def add(self, place: str | None, activity: Activity, duration: float) -> None:
        if duration <= 0:
            return
        self.segments.append(Segment(self.t, self.t + duration, place, activity))
        self.t += duration


def _splice(segments: list[Segment], o: Override) -> list[Segment]:
    out: list[Segment] = []
    for s in segments:
        if s.end <= o.start or s.start >= o.end:
            out.append(s)
            continue
        if s.start < o.start:
            out.append(Segment(s.start, o.start, s.place, s.activity))
        if s.end > o.end:
            out.append(Segment(o.end, s.end, s.place, s.activity))
    out.extend(o.segments)
    out.sort(key=lambda seg: seg.start)
    return out
