"""Wearable fall detector: what raises, what does not, and what clears (event time only)."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from detectors.base import Detector
from detectors.wearable_fall import WearableFallDetector, WearableFallSettings
from eldercare.domain import AlertKind, Reading, Severity, Stream, Transition, TransitionAction
from tests.unit.detectors.test_wearable_fall_signals import (
    DEVICE,
    LYING,
    RESIDENT,
    ROOM,
    SITE,
    UPRIGHT,
    Signal,
    batches,
    reading,
    samples_in,
    tilted,
)


def detector(**overrides: float) -> WearableFallDetector:
    return WearableFallDetector(SITE, RESIDENT, DEVICE, ROOM, WearableFallSettings(**overrides))


def run(readings: list[Reading], det: WearableFallDetector | None = None) -> list[Transition]:
    det = det or detector()
    out: list[Transition] = []
    for r in readings:
        out += det.update(r)
    return out


def raises(ts: list[Transition]) -> list[Transition]:
    return [t for t in ts if t.action is TransitionAction.RAISE]


def test_follows_the_detector_protocol() -> None:
    det = detector()
    assert isinstance(det, Detector)
    assert det.kinds == (AlertKind.WEARABLE_FALL,)
    assert det.next_due() is None
    assert det.advance(1e9) == []


def test_settings_forbid_unknown_keys_and_inconsistent_windows() -> None:
    with pytest.raises(ValidationError):
        WearableFallSettings(impact_gs=3.0)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        WearableFallSettings(pre_impact_from_s=1.0, pre_impact_to_s=2.0)
    with pytest.raises(ValidationError):
        WearableFallSettings(impact_g=0.5)


def test_standing_still_never_alarms() -> None:
    assert run(batches(Signal().still(120))) == []


def test_walking_never_alarms() -> None:
    assert run(batches(Signal().still(3).walk(120).still(3))) == []


def test_fall_raises_once_stamped_with_the_impact_time() -> None:
    sig = Signal().still(3).walk(10).fall(peak_g=4.5, lie_s=30)
    det = detector()
    out = run(batches(sig), det)
    assert len(out) == 1
    t = out[0]
    assert t.action is TransitionAction.RAISE
    assert t.kind is AlertKind.WEARABLE_FALL
    assert t.severity is Severity.CRITICAL
    assert (t.site_id, t.resident_id, t.device_id, t.room_id) == (SITE, RESIDENT, DEVICE, ROOM)
    assert t.ts == pytest.approx(sig.marks["impact"], abs=1e-6)
    assert t.details["peak_g"] == pytest.approx(4.5, abs=0.05)
    assert 80 <= t.details["posture_change_deg"] <= 100
    assert t.details["stillness_g"] < 0.1
    assert [e.ts for e in t.evidence] == pytest.approx(
        [sig.marks["impact"], sig.marks["impact"] + det.settings.decision_delay_s]
    )
    assert all(e.device_id == DEVICE and e.stream == "accel" for e in t.evidence)
    assert det.alarm_active


def test_fall_is_raised_only_after_the_observation_window() -> None:
    sig = Signal().walk(10).fall(lie_s=30)
    det = detector()
    decided_at = sig.marks["impact"] + det.settings.decision_delay_s
    for r in batches(sig):
        out = det.update(r)
        end = r.ts + samples_in(r) / 50
        if out:
            assert end >= decided_at
            assert end - 1.0 < decided_at + 1 / 50
            return
    pytest.fail("no raise")


def test_a_single_spike_without_posture_change_never_alarms() -> None:
    for peak in (3.0, 6.0, 12.0):
        sig = Signal().still(5).impact(peak, np.array([1.0, 0.2, 0.0]), samples=1).still(20)
        assert run(batches(sig)) == [], peak
    # Even a big bump while lying in bed: the posture was already "lying".
    sig = Signal().still(5, LYING).impact(8.0, np.array([0.0, 1.0, 1.0])).still(20, LYING)
    assert run(batches(sig)) == []


def test_jumping_and_stumbling_while_walking_do_not_alarm() -> None:
    sig = Signal().walk(5)
    for _ in range(5):
        sig.impact(4.0, UPRIGHT * -1).walk(2)
    sig.walk(10)
    assert run(batches(sig)) == []


def test_sitting_down_hard_does_not_alarm() -> None:
    sig = Signal().walk(5).still(1).sit_down_hard(peak_g=3.5, sit_s=20)
    assert run(batches(sig)) == []


def test_lying_down_gently_does_not_alarm() -> None:
    sig = Signal().still(5, tilted(20)).rotate(3, tilted(20), LYING, magnitude=1.0)
    sig.still(30, LYING)
    assert run(batches(sig)) == []


def test_fall_then_moving_about_on_the_floor_does_not_alarm() -> None:
    """Impact and posture change, but the person is busy (e.g. rolling, crawling): not still."""
    sig = Signal().walk(10).rotate(0.6, UPRIGHT, LYING).impact(4.5, LYING)
    sig.walk(20, LYING, vigour=1.6)
    assert run(batches(sig)) == []


def test_soft_fall_below_the_impact_threshold_does_not_alarm_but_a_lower_setting_does() -> None:
    """Before the wearer's upright is known (no walking seen yet), the plain rule."""
    sig = Signal().still(5).fall(peak_g=1.7, lie_s=20)
    assert run(batches(sig)) == []
    assert len(raises(run(batches(sig), detector(impact_g=1.6)))) == 1


