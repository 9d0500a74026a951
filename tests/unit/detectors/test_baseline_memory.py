"""Learned baselines keep one string per day and hour: a full gap baseline keys 24 hours ×
28 days, and the rules hand in a new day string every time."""

from __future__ import annotations

from datetime import date, timedelta

from detectors.baseline import (
    ActivityBaseline,
    DurationBaseline,
    GapBaseline,
    ReturnBaseline,
    WakeBaseline,
)


def _day(n: int) -> str:
    return (date(2026, 1, 1) + timedelta(days=n)).isoformat()  # a new string each call


def test_a_gap_baseline_shares_its_day_and_hour_keys() -> None:
    gaps = GapBaseline()
    for d in range(3):
        for hour in range(24):
            gaps.learn(_day(d), hour, 600.0 + hour)
    for d in range(3):
        keys = [next(k for k in per_day if k == _day(d)) for per_day in gaps.gaps.values()]
        assert all(k is keys[0] for k in keys)
        assert next(k for k in gaps.days if k == _day(d)) is keys[0]
    again = GapBaseline()
    again.learn(_day(0), 7, 60.0)
    assert next(iter(again.gaps)) is next(k for k in gaps.gaps if k == "7")
    # The snapshot is what it was: the same plain mapping.
    assert gaps.model_dump(mode="json")["gaps"]["7"] == {_day(d): 607.0 for d in range(3)}


def test_the_per_day_baselines_share_their_day_keys() -> None:
    wake, activity, returns, durations = (
        WakeBaseline(),
        ActivityBaseline(),
        ReturnBaseline(),
        DurationBaseline(),
    )
    wake.learn(_day(0), 420.0)
    activity.learn(_day(0), 3.5)
    returns.learn(_day(0), 1100.0)
    durations.learn(_day(0), 2.5)
    keys = [
        next(iter(m))
        for m in (wake.wake_minutes, activity.rates, returns.latest, durations.longest)
    ]
    assert all(k is keys[0] for k in keys)
