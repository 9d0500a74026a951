"""Beds, seat mats and presence radars as evidence of where the resident is (fake clock)."""

from __future__ import annotations

from typing import Any

from detectors.bed_exit_no_return import BedExitRule
from detectors.inactivity import InactivityRule
from detectors.night_door_exit import NightDoorExitRule
from detectors.not_returned import NotReturnedRule
from detectors.rule import Rule
from eldercare.domain import Reading, Stream, Transition
from tests.helpers.detectors import (
    OCCUPANCY_TZ,
    context,
    kinds_actions,
    local_ts,
    occupancy_couple,
    occupancy_home,
    reading,
)

TZ = OCCUPANCY_TZ


def replay(rule: Rule[Any], readings: list[Reading], until: float) -> list[Transition]:
    """Feed readings in order, then advance to `until`."""
    out: list[Transition] = []
    for r in readings:
        out.extend(rule.update(r))
    out.extend(rule.advance(until))
    return out


def _at(hour: int, minute: int = 0, day: int = 10) -> float:
    return local_ts(TZ, 2024, 5, day, hour, minute)


def test_an_evening_in_the_armchair_is_not_a_long_lie() -> None:
    site = occupancy_home()
    rule = InactivityRule(context(site))
    rs = [
        reading(site, "pir-kitchen", Stream.MOTION, _at(18, 50), motion=True),
        reading(site, "armchair", Stream.OCCUPANCY, _at(19), occupied=True),
        reading(site, "armchair", Stream.OCCUPANCY, _at(23, 30), occupied=False),
        reading(site, "pir-bed", Stream.MOTION, _at(23, 31), motion=True),
    ]
    # Before: 3 h without movement from 19:00 raised at 22:00.
    assert replay(rule, rs, _at(23, 32)) == []


def test_still_in_the_armchair_long_past_the_seated_limit_is_raised() -> None:
    site = occupancy_home()
    rule = InactivityRule(context(site))
    rs = [
        reading(site, "pir-kitchen", Stream.MOTION, _at(9, 59), motion=True),
        reading(site, "armchair", Stream.OCCUPANCY, _at(10), occupied=False),
        reading(site, "armchair", Stream.OCCUPANCY, _at(10) + 1, occupied=True),
    ]
    out = replay(rule, rs, _at(19))
    assert kinds_actions(out) == [("inactivity", "raise")]
    assert out[0].ts == _at(18) + 1  # 8 h (seated_hours) after sitting down


def test_getting_up_from_the_armchair_and_lying_still_is_judged_as_before() -> None:
    site = occupancy_home()
    rule = InactivityRule(context(site))
    rs = [
        reading(site, "armchair", Stream.OCCUPANCY, _at(12), occupied=True),
        reading(site, "armchair", Stream.OCCUPANCY, _at(13), occupied=False),
    ]
    out = replay(rule, rs, _at(17))
    assert [t.ts for t in out] == [_at(16)]  # the 3 h default from getting up


def test_rolling_from_one_mat_to_the_other_is_not_leaving_the_bed() -> None:
    site = occupancy_home()
    rule = BedExitRule(context(site))
    rs = [
        reading(site, "mat-left", Stream.OCCUPANCY, _at(23), occupied=True),
        reading(site, "mat-right", Stream.OCCUPANCY, _at(2, 0, 11), occupied=True),
        reading(site, "mat-left", Stream.OCCUPANCY, _at(2, 0, 11) + 2, occupied=False),
        reading(site, "pir-kitchen", Stream.MOTION, _at(2, 10, 11), motion=True),
    ]
    # Before: the left mat emptying was "bed empty" although the right one was pressed.
    assert replay(rule, rs, _at(4, 0, 11)) == []


def test_out_of_bed_and_seen_elsewhere_raises_at_30_minutes() -> None:
    site = occupancy_home()
    rule = BedExitRule(context(site))
    left = _at(2, 0, 11)
    rs = [
        reading(site, "mat-left", Stream.OCCUPANCY, _at(23), occupied=True),
        reading(site, "mat-left", Stream.OCCUPANCY, left, occupied=False),
        reading(site, "pir-kitchen", Stream.MOTION, left + 30, motion=True),
    ]
    out = replay(rule, rs, left + 3000)
    assert [(t.action.value, t.ts - left) for t in out] == [("raise", 1800)]


