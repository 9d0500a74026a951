"""The compact `GapBaseline` (a grid of floats) keeps the snapshot JSON of the pydantic
model it replaced: a snapshot the old model wrote restores to a baseline that answers the
same, dumps the same mapping, and learns on the same from there. The old model is copied
here as it was (session 7) to write those snapshots."""

from __future__ import annotations

from datetime import date, timedelta
from sys import intern

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field

from detectors.baseline import KEEP_DAYS, GapBaseline
from detectors.inactivity import InactivityState
from tests.helpers.examples import examples


class OldGapBaseline(BaseModel):
    """`detectors.baseline.GapBaseline` until session 8, verbatim but for the name and its
    base (a pydantic model refusing unknown fields, as `RuleState` was)."""

    model_config = ConfigDict(extra="forbid")

    gaps: dict[str, dict[str, float]] = Field(default_factory=dict)
    days: list[str] = Field(default_factory=list)

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
        values = [
            g
            for h in ((hour - 1) % 24, hour, (hour + 1) % 24)
            for g in self.gaps.get(str(h), {}).values()
        ]
        return max(values) if len(values) >= max(1, min_samples) else None


def _day(n: int) -> str:
    return (date(2026, 1, 1) + timedelta(days=n)).isoformat()


# (day number, hour, gap s): days out of order and past 28 days, repeats, whole seconds
# and fractions.
_LESSONS = st.lists(
    st.tuples(
        st.integers(0, 45),
        st.integers(0, 23),
        st.one_of(st.integers(1, 40_000).map(float), st.floats(0.5, 40_000.0)),
    ),
    max_size=300,
)


def _same_answers(old: OldGapBaseline, new: GapBaseline) -> None:
    assert new.days == old.days
    for learn_days in (1, 3, 7, 28, 29):
        assert new.ready(learn_days) == old.ready(learn_days)
    for hour in range(24):
        for min_samples in (0, 1, 3, 10, 40):
            assert new.usual_gap_s(hour, min_samples) == old.usual_gap_s(hour, min_samples)


@settings(max_examples=examples(200), deadline=None)
@given(before=_LESSONS, after=_LESSONS)
def test_an_old_snapshot_restores_identically(
    before: list[tuple[int, int, float]], after: list[tuple[int, int, float]]
) -> None:
    old = OldGapBaseline()
    for d, hour, gap in before:
        old.learn(_day(d), hour, gap)
    snapshot = {"baselines": {"r": old.model_dump(mode="json")}}

    new = InactivityState.model_validate(snapshot).baselines["r"]
    assert isinstance(new, GapBaseline)
    _same_answers(old, new)
    assert new.model_dump(mode="json") == old.model_dump(mode="json")
    assert (
        InactivityState.model_validate(snapshot).model_dump(mode="json")["baselines"]
        == (snapshot["baselines"])
    )
    # and from there both learn alike
    for d, hour, gap in after:
        old.learn(_day(d), hour, gap)
        new.learn(_day(d), hour, gap)
    _same_answers(old, new)
    assert new.model_dump(mode="json") == old.model_dump(mode="json")


@settings(max_examples=examples(100), deadline=None)
@given(lessons=_LESSONS)
def test_a_baseline_learns_as_the_old_model_did(lessons: list[tuple[int, int, float]]) -> None:
    old, new = OldGapBaseline(), GapBaseline()
    for d, hour, gap in lessons:
        old.learn(_day(d), hour, gap)
        new.learn(_day(d), hour, gap)
        assert new.usual_gap_s(hour) == old.usual_gap_s(hour)
    _same_answers(old, new)
    assert new.model_dump(mode="json") == old.model_dump(mode="json")
    again = InactivityState.model_validate(
        InactivityState(baselines={"r": new}).model_dump(mode="json")
    )
    assert again.baselines["r"] == new


def test_an_hour_emptied_by_the_28_days_stays_in_the_snapshot() -> None:
    """The old model kept an hour's row once its days were dropped: `{"5": {}}`."""
    old, new = OldGapBaseline(), GapBaseline()
    for baseline in (old, new):
        baseline.learn(_day(0), 5, 100.0)
        for d in range(1, KEEP_DAYS + 1):
            baseline.learn(_day(d), 9, 200.0)
    assert old.model_dump(mode="json")["gaps"]["5"] == {}
    assert new.model_dump(mode="json") == old.model_dump(mode="json")


def test_a_snapshot_with_a_day_missing_from_its_days_restores_it() -> None:
    """A snapshot whose gaps name a day its `days` does not (never written by the rules,
    but valid for the old model) keeps that gap."""
    data = {"gaps": {"7": {_day(0): 50.0, _day(1): 70.0}}, "days": [_day(1)]}
    old = OldGapBaseline.model_validate(data)
    new = InactivityState.model_validate({"baselines": {"r": data}}).baselines["r"]
    _same_answers(old, new)
    assert new.model_dump(mode="json") == old.model_dump(mode="json")
    for d in range(2, KEEP_DAYS + 4):  # and past 28 days from there
        old.learn(_day(d), d % 24, 10.0 * d)
        new.learn(_day(d), d % 24, 10.0 * d)
        _same_answers(old, new)
        assert new.model_dump(mode="json") == old.model_dump(mode="json")
