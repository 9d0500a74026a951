"""Learned per-resident baselines: usual inactivity gaps, wake time, daily activity level.

Each baseline is plain data (part of its rule's snapshot), bounded in size, with
an explicit warm-up (`ready`), and is fed only by periods that raised no alert:
the rules decide what to feed, the baseline only keeps and summarises it.
Scoring ("how long is usual") lives here; deciding to alert lives in the rules.
"""

from __future__ import annotations

import math
import statistics
from array import array
from bisect import bisect_left
from datetime import date
from sys import intern
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, GetCoreSchemaHandler
from pydantic_core import core_schema

from detectors.no_entries import Entries, no_entries, writable
from detectors.rule import RuleState, rule_state

KEEP_DAYS = 28  # how much history a baseline holds

# Day keys are interned: a rule hands in a new day string each time
# (`SiteContext.local_day`), and a worker holds several baselines per home.

HOURS = 24
_NONE = math.nan  # a day-hour without a learned gap


class _GapBaselineData(BaseModel):
    """A `GapBaseline` as its snapshot holds it (the model it was until session 8)."""

    model_config = ConfigDict(extra="forbid")

    gaps: dict[str, dict[str, float]] = Field(default_factory=dict)  # hour → day → longest gap s
    days: list[str] = Field(default_factory=list)  # local days with learned data, sorted


class GapBaseline:
    """Longest movement gap per local hour of day (of the gap's start), per day.

    Held as one grid of floats, 24 hours per learned day (`array('d')`, ~5 KB full),
    not the snapshot's dict of dicts (~40 KB full of 28 days × 24 hours); inactivity
    keeps one per resident and per resident and room. Snapshots keep the old JSON
    (`{"gaps": {hour: {day: gap}}, "days": [...]}`), validated through `_GapBaselineData`.
    """

    __slots__ = ("_columns", "_grid", "_hours", "days")

    def __init__(self) -> None:
        self.days: list[str] = []  # local days with learned data, sorted
        # The grid's days, sorted; None: `days` itself (always, but for a restored snapshot
        # that names gaps of other days): one list of 28 days, not two, per baseline.
        self._columns: list[str] | None = None
        self._grid = array("d")  # column c, hour h at c * 24 + h; NaN: none
        self._hours = 0  # bit h: hour h has a row in the snapshot (even an emptied one)

    def learn(self, day: str, hour: int, gap_s: float) -> None:
        day = intern(day)
        at = self._column(day) * HOURS + hour  # a new day: in `days` too, if shared
        old = self._grid[at]
        self._grid[at] = max(0.0 if math.isnan(old) else old, gap_s)
        self._hours |= 1 << hour
        if day not in self.days:
            self.days.append(day)
            self.days.sort()
        if len(self.days) > KEEP_DAYS:
            extra = len(self.days) - KEEP_DAYS
            del self.days[:extra]
            if self._columns is None:
                gone = extra  # the grid's days are `days`
            else:
                gone = bisect_left(self._columns, self.days[0])
                del self._columns[:gone]
            del self._grid[: gone * HOURS]

    def _column(self, day: str) -> int:
        columns = self.days if self._columns is None else self._columns
        at = bisect_left(columns, day)
        if at == len(columns) or columns[at] != day:
            columns.insert(at, day)
            self._grid[at * HOURS : at * HOURS] = array("d", [_NONE] * HOURS)
        return at

    def _days_of_grid(self) -> list[str]:
        return self.days if self._columns is None else self._columns

    def ready(self, learn_days: int) -> bool:
        return len(self.days) >= learn_days

    def usual_gap_s(self, hour: int, min_samples: int = 1) -> float | None:
        """Longest gap seen starting in this hour or its neighbours (a gap that started at
        09:58 is as usual at 10:05); None with fewer than `min_samples` day-hours of data
        (an hour the resident is rarely home in teaches nothing)."""
        grid = self._grid
        values = [
            g
            for h in ((hour - 1) % 24, hour, (hour + 1) % 24)
            for g in grid[h::HOURS]
            if not math.isnan(g)
        ]
        return max(values) if len(values) >= max(1, min_samples) else None

    # --- snapshots ------------------------------------------------------------------------

    def to_data(self) -> _GapBaselineData:
        gaps: dict[str, dict[str, float]] = {}
        for hour in range(HOURS):
            if self._hours >> hour & 1:
                column = self._grid[hour::HOURS]
                gaps[str(hour)] = {
                    d: g
                    for d, g in zip(self._days_of_grid(), column, strict=True)
                    if not math.isnan(g)
                }
        return _GapBaselineData(gaps=gaps, days=list(self.days))

    @classmethod
    def from_data(cls, data: _GapBaselineData) -> GapBaseline:
        made = cls()
        made.days = [intern(d) for d in data.days]
        columns = sorted({intern(d) for per_day in data.gaps.values() for d in per_day})
        made._columns = None if columns == made.days else columns
        made._grid = array("d", [_NONE] * (HOURS * len(columns)))
        where = {d: c for c, d in enumerate(columns)}
        for key, per_day in data.gaps.items():
            hour = _hour(key)
            made._hours |= 1 << hour
            for d, gap in per_day.items():
                made._grid[where[d] * HOURS + hour] = gap
        return made

    def model_dump(self, mode: str = "python") -> dict[str, Any]:
        return self.to_data().model_dump(mode=mode)

    @classmethod
    def model_validate(cls, value: Any) -> GapBaseline:
        if isinstance(value, GapBaseline):
            return value
        return cls.from_data(_GapBaselineData.model_validate(value))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GapBaseline):
            return NotImplemented
        return self.to_data() == other.to_data()

    __hash__ = None  # type: ignore[assignment]  # mutable, as the model was

    def __repr__(self) -> str:
        return f"GapBaseline(days={len(self.days)}, hours={self._hours.bit_count()})"

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: type[Any], handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        # In a rule's state model it validates and dumps as the model it replaced.
        return core_schema.no_info_plain_validator_function(
            cls.model_validate,
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda v: v.to_data(), return_schema=handler.generate_schema(_GapBaselineData)
            ),
        )


def _hour(key: str) -> int:
    hour = int(key)
    if not 0 <= hour < HOURS or key != str(hour):
        raise ValueError(f"not an hour of day: {key!r}")
    return hour


@rule_state
class WakeBaseline(RuleState):
    """Local minute of day of getting up, per day."""

    wake_minutes: Entries[str, float] = Field(default_factory=no_entries)  # day → minute of day

    def learn(self, day: str, minute: float) -> None:
        writable(self, "wake_minutes").setdefault(intern(day), minute)
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


@rule_state
class ActivityBaseline(RuleState):
    """Movements per hour at home, per day."""

    rates: Entries[str, float] = Field(default_factory=no_entries)  # day → movements per home hour

    def learn(self, day: str, rate: float) -> None:
        writable(self, "rates")[intern(day)] = rate
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


@rule_state
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


@rule_state
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