def test_mats_empty_with_only_the_bedroom_pir_waits_for_the_unconfirmed_limit() -> None:
    site = occupancy_home()
    rule = BedExitRule(context(site))
    left = _at(2, 0, 11)
    rs = [
        reading(site, "mat-left", Stream.OCCUPANCY, _at(23), occupied=True),
        reading(site, "mat-left", Stream.OCCUPANCY, left, occupied=False),
        reading(site, "pir-bed", Stream.MOTION, left + 600, motion=True),  # turning over
    ]
    out = replay(rule, rs, left + 2 * 3600)
    # Before: raised at 30 min; mats lose a sleeper lying across them.
    assert [(t.action.value, t.ts - left) for t in out][:1] == [("raise", 3600)]


def test_one_night_exit_is_one_alert() -> None:
    site = occupancy_home()
    bed, door = BedExitRule(context(site)), NightDoorExitRule(context(site))
    left = _at(2, 0, 11)
    rs = [
        reading(site, "mat-left", Stream.OCCUPANCY, _at(23), occupied=True),
        reading(site, "pir-bed", Stream.MOTION, _at(23, 1), motion=True),
        reading(site, "mat-left", Stream.OCCUPANCY, left, occupied=False),
        reading(site, "pir-kitchen", Stream.MOTION, left + 60, motion=True),
        reading(site, "door-front", Stream.CONTACT, left + 120, open=True),
        reading(site, "door-front", Stream.CONTACT, left + 125, open=False),
    ]
    both = replay(bed, rs, left + 3 * 3600) + replay(door, rs, left + 3 * 3600)
    # Before: bed_exit_no_return raised at 02:30 as well as night_door_exit at 02:12.
    assert kinds_actions(both) == [("night_door_exit", "raise")]


def test_front_door_used_while_the_radar_sees_her_inside_is_not_going_out() -> None:
    site = occupancy_home()
    rule = NotReturnedRule(context(site))
    rs = [
        reading(site, "pir-kitchen", Stream.MOTION, _at(20), motion=True),
        reading(site, "door-front", Stream.CONTACT, _at(20, 30), open=True),
        reading(site, "door-front", Stream.CONTACT, _at(20, 30) + 20, open=False),
        # back in the armchair, still: the radar reports presence, nothing moves
        reading(site, "radar-living", Stream.PRESENCE, _at(20, 31), present=True),
    ]
    # Before: away from 20:30 and "not back" at the 22:00 night deadline.
    assert replay(rule, rs, _at(23, 0)) == []


def test_without_anyone_inside_the_door_then_silence_is_still_going_out() -> None:
    site = occupancy_home()
    rule = NotReturnedRule(context(site))
    rs = [
        reading(site, "pir-kitchen", Stream.MOTION, _at(20), motion=True),
        reading(site, "radar-living", Stream.PRESENCE, _at(20, 1), present=False),
        reading(site, "door-front", Stream.CONTACT, _at(20, 30), open=True),
        reading(site, "door-front", Stream.CONTACT, _at(20, 30) + 20, open=False),
    ]
    assert kinds_actions(replay(rule, rs, _at(23, 0))) == [("not_returned", "raise")]


def test_a_couple_quiet_at_home_is_one_inactivity_alert_not_two() -> None:
    site = occupancy_couple()
    rule = InactivityRule(context(site))
    rs = [reading(site, "pir-kitchen", Stream.MOTION, _at(12), motion=True)]
    out = replay(rule, rs, _at(16))
    # Before: one raise per resident on the same kitchen PIR, as if two people lay still.
    assert [(t.action.value, t.resident_id) for t in out] == [("raise", None)]


def test_a_couple_one_in_the_armchair_is_not_inactive() -> None:
    site = occupancy_couple()
    rule = InactivityRule(context(site))
    rs = [
        reading(site, "pir-kitchen", Stream.MOTION, _at(18, 59), motion=True),
        reading(site, "armchair", Stream.OCCUPANCY, _at(19), occupied=False),
        reading(site, "armchair", Stream.OCCUPANCY, _at(19) + 1, occupied=True),
    ]
    assert replay(rule, rs, _at(23)) == []


def test_not_up_learns_late_mornings_that_raised() -> None:
    """A resident up at 11:00 every day: alerted at the 10:00 default on the first morning
    only (it knows nothing of her yet), then her wake time so far + 2 h, then learned.
    Before: alerted mornings were never learned, so it alarmed every day; then every
    warm-up morning at the 10:00 default, after she had got up at 11:00 on her own."""
    from detectors.not_up import NotUpRule

    site = occupancy_home()
    rule = NotUpRule(context(site))
    out = []
    for day in range(1, 15):
        rs = [
            reading(site, "pir-bed", Stream.MOTION, _at(22, 0, day), motion=True),
            reading(site, "pir-kitchen", Stream.MOTION, _at(11, 0, day + 1), motion=True),
        ]
        out += replay(rule, rs, _at(12, 0, day + 1))
    raised_days = [rule.ctx.local(t.ts).day for t in out if t.action.value == "raise"]
    assert raised_days == [2]  # the first morning, then never again


