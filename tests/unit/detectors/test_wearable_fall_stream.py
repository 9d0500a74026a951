"""Wearable fall detector as a stream: batch boundaries, duplicates, reordering, gaps, restarts."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.wearable_fall import WearableFallDetector, WearableFallSettings
from eldercare.domain import Reading, Transition, TransitionAction
from tests.helpers.examples import examples
from tests.unit.detectors.test_wearable_fall_signals import (
    DEVICE,
    RESIDENT,
    ROOM,
    SITE,
    Signal,
    batches,
    reading,
)


def detector() -> WearableFallDetector:
    return WearableFallDetector(SITE, RESIDENT, DEVICE, ROOM, WearableFallSettings())


def run(readings: list[Reading], det: WearableFallDetector | None = None) -> list[Transition]:
    det = det or detector()
    out: list[Transition] = []
    for r in readings:
        out += det.update(r)
    return out


def story() -> Signal:
    """Walk, fall, lie, get up, walk: one raise and one clear."""
    return Signal().still(2).walk(8).fall(lie_s=12).get_up(2.0).walk(16)


def summary(ts: list[Transition]) -> list[tuple[Any, ...]]:
    return [
        (
            t.action,
            t.ts,
            t.details.get("peak_g"),
            t.details.get("posture_change_deg"),
            t.details.get("stillness_g"),
        )
        for t in ts
    ]


def assert_same(got: list[Transition], want: list[Transition]) -> None:
    assert [t.action for t in got] == [t.action for t in want]
    for g, w in zip(summary(got), summary(want), strict=True):
        assert g == pytest.approx(w, abs=1e-6)


@pytest.fixture(scope="module")
def reference() -> list[Transition]:
    out = run(batches(story()))
    assert [t.action for t in out] == [TransitionAction.RAISE, TransitionAction.CLEAR]
    return out


def test_fall_split_across_batch_boundaries_at_every_offset(reference: list[Transition]) -> None:
    sig = story()
    for offset in range(1, 50):
        assert_same(run(batches(sig, first=offset)), reference)


@pytest.mark.parametrize("size", [1, 7, 25, 128, 500])
def test_batch_size_does_not_change_the_result(size: int, reference: list[Transition]) -> None:
    assert_same(run(batches(story(), sizes=size)), reference)


@settings(max_examples=examples(25), deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=150), min_size=1, max_size=60))
def test_any_cutting_of_the_stream_gives_the_same_result(sizes: list[int]) -> None:
    want = run(batches(story()))
    assert_same(run(batches(story(), sizes=sizes)), want)


def test_duplicate_batches_are_dropped(reference: list[Transition]) -> None:
    rs = batches(story())
    doubled: list[Reading] = []
    for i, r in enumerate(rs):
        doubled.append(r)
        if i % 3 == 0:
            doubled.append(r)  # redelivered at once
        if i >= 4 and i % 5 == 0:
            doubled.append(rs[i - 4])  # redelivered after later data
    det = detector()
    assert_same(run(doubled, det), reference)
    assert det.counters["duplicates"] == len(doubled) - len(rs)
    assert det.counters["late"] == 0


def test_out_of_order_batches_within_the_reorder_wait_are_put_back_in_order(
    reference: list[Transition],
) -> None:
    rs = batches(story())
    shuffled = list(rs)
    for i in range(0, len(shuffled) - 1, 2):
        shuffled[i], shuffled[i + 1] = shuffled[i + 1], shuffled[i]
    assert_same(run(shuffled), reference)


def test_randomly_jittered_delivery_within_the_reorder_wait(reference: list[Transition]) -> None:
    rs = batches(story(), sizes=10)  # 0.2 s batches, each delayed by up to 1.5 s
    rng = random.Random(3)
    arrival = sorted(rs, key=lambda r: r.ts + rng.uniform(0.0, 1.5))
    assert_same(run(arrival), reference)


def test_a_batch_later_than_the_reorder_wait_is_dropped_and_counted() -> None:
    sig = Signal().walk(20)
    rs = batches(sig)
    late = rs.pop(5)
    det = detector()
    run(rs[:10], det)
    assert det.update(late) == []
    assert det.counters["late"] == 1
    run(rs[10:], det)
    assert det.counters["gap_resets"] == 0  # a one-second hole is tolerated


def test_small_gap_inside_the_observation_window_is_tolerated() -> None:
    sig = Signal().walk(10).fall(lie_s=20)
    rs = [
        r
        for r in batches(sig, sizes=25)
        if not (sig.marks["impact"] + 2.0 < r.ts < sig.marks["impact"] + 3.1)
    ]
    assert len(rs) == len(batches(sig, sizes=25)) - 2  # a one-second hole
    det = detector()
    out = run(rs, det)
    assert [t.action for t in out] == [TransitionAction.RAISE]
    assert out[0].ts == pytest.approx(sig.marks["impact"])
    assert det.counters["gap_resets"] == 0


def test_long_gap_resets_history_and_an_impact_without_aftermath_is_not_a_fall() -> None:
    sig = Signal().walk(10).fall(lie_s=30)
    impact = sig.marks["impact"]
    rs = [r for r in batches(sig) if not (impact + 0.5 < r.ts < impact + 12)]
    det = detector()
    assert run(rs, det) == []
    assert det.counters["impacts_without_data"] >= 1


def test_gap_after_a_fall_keeps_the_alarm_open() -> None:
    sig = Signal().walk(10).fall(lie_s=10)
    det = detector()
    assert len(run(batches(sig), det)) == 1
    later = Signal(start=sig.now + 600).still(30, sig.samples[-1])
    assert run(batches(later), det) == []
    assert det.alarm_active
    assert det.counters["gap_resets"] == 1


def _json_roundtrip(state: dict[str, Any]) -> dict[str, Any]:
    text = json.dumps(state, allow_nan=False)
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def _plain(value: Any) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return value is None or type(value) in (bool, int, float, str)


def test_snapshot_restore_at_every_batch_gives_the_uninterrupted_result(
    reference: list[Transition],
) -> None:
    rs = batches(story(), sizes=20)
    for cut in range(len(rs) + 1):
        first = detector()
        before = run(rs[:cut], first)
        state = first.snapshot()
        assert _plain(state)
        second = detector()
        second.restore(_json_roundtrip(state))
        assert second.snapshot() == _json_roundtrip(state)
        assert_same(before + run(rs[cut:], second), reference)


def test_snapshot_mid_observation_window_then_timer_fires_the_same() -> None:
    """Restart while waiting on a silent device: next_due and the raise survive."""
    sig = Signal().walk(10).fall(lie_s=2.8)
    det = detector()
    run(batches(sig), det)
    due = det.next_due()
    assert due is not None
    restored = detector()
    restored.restore(_json_roundtrip(det.snapshot()))
    assert restored.next_due() == due
    assert_same(restored.advance(due), det.advance(due))


def test_snapshot_while_alarmed_resumes_without_re_raising_and_then_clears() -> None:
    sig = story()
    rs = batches(sig)
    det = detector()
    up_to = next(i for i, r in enumerate(rs) if r.ts > sig.marks["impact"] + 8)
    assert [t.action for t in run(rs[:up_to], det)] == [TransitionAction.RAISE]
    restored = detector()
    restored.restore(_json_roundtrip(det.snapshot()))
    assert restored.alarm_active
    assert [t.action for t in run(rs[up_to:], restored)] == [TransitionAction.CLEAR]


def test_restore_rejects_an_unknown_snapshot_version() -> None:
    state = detector().snapshot()
    state["version"] = 99
    with pytest.raises(ValueError, match="version"):
        detector().restore(state)


def test_history_stays_bounded_on_a_long_stream() -> None:
    det = detector()
    sig = Signal().walk(600)
    run(batches(sig), det)
    state = det.snapshot()
    # Without an impact in flight only a pre-impact window (+ neighbourhood) is kept.
    needed_s = det.settings.pre_impact_from_s + det.settings.peak_merge_s
    assert len(state["t"]) <= needed_s * sig.rate_hz + 3
    assert len(json.dumps(state)) < 20_000
    assert len(state["recent_batches"]) <= 256


def test_rate_change_mid_stream_still_detects() -> None:
    a = Signal(rate_hz=25.0).walk(10)
    b = Signal(rate_hz=100.0, start=a.now).walk(3).fall(lie_s=20)
    det = detector()
    out = run(batches(a), det) + run(batches(b), det)
    assert [t.action for t in out] == [TransitionAction.RAISE]
    assert out[0].ts == pytest.approx(b.marks["impact"], abs=0.02)


def test_overlapping_batches_are_trimmed_not_double_counted(reference: list[Transition]) -> None:
    sig = story()
    xyz = sig.samples
    rs = []
    for a in range(0, len(xyz), 50):
        lo = max(0, a - 10)  # each batch repeats the previous 10 samples
        rs.append(reading(sig.t(lo), xyz[lo : a + 50], sig.rate_hz))
    assert_same(run(rs), reference)


def test_long_batches_swapped_with_their_successor_are_still_put_in_order(
    reference: list[Transition],
) -> None:
    """The reorder wait counts from the end of the hole, so 5 s uploads may swap too.

    Only the very first batch is lost: the stream starts with whatever comes first.
    """
    rs = batches(story(), sizes=250)
    shuffled = rs[:1]
    for i in range(1, len(rs) - 1, 2):
        shuffled += [rs[i + 1], rs[i]]
    shuffled += rs[len(shuffled) :]
    assert sorted(r.ts for r in shuffled) == [r.ts for r in rs]
    det = detector()
    assert_same(run(shuffled, det), reference)
    assert det.counters["late"] == 0
    assert det.counters["gap_resets"] == 0


def test_disabled_rule_stays_silent() -> None:
    det = WearableFallDetector(SITE, RESIDENT, DEVICE, ROOM, WearableFallSettings(enabled=False))
    assert run(batches(story()), det) == []
    assert det.advance(story().now + 3600) == []