def test_a_soft_fall_ending_lying_still_raises_once_her_upright_is_known() -> None:
    """A peak just under 2 g, then lying still: a fall, once walking taught the upright."""
    sig = Signal().walk(30).rotate(0.6, UPRIGHT, LYING).impact(1.8, LYING)
    sig.still(20, LYING, noise=0.01)  # lying quite still (SisFall's soft falls: 0.01-0.03 g)
    det = detector()
    [raised] = raises(run(batches(sig), det))
    assert raised.ts == pytest.approx(sig.marks["impact"])
    assert raised.details["upright_after_deg"] >= 80
    assert det.upright is not None and float(np.dot(det.upright, UPRIGHT)) > 0.95


def test_a_soft_thump_sitting_down_is_not_a_soft_fall() -> None:
    """Dropping into a chair ends upright-ish, not lying: no soft fall."""
    sig = Signal().walk(30).still(1).sit_down_hard(peak_g=1.8, sit_s=20)
    assert run(batches(sig)) == []


def test_rolling_over_in_bed_is_no_fall_once_her_upright_is_known() -> None:
    """Lying on the back, a roll and a thump onto the side: she was not upright before."""
    side = np.array([1.0, 0.0, 0.0])
    sig = Signal().walk(30).rotate(3, UPRIGHT, LYING, magnitude=1.0).still(20, LYING)
    sig.rotate(0.6, LYING, side).impact(3.0, side).still(20, side, noise=0.02)
    assert run(batches(sig)) == []
    # Without the learned upright the same roll looks like a fall (the old weakness).
    plain = Signal().still(3, LYING).rotate(0.6, LYING, side).impact(3.0, side)
    plain.still(20, side, noise=0.02)
    assert len(raises(run(batches(plain)))) == 1


def test_a_peak_at_the_sensor_range_counts_as_an_impact() -> None:
    """A ±2 g sensor clips a hard fall's 4 g peak to 2 g: at its range is as good as higher."""
    sig = Signal().still(5).fall(peak_g=4.0, lie_s=20)
    clipped = np.clip(sig.samples, -2.0, 2.0)
    readings = [
        reading(sig.t(i), clipped[i : i + 50], sig.rate_hz) for i in range(0, len(clipped), 50)
    ]
    assert raises(run(readings, detector(impact_g=2.5))) == []  # range unknown: too weak
    [raised] = raises(run(readings, detector(impact_g=2.5, sensor_range_g=2.0)))
    assert raised.details["saturated"] is True


@pytest.mark.parametrize("rate_hz", [25.0, 50.0, 100.0, 200.0])
def test_fall_is_detected_at_common_wearable_rates(rate_hz: float) -> None:
    sig = Signal(rate_hz=rate_hz).walk(10).fall(peak_g=4.0, lie_s=20)
    out = run(batches(sig))
    assert len(raises(out)) == 1
    assert out[0].ts == pytest.approx(sig.marks["impact"], abs=2 / rate_hz)


def test_getting_up_and_walking_clears_the_alarm() -> None:
    sig = Signal().walk(10).fall(lie_s=15).get_up(2.0).walk(30)
    det = detector()
    out = run(batches(sig), det)
    assert [t.action for t in out] == [TransitionAction.RAISE, TransitionAction.CLEAR]
    clear = out[1]
    up = sig.marks["up"]
    # Ten upright seconds (of which five moving) in one-second blocks; the end of getting up
    # is already within 30° of upright, so the run may start up to ~2 s before `up`.
    assert up + 8 <= clear.ts <= up + 11
    assert clear.details["impact_ts"] == pytest.approx(sig.marks["impact"])
    assert not det.alarm_active


def test_standing_up_but_not_moving_does_not_clear() -> None:
    sig = Signal().walk(10).fall(lie_s=15).get_up(2.0).still(60)
    out = run(batches(sig))
    assert [t.action for t in out] == [TransitionAction.RAISE]


def test_moving_while_still_lying_does_not_clear() -> None:
    sig = Signal().walk(10).fall(lie_s=15).walk(60, LYING)
    out = run(batches(sig))
    assert [t.action for t in out] == [TransitionAction.RAISE]


def test_a_second_fall_after_clearing_raises_again() -> None:
    sig = Signal().walk(10).fall(lie_s=15).get_up(2.0).walk(20).fall(lie_s=15)
    out = run(batches(sig))
    assert [t.action for t in out] == [
        TransitionAction.RAISE,
        TransitionAction.CLEAR,
        TransitionAction.RAISE,
    ]