def test_a_regular_late_homecomer_is_not_alerted_at_a_one_oclock_cap() -> None:
    """Home at 01:25-01:40 every night: once learned (7 days, 3 evenings), the deadline is
    his upper quartile + 60 min (02:40), not capped at 01:00 (before: alerted every night)."""
    site = occupancy_home()
    rule = NotReturnedRule(context(site))
    out = []
    for day in range(1, 15):
        back = _at(1, 25 + day % 16, day + 1)
        rs = [
            reading(site, "pir-kitchen", Stream.MOTION, _at(19, 0, day), motion=True),
            reading(site, "door-front", Stream.CONTACT, _at(19, 30, day), open=True),
            reading(site, "door-front", Stream.CONTACT, _at(19, 30, day) + 5, open=False),
            reading(site, "door-front", Stream.CONTACT, back, open=True),
            reading(site, "door-front", Stream.CONTACT, back + 5, open=False),
            reading(site, "pir-kitchen", Stream.MOTION, back + 60, motion=True),
        ]
        out += replay(rule, rs, _at(12, 0, day + 1))
    raised = [rule.ctx.local(t.ts) for t in out if t.action.value == "raise"]
    assert raised and all(r.day <= 8 for r in raised)  # the warm-up's 22:00 default only


def _evening_out(site: Any, day: int, back: tuple[int, int]) -> list[Any]:
    """Out at 19:30, home at `back` (the next morning when before noon)."""
    back_ts = _at(*back, day + 1 if back[0] < 12 else day)
    return [
        reading(site, "pir-kitchen", Stream.MOTION, _at(19, 0, day), motion=True),
        reading(site, "door-front", Stream.CONTACT, _at(19, 30, day), open=True),
        reading(site, "door-front", Stream.CONTACT, _at(19, 30, day) + 5, open=False),
        reading(site, "door-front", Stream.CONTACT, back_ts, open=True),
        reading(site, "door-front", Stream.CONTACT, back_ts + 5, open=False),
        reading(site, "pir-kitchen", Stream.MOTION, back_ts + 60, motion=True),
    ]


def test_returns_after_alerts_are_learned_until_the_deadline_follows_him() -> None:
    """Evenings home by 21:35-23:43, then later ones (01:07, 01:10, 01:05) that the
    learned 00:43 deadline alerts. He came home on his own each time: those evenings are
    learned, and once they are his upper quartile the deadline follows him (02:07). Before:
    an evening alerted against a learned deadline was never learned, so every later
    evening was alerted at 00:43, however many."""
    site = occupancy_home()
    rule = NotReturnedRule(context(site))
    evenings = {1: (21, 35), 3: (22, 56), 5: (23, 43), 8: (1, 7), 10: (1, 10), 12: (1, 5)}
    evenings |= {14: (1, 8)}
    raised: list[tuple[int, int, int]] = []
    for day in range(1, 16):
        rs = _evening_out(site, day, evenings[day]) if day in evenings else []
        rs.append(reading(site, "pir-kitchen", Stream.MOTION, _at(11, 0, day + 1), motion=True))
        for t in replay(rule, rs, _at(11, 30, day + 1)):
            if t.action.value == "raise":
                when = rule.ctx.local(t.ts)
                raised.append((day, when.hour, when.minute))
    # In the warm-up, his latest evening so far + 60 min: day 3 (21:35 + 60) raises, day 5
    # (22:56 + 60) does not (before: the 22:00 default raised both); the learned 00:43
    # on days 8 and 10; from day 12 the learned deadline is 01:07 + 60 min: no more.
    assert raised == [(3, 22, 35), (8, 0, 43), (10, 0, 43)]


