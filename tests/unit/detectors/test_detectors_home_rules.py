"""Home rules that read a resident's routine and the door sequence: learned night deadline
for `not_returned`, leaving vs coming home for `night_door_exit`, door-only bathrooms."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from detectors.bathroom_too_long import BathroomRule
from detectors.night_door_exit import NightDoorExitRule
from detectors.not_returned import NotReturnedRule
from detectors.not_up import NotUpRule
from eldercare.domain import Reading, Stream, Transition, TransitionAction
from eldercare.registry_model import Site
from tests.helpers.detectors import context, home_site, local_ts, reading, replay

SH = "Asia/Shanghai"
RAISE, CLEAR = TransitionAction.RAISE, TransitionAction.CLEAR


def _evening_out(
    site: Site, day: int, leave: tuple[int, int], back: tuple[int, int]
) -> list[Reading]:
    """Kitchen, out through the front door, back through it, kitchen again."""
    t_out = local_ts(SH, 2024, 5, day, *leave)
    back_day = day + 1 if back < leave else day
    t_in = local_ts(SH, 2024, 5, back_day, *back)
    return [
        reading(site, "pir-kitchen", Stream.MOTION, t_out - 120, motion=True),
        reading(site, "door-front", Stream.CONTACT, t_out, open=True),
        reading(site, "door-front", Stream.CONTACT, t_out + 5, open=False),
        reading(site, "door-front", Stream.CONTACT, t_in, open=True),
        reading(site, "door-front", Stream.CONTACT, t_in + 5, open=False),
        reading(site, "pir-kitchen", Stream.MOTION, t_in + 60, motion=True),
    ]


def _raises(out: list[Transition]) -> list[str]:
    return [f"{x.details['left_at']}→{x.details['deadline']}" for x in out if x.action == RAISE]


def test_not_returned_learns_a_habitual_late_return() -> None:
    site = home_site(SH)
    rule = NotReturnedRule(context(site))
    out: list[Transition] = []
    for day in range(1, 15):  # out every evening 19:00, home at 23:00
        rs = _evening_out(site, day, (19, 0), (23, 0))
        out += replay(rule, rs, rs[-1].ts)
    # The first evening, knowing nothing of her, the default night start (22:00) raises;
    # from then on her latest return so far (23:00) + 60 min, then (after the warm-up) the
    # learned usual latest return + 60 min applies: no more alerts. Before: the default
    # raised on each of the 7 warm-up evenings, though she had come home at 23:00 on all.
    assert _raises(out) == ["19:00→22:00"]
    # Still out at 00:05 (after the learned deadline, 00:00): raised at midnight.
    rs = _evening_out(site, 15, (19, 0), (0, 30))
    out = replay(rule, rs, rs[-1].ts)
    assert [(x.action, x.ts) for x in out] == [
        (RAISE, local_ts(SH, 2024, 5, 16, 0, 0)),
        (CLEAR, rs[3].ts),
    ]


def test_not_returned_early_homecomer_alarms_by_night_start() -> None:
    site = home_site(SH)
    rule = NotReturnedRule(context(site))
    for day in range(1, 12):  # shopping every afternoon, home by 17:00 (before 20:00)
        rs = _evening_out(site, day, (15, 0), (17, 0))
        assert replay(rule, rs, rs[-1].ts) == []
    rs = _evening_out(site, 12, (19, 0), (23, 30))
    out = replay(rule, rs, rs[-1].ts)
    # Learned 17:00 + 60 min is before the night start: the night start (22:00) applies,
    # so someone never out after 20:00 is flagged well before 22:30.
    assert [(x.action, x.ts) for x in out] == [
        (RAISE, local_ts(SH, 2024, 5, 12, 22, 0)),
        (CLEAR, rs[3].ts),
    ]


def test_not_returned_learns_alerted_evenings_within_its_ceiling() -> None:
    """Her evenings change (out until 23:30 now): she comes home on her own and those
    evenings are learned, so once they are her upper quartile (after 4) the alerts stop
    (before: every one of the 14 alerted, nothing learned). One evening she is brought
    home at 05:00 does not move the deadline (a quartile); evenings past 03:00 every
    time move it at most to `latest_night_deadline`."""
    site = home_site(SH)
    rule = NotReturnedRule(context(site))
    for day in range(1, 10):  # evenings out until 21:30: learned deadline 22:30
        rs = _evening_out(site, day, (19, 0), (21, 30))
        assert replay(rule, rs, rs[-1].ts) == []
    out: list[Transition] = []
    for day in range(10, 24):  # now out late every evening
        rs = _evening_out(site, day, (19, 0), (23, 30))
        out += replay(rule, rs, rs[-1].ts)
    assert _raises(out) == ["19:00→22:30"] * 4
    rs = _evening_out(site, 24, (19, 0), (5, 0))
    assert _raises(replay(rule, rs, rs[-1].ts)) == ["19:00→00:30"]  # 23:30 + 60 min
    rs = _evening_out(site, 25, (19, 0), (0, 0))
    assert _raises(replay(rule, rs, rs[-1].ts)) == []  # the 05:00 evening moved nothing
    rule = NotReturnedRule(context(site))
    out = []
    for day in range(1, 13):  # another home: out until 05:00 every evening
        rs = _evening_out(site, day, (19, 0), (5, 0))
        out += replay(rule, rs, rs[-1].ts)
    assert _raises(out)[-1] == "19:00→03:00"  # learned, within the ceiling


def test_not_returned_learns_only_from_evenings_out() -> None:
    """Home by 17:00 on most days, out until 23:00 on some evenings: the afternoons say
    nothing about how late an evening out ends, so they must not pull the deadline early."""
    site = home_site(SH)
    rule = NotReturnedRule(context(site))
    out: list[Transition] = []
    for day in range(1, 13):
        rs = _evening_out(site, day, (15, 0), (17, 0))
        if day in (2, 5, 8):
            rs += _evening_out(site, day, (19, 0), (23, 0))
        out += replay(rule, rs, rs[-1].ts)
    # The first evening out raises at the default night start; the next two, in the
    # warm-up, are judged against her latest evening return so far (23:00) + 60 min.
    assert _raises(out) == ["19:00→22:00"]
    assert sorted(rule.state.returns.latest.values()) == [23 * 60] * 3  # no afternoons
    rs = _evening_out(site, 13, (19, 0), (23, 0))  # learned 23:00 + 60 min: no alert
    assert replay(rule, rs, rs[-1].ts) == []
    rs = _evening_out(site, 14, (19, 0), (0, 30))
    out = replay(rule, rs, rs[-1].ts)
    assert [(x.action, x.ts) for x in out] == [
        (RAISE, local_ts(SH, 2024, 5, 15, 0, 0)),
        (CLEAR, rs[3].ts),
    ]


def test_not_returned_learns_the_usual_absence_length_within_bounds() -> None:
    # by_night off: only the absence limit is judged here.
    site = home_site(SH, resident_overrides={"not_returned": {"by_night": False}})
    rule = NotReturnedRule(context(site))
    for day in range(1, 11):  # a long day out, 07:00–17:00, every day
        rs = _evening_out(site, day, (7, 0), (17, 0))
        assert replay(rule, rs, rs[-1].ts) == []
    # Learned: the usual long absence (10 h) × 1.5 = 15 h instead of the default 12 h.
    rs = _evening_out(site, 11, (7, 0), (21, 0))  # 14 h: usual enough, no alert
    assert replay(rule, rs, rs[-1].ts) == []
    rs = _evening_out(site, 12, (7, 0), (23, 0))
    out = replay(rule, rs, rs[-1].ts)
    assert [x.action for x in out] == [RAISE, CLEAR]
    assert out[0].ts == pytest.approx(local_ts(SH, 2024, 5, 12, 22, 0), abs=10)
    assert out[0].details["limit_hours"] == 15.0
    # She came home on her own: learned, alerted or not; the learned limit stays capped.
    assert rule.state.durations.longest["2024-05-12"] == pytest.approx(16.0, abs=0.01)
    assert rule._limit_hours(local_ts(SH, 2024, 5, 13, 7, 0))[0] <= 24.0


def test_not_returned_default_absence_limit_before_learning_and_cap_after() -> None:
    site = home_site(SH, resident_overrides={"not_returned": {"by_night": False}})
    rule = NotReturnedRule(context(site))
    rs = _evening_out(site, 1, (7, 0), (3, 0))  # 20 h away on the first day: 12 h applies
    out = replay(rule, rs, rs[-1].ts)
    assert out[0].action == RAISE and out[0].ts == local_ts(SH, 2024, 5, 1, 19, 0) + 5
    for day in range(3, 12):  # then 20 h away each day (day 1, alerted by a default, is learned)
        rs = _evening_out(site, day, (7, 0), (3, 0))
        replay(rule, rs, rs[-1].ts)
    # 20 h × 1.5 = 30 h is capped at 24 h.
    rs = _evening_out(site, 13, (7, 0), (3, 0))
    rs = rs[:3] + [replace(r, ts=r.ts + 5 * 3600) for r in rs[3:]]  # back at 08:00: 25 h
    out = replay(rule, rs, rs[-1].ts)
    assert [(x.action, x.ts) for x in out] == [
        (RAISE, local_ts(SH, 2024, 5, 14, 7, 0) + 5),
        (CLEAR, rs[3].ts),
    ]
    assert out[0].details["limit_hours"] == 24.0


def test_not_returned_warm_up_yields_to_what_she_has_already_done() -> None:
    """In the first week the defaults apply until she has done more on her own: a day out
    longer than 12 h, an evening out later than 22:00 (ARAS house B). A real "not back" in
    the warm-up is still raised, at the ceilings at the latest."""
    site = home_site(SH)
    rule = NotReturnedRule(context(site))
    rs = _evening_out(site, 1, (9, 0), (23, 30))  # 14.5 h, home at 23:30
    assert _raises(replay(rule, rs, rs[-1].ts)) == ["09:00→21:00"]  # 12 h: nothing known
    rs = _evening_out(site, 2, (9, 0), (0, 15))  # 15.25 h, home at 00:15
    # Before: raised at 21:00 (12 h) again. Now: 14.5 h × 1.5 and 23:30 + 60 min.
    assert _raises(replay(rule, rs, rs[-1].ts)) == []
    rs = _evening_out(site, 3, (19, 0), (5, 0))  # not back: raised by her latest + 60 min
    assert _raises(replay(rule, rs, rs[-1].ts)) == ["19:00→01:15"]
    hours, learned = rule._limit_hours(local_ts(SH, 2024, 5, 4, 9, 0))
    assert hours == pytest.approx(15.25 * 1.5, abs=0.01) and not learned


def test_not_returned_learns_no_return_from_an_outing_begun_in_the_night() -> None:
    """Out at 02:30 and back at 04:00 says nothing of how late she comes home from an
    evening out (ARAS house A: a night outing's 03:36 return)."""
    site = home_site(SH)
    rule = NotReturnedRule(context(site))
    rs = _evening_out(site, 1, (2, 30), (4, 0))
    replay(rule, rs, rs[-1].ts)
    assert rule.state.returns.latest == {}
    rs = _evening_out(site, 2, (19, 0), (23, 0))
    assert _raises(replay(rule, rs, rs[-1].ts)) == ["19:00→22:00"]


def test_not_returned_planned_absence_waits_for_its_end() -> None:
    plan = {"not_returned": {"planned_absence_until": "2024-05-12T18:00"}}
    site = home_site(SH, resident_overrides=plan)
    rule = NotReturnedRule(context(site))
    # At the daughter's from Friday morning, back Sunday 17:30 as declared: no alert.
    rs = _evening_out(site, 10, (9, 0), (17, 30))
    rs = rs[:3] + [replace(r, ts=r.ts + 2 * 86400) for r in rs[3:]]
    assert replay(rule, rs, rs[-1].ts) == []
    assert rule.state.durations.longest == {} and rule.state.returns.latest == {}
    # Not back by the declared end: raised at the end + the margin (60 min).
    rule = NotReturnedRule(context(site))
    rs = _evening_out(site, 10, (9, 0), (17, 30))[:3]
    out = replay(rule, rs, local_ts(SH, 2024, 5, 13, 0, 0))
    assert [(x.action, x.ts) for x in out] == [(RAISE, local_ts(SH, 2024, 5, 12, 19, 0))]
    assert out[0].details["planned_until"] == "2024-05-12T18:00"
    # An absence after the declared end is judged as usual.
    rule = NotReturnedRule(context(site))
    rs = _evening_out(site, 13, (19, 0), (23, 30))
    assert _raises(replay(rule, rs, rs[-1].ts)) == ["19:00→22:00"]


def _declared_after_the_alert(back: tuple[int, int, int] | None) -> list[Transition]:
    """Out Friday 09:00, raised at 21:00 (the 12 h default limit); then the daughter
    declares "with me until Sunday 18:00" and the rule is rebuilt with the new settings,
    its state carried over (as the runtime does on a registry change)."""
    site = home_site(SH)
    rule = NotReturnedRule(context(site))
    rs = _evening_out(site, 10, (9, 0), (17, 30))
    out = replay(rule, rs[:3], local_ts(SH, 2024, 5, 10, 23, 0))
    plan = {"not_returned": {"planned_absence_until": "2024-05-12T18:00"}}
    declared = NotReturnedRule(context(home_site(SH, resident_overrides=plan)))
    declared.restore(rule.snapshot())
    end = local_ts(SH, 2024, 5, 13, 9, 0)
    if back is None:
        return out + replay(declared, [], end)
    t_in = local_ts(SH, 2024, 5, *back)
    tail = [replace(r, ts=t_in + (r.ts - rs[3].ts)) for r in rs[3:]]
    return out + replay(declared, tail, end)


def test_not_returned_declared_after_the_alert_rearms_at_the_declared_end() -> None:
    out = _declared_after_the_alert(back=None)
    # Raised Friday 21:00; still away at the declared end + 60 min: raised once more.
    assert [(x.action, x.ts) for x in out] == [
        (RAISE, local_ts(SH, 2024, 5, 10, 21, 0) + 5),
        (RAISE, local_ts(SH, 2024, 5, 12, 19, 0)),
    ]
    assert out[1].details["planned_until"] == "2024-05-12T18:00"
    # Back Sunday 17:30 as declared: the first alert clears, nothing more.
    out = _declared_after_the_alert(back=(12, 17, 30))
    assert [(x.action, x.ts) for x in out] == [
        (RAISE, local_ts(SH, 2024, 5, 10, 21, 0) + 5),
        (CLEAR, local_ts(SH, 2024, 5, 12, 17, 30)),
    ]
    # Back Sunday 20:00, after the second raise: one clear.
    out = _declared_after_the_alert(back=(12, 20, 0))
    assert [x.action for x in out] == [RAISE, RAISE, CLEAR]


def test_not_returned_declaration_ending_before_the_alert_does_not_rearm() -> None:
    """A declaration whose end (+ margin) had passed when the alert raised (here: ended
    at noon, so the 12 h limit from 09:00 applies) does not raise again later."""
    site = home_site(
        SH, resident_overrides={"not_returned": {"planned_absence_until": "2024-05-10T12:00"}}
    )
    rule = NotReturnedRule(context(site))
    rs = _evening_out(site, 10, (9, 0), (17, 30))[:3]
    out = replay(rule, rs, local_ts(SH, 2024, 5, 12, 0, 0))
    assert [(x.action, x.ts) for x in out] == [(RAISE, local_ts(SH, 2024, 5, 10, 21, 0) + 5)]


def test_not_returned_learned_deadline_is_bounded() -> None:
    site = home_site(SH, resident_overrides={"not_returned": {"latest_night_deadline": "00:30"}})
    rule = NotReturnedRule(context(site))
    for day in range(1, 10):  # home at 02:00 every night during the warm-up
        rs = _evening_out(site, day, (19, 0), (2, 0))
        replay(rule, rs, rs[-1].ts)
    rs = _evening_out(site, 10, (19, 0), (3, 0))
    out = replay(rule, rs, rs[-1].ts)
    assert out[0].action == RAISE and out[0].ts == local_ts(SH, 2024, 5, 11, 0, 30)


def test_coming_home_then_quiet_is_home_not_a_new_absence() -> None:
    site = home_site(SH)
    rs = _evening_out(site, 10, (15, 0), (23, 39))[:-1]  # back, then no sensor fires
    out = replay(NotReturnedRule(context(site)), rs, rs[-1].ts + 24 * 3600)
    assert [(x.action, x.ts) for x in out] == [
        (RAISE, local_ts(SH, 2024, 5, 10, 22, 0)),
        (CLEAR, rs[3].ts),
    ]
    # A second door passage soon after going out (back for the keys, locking up) continues
    # the departure rather than ending it: away, dated from the last door event.
    t = local_ts(SH, 2024, 5, 12, 9, 0)
    rs = [
        reading(site, "pir-kitchen", Stream.MOTION, t - 60, motion=True),
        reading(site, "door-front", Stream.CONTACT, t, open=True),
        reading(site, "door-front", Stream.CONTACT, t + 5, open=False),
        reading(site, "door-front", Stream.CONTACT, t + 120, open=True),
        reading(site, "door-front", Stream.CONTACT, t + 125, open=False),
    ]
    out = replay(NotReturnedRule(context(site)), rs, t + 13 * 3600)
    assert [(x.action, x.ts - t) for x in out] == [(RAISE, 12 * 3600 + 125)]


def test_night_door_exit_coming_home_is_not_leaving() -> None:
    site = home_site(SH)
    # Out since the afternoon, back at 23:30, then sits quietly (a room without a sensor).
    t_out = local_ts(SH, 2024, 5, 10, 15, 0)
    t_in = local_ts(SH, 2024, 5, 10, 23, 30)
    rs = [
        reading(site, "pir-kitchen", Stream.MOTION, t_out - 60, motion=True),
        reading(site, "door-front", Stream.CONTACT, t_out, open=True),
        reading(site, "door-front", Stream.CONTACT, t_out + 5, open=False),
        reading(site, "door-front", Stream.CONTACT, t_in, open=True),
        reading(site, "door-front", Stream.CONTACT, t_in + 5, open=False),
        reading(site, "door-front", Stream.CONTACT, t_in + 20, open=True),  # same passage
        reading(site, "door-front", Stream.CONTACT, t_in + 25, open=False),
    ]
    assert replay(NightDoorExitRule(context(site)), rs, t_in + 3600) == []


def test_night_door_exit_leaving_then_coming_back_in_clears() -> None:
    site = home_site(SH)
    t = local_ts(SH, 2024, 5, 11, 2, 0)
    rs = [
        reading(site, "pir-bed", Stream.MOTION, t - 60, motion=True),
        reading(site, "door-front", Stream.CONTACT, t, open=True),
        reading(site, "door-front", Stream.CONTACT, t + 5, open=False),
        reading(site, "door-front", Stream.CONTACT, t + 30 * 60, open=True),
    ]
    out = replay(NightDoorExitRule(context(site)), rs, t + 3600)
    assert [(x.action, x.ts - t) for x in out] == [(RAISE, 600), (CLEAR, 1800)]


# --- a bathroom whose only sensors are its door and a flush -----------------------------------

_DOOR_ONLY: list[dict[str, Any]] = [
    {"id": "pir-living", "kind": "motion", "room": "living"},
    {"id": "door-bath", "kind": "door", "room": "bathroom", "room_door": True},
    {"id": "flush-1", "kind": "flush", "room": "bathroom"},
    {"id": "door-front", "kind": "door", "room": "entrance", "outer_door": True},
]


def _door(site: Site, t: float, opened: bool) -> Reading:
    return reading(site, "door-bath", Stream.CONTACT, t, open=opened)


def test_door_only_bathroom_times_a_stay_behind_a_shut_door() -> None:
    site = home_site(SH, devices=_DOOR_ONLY)
    t = local_ts(SH, 2024, 5, 10, 14, 0)
    rs = [_door(site, t, True), _door(site, t + 5, False)]
    out = replay(BathroomRule(context(site)), rs, t + 3600)
    assert [(x.action, x.ts - t) for x in out] == [(RAISE, 45 * 60)]


def test_door_only_bathroom_door_left_open_is_not_timed() -> None:
    site = home_site(SH, devices=_DOOR_ONLY)
    t = local_ts(SH, 2024, 5, 10, 23, 0)
    # In, door pulled to and pushed open again: left open, the person may have walked out.
    rs = [_door(site, t, True), _door(site, t + 1, False), _door(site, t + 5, True)]
    rule = BathroomRule(context(site))
    assert replay(rule, rs, t + 3 * 3600) == []
    # Shut later from inside: timed from the shutting.
    later = t + 3 * 3600
    out = replay(rule, [_door(site, later, False)], later + 3600)
    assert [(x.action, x.ts - later) for x in out] == [(RAISE, 15 * 60)]


def test_door_only_bathroom_flush_without_the_door_is_not_timed() -> None:
    site = home_site(SH, devices=_DOOR_ONLY)
    t = local_ts(SH, 2024, 5, 10, 8, 40)
    rs = [
        _door(site, t - 3600, True),
        _door(site, t - 3590, False),
        reading(site, "pir-living", Stream.MOTION, t - 3500, motion=True),  # left
        reading(site, "flush-1", Stream.FLUSH, t, flushed=True),  # the door never opened
    ]
    assert replay(BathroomRule(context(site)), rs, t + 3 * 3600) == []


def test_not_returned_restores_a_snapshot_from_before_the_absence_limit_was_learned() -> None:
    site = home_site(SH)
    rule = NotReturnedRule(context(site))
    for day in range(1, 5):
        rs = _evening_out(site, day, (19, 0), (23, 0))
        replay(rule, rs, rs[-1].ts)
    old = rule.snapshot()
    del old["durations"]  # written by the previous version
    restored = NotReturnedRule(context(site))
    restored.restore(old)
    assert restored.state.durations.longest == {}
    assert restored.state.returns.latest == rule.state.returns.latest


def test_not_returned_an_earlier_night_start_begins_the_evening_out_with_it() -> None:
    site = home_site(SH, resident_overrides={"not_returned": {"night_start": "20:00"}})
    rule = NotReturnedRule(context(site))
    for day in range(1, 10):  # choir every evening, 18:00–20:30 (after the 20:00 night start)
        rs = _evening_out(site, day, (18, 0), (20, 30))
        replay(rule, rs, rs[-1].ts)
    assert sorted(set(rule.state.returns.latest.values())) == [20 * 60 + 30]
    rs = _evening_out(site, 10, (18, 0), (21, 0))  # learned 20:30 + 60 min: no alert
    assert replay(rule, rs, rs[-1].ts) == []


# --- door-only toilet next to a bathroom: leaving one and opening the other's door ------------


def _two_bathrooms_site(site_overrides: dict[str, Any] | None = None) -> Site:
    """A door-only bathroom (door and flush) and a door-only toilet (door only)."""
    base = home_site(SH, devices=_DOOR_ONLY, site_overrides=site_overrides).model_dump()
    base["rooms"].append({"id": "toilet", "kind": "toilet"})
    base["devices"].append({"id": "door-wc", "kind": "door", "room": "toilet", "room_door": True})
    return Site.model_validate(base)


def _bath_then_wc(site: Site, t: float, gap_s: float, between: list[Reading]) -> list[Reading]:
    """Into the bathroom, flush, out by its door at t; the toilet door opens `gap_s` later
    and is shut behind the person; then nothing (`between` goes between the two doors)."""
    return [
        reading(site, "door-bath", Stream.CONTACT, t - 300, open=True),
        reading(site, "door-bath", Stream.CONTACT, t - 296, open=False),
        reading(site, "flush-1", Stream.FLUSH, t - 60, flushed=True),
        reading(site, "door-bath", Stream.CONTACT, t, open=True),
        reading(site, "door-bath", Stream.CONTACT, t + 4, open=False),
        *between,
        reading(site, "door-wc", Stream.CONTACT, t + gap_s, open=True),
        reading(site, "door-wc", Stream.CONTACT, t + gap_s + 3, open=False),
    ]


def test_door_only_toilet_opened_just_after_leaving_the_bathroom_gets_the_day_limit() -> None:
    site = _two_bathrooms_site()
    t = local_ts(SH, 2024, 5, 10, 22, 55)  # at night: the limit would be 15 min
    out = replay(BathroomRule(context(site)), _bath_then_wc(site, t, 6, []), t + 3 * 3600)
    # Maybe the way out through nested doors: held to the day limit (45 min) from the entry.
    assert [(x.action, x.ts - (t + 6)) for x in out] == [(RAISE, 45 * 60)]
    assert out[0].details["just_left_another_bathroom"] is True
    assert out[0].details["limit_minutes"] == 45.0


def test_door_only_toilet_after_a_pause_or_other_activity_is_a_new_night_visit() -> None:
    site = _two_bathrooms_site()
    t = local_ts(SH, 2024, 5, 10, 22, 55)
    late = replay(BathroomRule(context(site)), _bath_then_wc(site, t, 31, []), t + 3 * 3600)
    assert [(x.action, x.ts - (t + 31)) for x in late] == [(RAISE, 15 * 60)]
    seen = [reading(site, "pir-living", Stream.MOTION, t + 3, motion=True)]
    via_living = replay(BathroomRule(context(site)), _bath_then_wc(site, t, 6, seen), t + 3 * 3600)
    assert [(x.action, x.ts - (t + 6)) for x in via_living] == [(RAISE, 15 * 60)]
    assert via_living[0].details["just_left_another_bathroom"] is False


def test_door_only_bathroom_reentered_soon_is_not_a_transit() -> None:
    site = _two_bathrooms_site()
    t = local_ts(SH, 2024, 5, 10, 23, 0)
    rs = [
        reading(site, "door-bath", Stream.CONTACT, t - 120, open=True),
        reading(site, "door-bath", Stream.CONTACT, t - 116, open=False),
        reading(site, "door-bath", Stream.CONTACT, t, open=True),  # out
        reading(site, "door-bath", Stream.CONTACT, t + 4, open=False),
        reading(site, "door-bath", Stream.CONTACT, t + 25, open=True),  # back in: same room
        reading(site, "door-bath", Stream.CONTACT, t + 28, open=False),
    ]
    out = replay(BathroomRule(context(site)), rs, t + 3 * 3600)
    assert [(x.action, x.ts - (t + 25)) for x in out] == [(RAISE, 15 * 60)]


def test_door_only_toilet_transit_setting_and_snapshot_mid_stay() -> None:
    off = _two_bathrooms_site({"bathroom_too_long": {"door_transit_s": 0}})
    t = local_ts(SH, 2024, 5, 10, 22, 55)
    out = replay(BathroomRule(context(off)), _bath_then_wc(off, t, 6, []), t + 3 * 3600)
    assert [(x.action, x.ts - (t + 6)) for x in out] == [(RAISE, 15 * 60)]  # switched off

    on = _two_bathrooms_site()
    rule = BathroomRule(context(on))
    rs = _bath_then_wc(on, t, 6, [])
    replay(rule, rs[:-2], t + 5)  # out of the bathroom, the toilet door not yet opened
    restored = BathroomRule(context(on))
    restored.restore(rule.snapshot())
    out = replay(restored, rs[-2:], t + 3 * 3600)
    assert [(x.action, x.ts - (t + 6)) for x in out] == [(RAISE, 45 * 60)]


def test_door_only_transit_confirmed_by_a_flush_in_that_room_gets_the_night_limit() -> None:
    base = _two_bathrooms_site().model_dump()
    base["devices"].append({"id": "flush-wc", "kind": "flush", "room": "toilet"})
    site = Site.model_validate(base)
    t = local_ts(SH, 2024, 5, 10, 22, 55)
    rs = _bath_then_wc(site, t, 6, [])
    rs.append(reading(site, "flush-wc", Stream.FLUSH, t + 120, flushed=True))
    out = replay(BathroomRule(context(site)), rs, t + 3 * 3600)
    # In the toilet after all: the night limit, from the entry.
    assert [(x.action, x.ts - (t + 6)) for x in out] == [(RAISE, 15 * 60)]
    assert out[0].details["just_left_another_bathroom"] is False


def test_not_up_after_coming_home_in_the_night_waits_as_long_as_she_was_late() -> None:
    """Home at 01:00 (3 h after the 22:00 night start): that morning's deadline is 13:00
    (10:00 + 3 h) instead of 10:00; after an evening home by 21:00, 10:00 as before."""
    site = home_site(SH)

    def night(back: tuple[int, int], up: tuple[int, int]) -> list[Transition]:
        rs = _evening_out(site, 10, (19, 0), back)
        rs.append(reading(site, "pir-bed", Stream.MOTION, rs[-1].ts + 300, motion=True))
        rs.append(
            reading(site, "pir-kitchen", Stream.MOTION, local_ts(SH, 2024, 5, 11, *up), motion=True)
        )
        return replay(NotUpRule(context(site)), rs, rs[-1].ts)

    # Before: raised at 10:00, though she had come home at 01:00.
    assert night((1, 0), (12, 30)) == []
    out = night((1, 0), (13, 30))
    assert [(x.action, x.ts) for x in out][:1] == [(RAISE, local_ts(SH, 2024, 5, 11, 13, 0))]
    out = night((21, 0), (11, 0))
    assert [(x.action, x.ts) for x in out][:1] == [(RAISE, local_ts(SH, 2024, 5, 11, 10, 0))]


def test_not_up_after_a_night_return_whose_going_out_was_not_seen_waits_as_long() -> None:
    """Last seen in the kitchen at 21:50, then a quiet home until the front door at 03:30
    and the kitchen and bedroom just after (van Kasteren house B, 26 Jul: out unseen, home
    at 03:30, up at 11:38): that is coming home, and the morning's deadline is 13:00
    (10:00 + 5 h 30 min, at most 13:00), not 10:00. The door opened minutes after
    movement inside (going out and back) moves nothing."""
    door = local_ts(SH, 2024, 5, 11, 3, 30)

    def night(
        last_inside: float, up: tuple[int, int], site: Site = home_site(SH)
    ) -> list[Transition]:
        rs = [
            reading(site, "pir-kitchen", Stream.MOTION, last_inside, motion=True),
            reading(site, "door-front", Stream.CONTACT, door, open=True),
            reading(site, "door-front", Stream.CONTACT, door + 5, open=False),
            reading(site, "pir-kitchen", Stream.MOTION, door + 60, motion=True),
            reading(site, "pir-bed", Stream.MOTION, door + 300, motion=True),
        ]
        t_up = local_ts(SH, 2024, 5, 11, *up)
        rs.append(reading(site, "pir-kitchen", Stream.MOTION, t_up, motion=True))
        return replay(NotUpRule(context(site)), rs, t_up)

    evening = local_ts(SH, 2024, 5, 10, 21, 50)
    # Before: raised at 10:00 (only a return from a confirmed absence moved the deadline).
    assert night(evening, (12, 30)) == []
    out = night(evening, (13, 30))
    assert [(x.action, x.ts) for x in out][:1] == [(RAISE, local_ts(SH, 2024, 5, 11, 13, 0))]
    out = night(door - 300, (11, 0))  # seen inside at 03:25: the door is going out
    assert [(x.action, x.ts) for x in out][:1] == [(RAISE, local_ts(SH, 2024, 5, 11, 10, 0))]
    # A resident flagged dementia: that door at night may be her wandering out and back.
    data = home_site(SH).model_dump()
    data["residents"][0]["flags"] = ["dementia"]
    out = night(evening, (11, 0), Site.model_validate(data))
    assert [(x.action, x.ts) for x in out][:1] == [(RAISE, local_ts(SH, 2024, 5, 11, 10, 0))]
