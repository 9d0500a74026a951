"""Learned baselines are held compactly: the rules hand in a new day string every time (kept
once), and a full gap baseline holds 24 hours × 28 days (kept as a grid of floats)."""

from __future__ import annotations

from datetime import date, timedelta

from detectors.baseline import (
    ActivityBaseline,
    DurationBaseline,
    GapBaseline,
    ReturnBaseline,
    WakeBaseline,
)
from tests.helpers.memory import deep_size


def _day(n: int) -> str:
    return (date(2026, 1, 1) + timedelta(days=n)).isoformat()  # a new string each call


def test_a_gap_baseline_shares_its_day_keys() -> None:
    gaps = GapBaseline()
    for d in range(3):
        for hour in range(24):
            gaps.learn(_day(d), hour, 600.0 + hour)
    again = GapBaseline()
    again.learn(_day(1), 7, 60.0)
    assert next(k for k in again.days if k == _day(1)) is next(k for k in gaps.days if k == _day(1))
    # The snapshot is what it was: the same plain mapping.
    assert gaps.model_dump(mode="json")["gaps"]["7"] == {_day(d): 607.0 for d in range(3)}


def test_a_full_gap_baseline_is_a_grid_of_floats() -> None:
    """28 days × 24 hours: ~5 KB of floats, not a dict of dicts (~38 KB as it was)."""
    gaps = GapBaseline()
    for d in range(40):
        for hour in range(24):
            gaps.learn(_day(d), hour, 600.0 + d)
    assert len(gaps.days) == 28
    # Day strings are shared and interned: not the baseline's.
    assert deep_size(gaps, skip_types=(type, str)) < 6_500  # the grid and one list of its days


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