def _late_nights(site: Any, nights: int, leave: tuple[int, int]) -> list[Any]:
    """A household that goes to bed at 01:30 (last kitchen movement), up at 09:00; on the
    last evening he steps out at `leave` and does not come back."""
    rs = []
    for day in range(1, nights + 1):
        rs += [
            reading(site, "pir-kitchen", Stream.MOTION, _at(h, 0, day), motion=True)
            for h in (20, 21, 22, 23)
        ]
        rs += [
            reading(site, "pir-kitchen", Stream.MOTION, _at(0, 30, day + 1), motion=True),
            reading(site, "pir-kitchen", Stream.MOTION, _at(1, 30, day + 1), motion=True),
            reading(site, "pir-bed", Stream.MOTION, _at(1, 32, day + 1), motion=True),
            reading(site, "pir-kitchen", Stream.MOTION, _at(9, 0, day + 1), motion=True),
        ]
    day = nights + 1
    rs += [
        reading(site, "pir-kitchen", Stream.MOTION, _at(*leave, day) - 60, motion=True),
        reading(site, "door-front", Stream.CONTACT, _at(*leave, day), open=True),
        reading(site, "door-front", Stream.CONTACT, _at(*leave, day) + 5, open=False),
    ]
    return rs


def test_a_late_sleeper_leaving_at_23_is_not_a_night_exit() -> None:
    site = occupancy_home()
    rs = _late_nights(site, 8, (23, 0))
    # Before: 23:00 is in the 22:00-06:00 window, raised at 23:10.
    assert replay(NightDoorExitRule(context(site)), rs, rs[-1].ts + 3600) == []


def test_in_the_warm_up_the_night_starts_at_the_earliest_bedtime_seen() -> None:
    """Three nights in bed at 01:30: leaving at 23:00 on the fourth is before every bedtime
    seen (before: the 22:00 default raised it at 23:10); leaving at 02:30 is in the night
    as always (the start is at most 02:00)."""
    site = occupancy_home()
    rs = _late_nights(site, 3, (23, 0))
    assert replay(NightDoorExitRule(context(site)), rs, rs[-1].ts + 3600) == []
    rs = _late_nights(site, 3, (2, 30))
    rs = [r for r in rs if r.ts < _at(1, 0, 4)] + [
        reading(site, "pir-kitchen", Stream.MOTION, _at(1, 0, 4), motion=True),
        reading(site, "door-front", Stream.CONTACT, _at(2, 30, 4), open=True),
        reading(site, "door-front", Stream.CONTACT, _at(2, 30, 4) + 5, open=False),
    ]
    out = replay(NightDoorExitRule(context(site)), rs, _at(4, 0, 4))
    assert kinds_actions(out) == [("night_door_exit", "raise")]
    # The first night, nothing known yet: the default night start.
    rs = _late_nights(site, 0, (23, 0))
    out = replay(NightDoorExitRule(context(site)), rs, rs[-1].ts + 3600)
    assert kinds_actions(out) == [("night_door_exit", "raise")]


def test_a_late_sleeper_leaving_after_his_bedtime_is_raised() -> None:
    site = occupancy_home()
    rs = _late_nights(site, 8, (2, 30))
    rs = [r for r in rs if r.ts < _at(1, 0, 9)] + [
        reading(site, "pir-kitchen", Stream.MOTION, _at(1, 0, 9), motion=True),
        reading(site, "door-front", Stream.CONTACT, _at(2, 30, 9), open=True),
        reading(site, "door-front", Stream.CONTACT, _at(2, 30, 9) + 5, open=False),
    ]
    out = replay(NightDoorExitRule(context(site)), rs, _at(4, 0, 9))
    assert kinds_actions(out) == [("night_door_exit", "raise")]


def test_a_resident_with_dementia_keeps_the_contract_window() -> None:
    site = occupancy_home()
    doc = site.model_dump()
    doc["residents"][0]["flags"] = ["dementia"]
    site = type(site).model_validate(doc)
    rs = _late_nights(site, 8, (23, 0))
    out = replay(NightDoorExitRule(context(site)), rs, rs[-1].ts + 3600)
    assert kinds_actions(out) == [("night_door_exit", "raise")]


