"""Learned per-resident baselines: usual inactivity gaps, wake time, daily activity level.

Each baseline is plain data (part of its rule's snapshot), bounded in size, with
an explicit warm-up (`ready`), and is fed only by periods that raised no alert:
the rules decide what to feed, the baseline only keeps and summarises it.
Scoring ("how long is usual") lives here; deciding to alert lives in the rules.
"""

from __future__ import annotations

import math
import statistics
from datetime import date
from sys import intern

from pydantic import Field

from detectors.rule import RuleState

KEEP_DAYS = 28  # how much history a baseline holds

# Keys are interned: a rule hands in a new day string each time (`SiteContext.local_day`),
# and a full gap baseline keys 24 hours × 28 days by it (78 KB with a string per entry, 40
# with shared ones); a worker holds several per home.


class GapBaseline(RuleState):
    """Longest movement gap per local hour of day (of the gap's start), per day."""

    gaps: dict[str, dict[str, float]] = Field(default_factory=dict)  # hour → day → longest gap s
    days: list[str] = Field(default_factory=list)  # local days with learned data, sorted

    def learn(self, day: str, hour: int, gap_s: float) -> None:
        day = intern(day)
        per_day = self.gaps.setdefault(intern(str(hour)), {})
        per_day[day] = max(per_day.get(day, 0.0), gap_s)
        if day not in self.days:
            self.days.append(day)
            self.days.sort()
        if len(self.days) > KEEP_DAYS:
            self.days = self.days[-KEEP_DAYS:]
            oldest = self.days[0]
            for hour_gaps in self.gaps.values():
                for old in [d for d in hour_gaps if d < oldest]:
                    del hour_gaps[old]

    def ready(self, learn_days: int) -> bool:
        return len(self.days) >= learn_days

    def usual_gap_s(self, hour: int, min_samples: int = 1) -> float | None:
        """Longest gap seen starting in this hour or its neighbours (a gap that started at
        09:58 is as usual at 10:05); None with fewer than `min_samples` day-hours of data
        (an hour the resident is rarely home in teaches nothing)."""
        values = [
            g
            for h in ((hour - 1) % 24, hour, (hour + 1) % 24)
            for g in self.gaps.get(str(h), {}).values()
        ]
        return max(values) if len(values) >= max(1, min_samples) else None


class WakeBaseline(RuleState):
    """Local minute of day of getting up, per day."""

    wake_minutes: dict[str, float] = Field(default_factory=dict)  # day → minute of day

    def learn(self, day: str, minute: float) -> None:
        self.wake_minutes.setdefault(intern(day), minute)
        if len(self.wake_minutes) > KEEP_DAYS:
            for old in sorted(self.wake_minutes)[: len(self.wake_minutes) - KEEP_DAYS]:
                del self.wake_minutes[old]

    def ready(self, learn_days: int) -> bool:
        return len(self.wake_minutes) >= learn_days

    def usual_wake_minute(self) -> float | None:
        """The upper quartile: a late-but-normal morning (a weekend) must not alarm."""
        values = sorted(self.wake_minutes.values())
        if not values:
            return None
        return values[min(len(values) - 1, math.ceil(0.75 * len(values)) - 1)]


class ActivityBaseline(RuleState):
    """Movements per hour at home, per day."""

    rates: dict[str, float] = Field(default_factory=dict)  # day → movements per home hour

    def learn(self, day: str, rate: float) -> None:
        self.rates[intern(day)] = rate
        if len(self.rates) > KEEP_DAYS:
            for old in sorted(self.rates)[: len(self.rates) - KEEP_DAYS]:
                del self.rates[old]

    def ready(self, baseline_days: int) -> bool:
        return len(self.rates) >= baseline_days

    def score(self, rate: float) -> tuple[float, float]:
        """(z score, ratio to the mean) of a day's rate against the baseline."""
        values = list(self.rates.values())
        mean = statistics.fmean(values)
        sd = statistics.pstdev(values)
        # A floor on the spread: a very regular resident must not alarm on tiny changes.
        sd = max(sd, 0.1 * mean, 1e-9)
        return (rate - mean) / sd, (rate / mean if mean > 0 else math.inf)


class ReturnBaseline(RuleState):
    """The latest time of coming home per evening, as minutes after the evening's local
    midnight (01:00 the next morning is 1500), so late returns order correctly."""

    latest: dict[str, float] = Field(default_factory=dict)  # evening day → minute
    first_day: str | None = None  # first local day observed (for the warm-up)

    def observe_day(self, day: str) -> None:
        if self.first_day is None or day < self.first_day:
            self.first_day = day

    def learn(self, day: str, minute: float) -> None:
        day = intern(day)
        self.latest[day] = max(self.latest.get(day, minute), minute)
        if len(self.latest) > KEEP_DAYS:
            for old in sorted(self.latest)[: len(self.latest) - KEEP_DAYS]:
                del self.latest[old]

    def ready(self, today: str, learn_days: int) -> bool:
        if self.first_day is None:
            return False
        return (date.fromisoformat(today) - date.fromisoformat(self.first_day)).days >= learn_days

    def usual_latest_minute(self, min_samples: int) -> float | None:
        """The upper quartile of the evenings' latest returns: a return later than most of
        the resident's evenings out is unusual; None with fewer than `min_samples`."""
        values = sorted(self.latest.values())
        if len(values) < max(1, min_samples):
            return None
        return values[min(len(values) - 1, math.ceil(0.75 * len(values)) - 1)]


class DurationBaseline(RuleState):
    """The longest absence from home per local day (of its start), in hours."""

    longest: dict[str, float] = Field(default_factory=dict)  # day → hours

    def learn(self, day: str, hours: float) -> None:
        day = intern(day)
        self.longest[day] = max(self.longest.get(day, hours), hours)
        if len(self.longest) > KEEP_DAYS:
            for old in sorted(self.longest)[: len(self.longest) - KEEP_DAYS]:
                del self.longest[old]

    def usual_long_hours(self, min_samples: int) -> float | None:
        """The upper quartile of the days' longest absences: the resident's usual long
        outing (a working day, a day at the daughter's); None with fewer than `min_samples`."""
        values = sorted(self.longest.values())
        if len(values) < max(1, min_samples):
            return None
        return values[min(len(values) - 1, math.ceil(0.75 * len(values)) - 1)]