def test_a_device_silent_after_the_impact_is_judged_by_advance_at_next_due() -> None:
    """The stream stops 3.5 s after the impact: enough of the window to judge, on a timer."""
    sig = Signal().walk(10).fall(lie_s=2.8)
    det = detector()
    assert run(batches(sig), det) == []
    due = det.next_due()
    assert due is not None
    assert det.advance(due - 0.01) == []
    out = det.advance(due)
    assert len(raises(out)) == 1
    assert out[0].ts == pytest.approx(sig.marks["impact"])
    assert det.next_due() is None


def test_advance_does_not_judge_before_the_stream_is_silent_long_enough() -> None:
    sig = Signal().walk(10).fall(lie_s=2.8)
    det = detector()
    run(batches(sig), det)
    assert det.advance(sig.now + 5.0) == []  # a slow uplink may still deliver the rest


def test_other_devices_and_streams_are_ignored() -> None:
    sig = Signal().walk(10).fall(lie_s=20)
    other = [reading(r.ts, _xyz(r), 50.0, device_id="watch-9") for r in batches(sig)]
    det = detector()
    assert run(other, det) == []
    battery = Reading(SITE, DEVICE, Stream.BATTERY, sig.start, {"percent": 50.0})
    assert det.update(battery) == []
    assert det.counters["batches"] == 0


@pytest.mark.parametrize(
    "fields, reason",
    [
        ({"x": (0.0,), "y": (-1.0,), "z": (0.0,)}, "rate_hz missing"),
        ({"rate_hz": 0.0, "x": (0.0,), "y": (-1.0,), "z": (0.0,)}, "rate_hz out of range"),
        ({"rate_hz": 50.0, "x": (0.0, 0.1), "y": (-1.0,), "z": (0.0,)}, "differ in length"),
        ({"rate_hz": 50.0, "x": (), "y": (), "z": ()}, "x missing or empty"),
        ({"rate_hz": 50.0, "x": (float("nan"),), "y": (-1.0,), "z": (0.0,)}, "not finite"),
        ({"rate_hz": 50.0, "x": (500.0,), "y": (-1.0,), "z": (0.0,)}, "beyond"),
        ({"rate_hz": 50.0, "x": "abc", "y": (-1.0,), "z": (0.0,)}, "x missing or empty"),
    ],
)
def test_bad_readings_are_counted_and_logged_not_crashing(
    fields: dict[str, object], reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    det = detector()
    bad = Reading(SITE, DEVICE, Stream.ACCEL, 1e9, fields)  # type: ignore[arg-type]
    assert det.update(bad) == []
    assert det.counters["rejected"] == 1
    assert reason in caplog.text
    # And the detector still works afterwards.
    sig = Signal(start=1e9 + 10).walk(10).fall(lie_s=20)
    assert len(raises(run(batches(sig), det))) == 1


def test_readings_are_not_mutated_and_same_input_gives_same_output() -> None:
    sig = Signal().walk(10).fall(lie_s=20).get_up().walk(20)
    rs = batches(sig)
    before = [dict(r.fields) for r in rs]
    first = run(rs)
    second = run(rs)
    assert [dict(r.fields) for r in rs] == before
    assert first == second


def test_event_time_only_the_same_story_in_another_century() -> None:
    a = Signal(start=978_307_200.0).walk(10).fall(lie_s=20).get_up().walk(20)
    b = Signal(start=3_786_912_000.0).walk(10).fall(lie_s=20).get_up().walk(20)
    ra, rb = run(batches(a)), run(batches(b))
    assert [t.action for t in ra] == [t.action for t in rb]
    assert [t.ts - a.start for t in ra] == pytest.approx([t.ts - b.start for t in rb], abs=1e-5)


def _xyz(r: Reading) -> np.ndarray:
    return np.array([r.fields["x"], r.fields["y"], r.fields["z"]], dtype=float).T


def test_a_second_fall_while_the_alarm_is_open_raises_again() -> None:
    """She half gets up (hunched, never back within 30° of standing), moves about, and falls
    again: a new event, although the first alarm never cleared."""
    hunched = tilted(60)
    on_side = np.array([1.0, 0.0, 0.0])
    sig = Signal().walk(10).fall(lie_s=15).rotate(2.0, LYING, hunched, magnitude=1.0)
    sig.walk(8, hunched)
    first_impact = sig.marks["impact"]
    sig.rotate(0.6, hunched, on_side).impact(4.0, on_side).still(20, on_side, noise=0.02)
    out = run(batches(sig))
    assert [t.action for t in out] == [TransitionAction.RAISE, TransitionAction.RAISE]
    assert out[0].ts == pytest.approx(first_impact)
    assert out[1].ts == pytest.approx(sig.marks["impact"])
    assert out[1].details["falls_while_open"] == 2


def test_a_second_thump_of_the_same_fall_does_not_raise_twice() -> None:
    """Bouncing and a second impact without moving in between: one fall, one raise."""
    sig = Signal().walk(10).fall(lie_s=5).impact(3.0, LYING).still(20, LYING, noise=0.02)
    assert [t.action for t in run(batches(sig))] == [TransitionAction.RAISE]
