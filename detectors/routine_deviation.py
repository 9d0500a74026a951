"""Unusual routine: today's activity level at home is far from the resident's usual.

At each local midnight the day just ended is scored: movements per hour spent at
home (days with less than `min_home_hours` at home are skipped). After
`baseline_days` scored days, a day whose rate has |z| ≥ `z_threshold` and is below
`min_ratio` × usual (or above its inverse) raises an info alert; the next ordinary
day clears it. Days that raised are not learned.
"""

from __future__ import annotations

from datetime import date, timedelta

from pydantic import Field

from detectors.baseline import ActivityBaseline
from detectors.occupancy import WATCHED_STREAMS
from detectors.rule import Rule, RuleState, rule_state
from detectors.settings import RoutineDeviationSettings
from eldercare.domain import AlertKind, Reading, Transition, TransitionAction


@rule_state
class _Day(RuleState):
    count: int = 0
    raised: bool = False
    baseline: ActivityBaseline = Field(default_factory=ActivityBaseline)


@rule_state
class RoutineDeviationState(RuleState):
    day: str | None = None  # the local day being counted
    away_s: float = 0.0  # time away during `day`
    residents: dict[str, _Day] = Field(default_factory=dict)  # resident id ("" = site)


def _next_day(day: str) -> str:
    return (date.fromisoformat(day) + timedelta(days=1)).isoformat()


class RoutineDeviationRule(Rule[RoutineDeviationState]):
    __slots__ = ()

    name = "routine_deviation"
    kinds = (AlertKind.ROUTINE_DEVIATION,)
    state_model = RoutineDeviationState
    streams = WATCHED_STREAMS
    reads_picture = True

    def _settings(self, resident: str) -> RoutineDeviationSettings:
        return self.ctx.settings(self.name, RoutineDeviationSettings, resident or None)

    def _day_bounds(self, day: str) -> tuple[float, float]:
        return self.ctx.at_local(day, 0), self.ctx.at_local(_next_day(day), 0)

    def on_reading(self, reading: Reading) -> list[Transition]:
        if self.state.day is None:
            self.state.day = self.ctx.local_day(reading.ts)
        moved = self.picture.moved  # the shared resident picture took this reading first
        ended = self.picture.ended_absence
        if ended is not None:
            since = ended[0]
            start, _ = self._day_bounds(self.state.day)
            self.state.away_s += max(0.0, reading.ts - max(since, start))
        if moved:
            residents = self.ctx.activity_residents(reading) if self.ctx.resident_ids else ("",)
            for resident in residents:
                self.state.residents.setdefault(resident, _Day()).count += 1
        return []

    def compute_due(self) -> float | None:
        dues = []
        if self.state.day is not None:
            dues.append(self._day_bounds(self.state.day)[1])
        return min(dues) if dues else None

    def fire(self, due: float) -> list[Transition]:
        if self.state.day is None:
            return []
        start, end = self._day_bounds(self.state.day)
        if due != end:
            return []
        away_s = self.state.away_s
        away_since = self.picture.away_since(end)
        if away_since is not None:
            away_s += max(0.0, end - max(away_since, start))
        home_hours = (end - start - away_s) / 3600
        out: list[Transition] = []
        for resident in sorted(set(self.state.residents) | set(self.ctx.resident_ids)):
            d = self.state.residents.setdefault(resident, _Day())
            out += self._judge(resident, d, self.state.day, home_hours, end)
            d.count = 0
        self.state.day = _next_day(self.state.day)
        self.state.away_s = 0.0
        return out

    def _judge(
        self, resident: str, d: _Day, day: str, home_hours: float, ts: float
    ) -> list[Transition]:
        s = self._settings(resident)
        if not s.enabled or home_hours < s.min_home_hours:
            return []
        rate = d.count / home_hours
        if not d.baseline.ready(s.baseline_days):
            d.baseline.learn(day, rate)
            return []
        z, ratio = d.baseline.score(rate)
        unusual = abs(z) >= s.z_threshold and (ratio <= s.min_ratio or ratio >= 1 / s.min_ratio)
        details = {
            "day": day,
            "movements_per_hour": round(rate, 2),
            "usual_per_hour": round(rate / ratio, 2) if ratio not in (0, float("inf")) else None,
            "z": round(z, 2),
            "home_hours": round(home_hours, 1),
        }
        if unusual:
            action = TransitionAction.UPDATE if d.raised else TransitionAction.RAISE
            d.raised = True
        else:
            d.baseline.learn(day, rate)
            if not d.raised:
                return []
            d.raised = False
            action = TransitionAction.CLEAR
        return [
            self.ctx.transition(
                action,
                AlertKind.ROUTINE_DEVIATION,
                ts,
                resident_id=resident or None,
                details=details,
            )
        ]