def test_a_bed_exit_that_went_out_and_came_back_raises_nothing_on_return() -> None:
    """Out of bed, out of the front door, back an hour later: an outing (night_door_exit's
    and not_returned's), not a bed left with no return."""
    site = occupancy_home()
    rule = BedExitRule(context(site))
    left = _at(0, 0, 11)
    back = left + 65 * 60
    rs = [
        reading(site, "mat-left", Stream.OCCUPANCY, _at(23), occupied=True),
        reading(site, "mat-left", Stream.OCCUPANCY, left, occupied=False),
        reading(site, "door-front", Stream.CONTACT, left, open=True),
        reading(site, "door-front", Stream.CONTACT, left + 13, open=False),
        reading(site, "door-front", Stream.CONTACT, back, open=True),
        reading(site, "door-front", Stream.CONTACT, back + 20, open=False),
        reading(site, "pir-kitchen", Stream.MOTION, back + 60, motion=True),
    ]
    # Before: the return made the exit due again, dated from the bed, and it was raised
    # as she came in (stamped 00:30 or 01:00).
    assert replay(rule, rs, back + 3 * 3600) == []
    # Back in bed and out of it again: a new exit, judged as usual.
    again = back + 3 * 3600
    rs = [
        reading(site, "mat-left", Stream.OCCUPANCY, again - 600, occupied=True),
        reading(site, "mat-left", Stream.OCCUPANCY, again, occupied=False),
        reading(site, "pir-kitchen", Stream.MOTION, again + 60, motion=True),
    ]
    out = replay(rule, rs, again + 3600)
    assert [(t.action.value, t.ts - again) for t in out][:1] == [("raise", 30 * 60)]


def test_a_moment_on_the_mat_then_back_in_the_bedroom_is_not_a_bed_exit() -> None:
    """Mats pressed for a second only (they lose a sleeper): a sensor elsewhere, then the
    bedroom PIR with nothing elsewhere since, is her back in the bedroom (van Kasteren
    house B, a kitchen drawer chattering on its own); seen elsewhere again, the exit is
    dated anew."""
    site = occupancy_home()
    rule = BedExitRule(context(site))
    t = _at(2, 0, 11)
    rs = [
        reading(site, "mat-left", Stream.OCCUPANCY, t - 1, occupied=True),
        reading(site, "mat-left", Stream.OCCUPANCY, t, occupied=False),
        reading(site, "pir-kitchen", Stream.MOTION, t + 60, motion=True),
        reading(site, "pir-bed", Stream.MOTION, t + 300, motion=True),
    ]
    # Before: raised at 02:31, 30 min after the kitchen PIR.
    assert replay(rule, rs, t + 40 * 60) == []
    rs = [reading(site, "pir-kitchen", Stream.MOTION, t + 40 * 60, motion=True)]
    out = replay(rule, rs, t + 2 * 3600)
    assert [(x.action.value, x.ts - t) for x in out][:1] == [("raise", 70 * 60)]


def _couple_with_own_mats() -> Any:
    site = occupancy_couple()
    doc = site.model_dump()
    for device in doc["devices"]:
        if device["id"] == "mat-left":
            device["resident"] = "res-1"
        elif device["id"] == "mat-right":
            device["resident"] = "res-2"
    return type(site).model_validate(doc)


def test_a_couple_out_of_bed_together_is_one_bed_exit_alert() -> None:
    """Both out of their own beds at 02:00 and not back: one alert (before: one each, on
    the same night exit); when the first goes back to bed with the other still out, the
    other's is raised then, not dropped."""
    site = _couple_with_own_mats()
    rule = BedExitRule(context(site))
    t = _at(2, 0, 11)
    rs = [
        reading(site, "mat-left", Stream.OCCUPANCY, _at(23), occupied=True),
        reading(site, "mat-right", Stream.OCCUPANCY, _at(23, 5), occupied=True),
        reading(site, "mat-left", Stream.OCCUPANCY, t, occupied=False),
        reading(site, "mat-right", Stream.OCCUPANCY, t + 60, occupied=False),
        reading(site, "pir-kitchen", Stream.MOTION, t + 120, motion=True),
    ]
    out = replay(rule, rs, t + 50 * 60)
    assert [(x.action.value, x.resident_id, x.ts - t) for x in out] == [("raise", "res-1", 30 * 60)]
    back = t + 50 * 60
    out = replay(rule, [reading(site, "mat-left", Stream.OCCUPANCY, back, occupied=True)], back)
    assert [(x.action.value, x.resident_id, x.ts) for x in out] == [
        ("clear", "res-1", back),
        ("raise", "res-2", back),
    ]
    # Apart by more than the limit: two exits, two alerts.
    rule = BedExitRule(context(site))
    rs[3] = reading(site, "mat-right", Stream.OCCUPANCY, t + 40 * 60, occupied=False)
    rs[4] = reading(site, "pir-kitchen", Stream.MOTION, t + 41 * 60, motion=True)
    out = replay(rule, rs, t + 75 * 60)
    assert [(x.action.value, x.resident_id) for x in out if x.action.value == "raise"] == [
        ("raise", "res-1"),
        ("raise", "res-2"),
    ]
