"""Rule boundaries on a fake timeline (event time passed in; nothing sleeps)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from detectors.bathroom_too_long import BathroomRule
from detectors.bed_exit_no_return import BedExitRule
from detectors.device_offline import DeviceOfflineRule
from detectors.fall import FallRule
from detectors.inactivity import InactivityRule
from detectors.low_battery import LowBatteryRule
from detectors.night_door_exit import NightDoorExitRule
from detectors.not_returned import NotReturnedRule
from detectors.not_up import NotUpRule
from detectors.site_offline import SiteOfflineRule
from detectors.sos import SosRule
from detectors.vitals import VitalsRule
from eldercare.domain import (
    AlertKind,
    FieldValue,
    Reading,
    Severity,
    Stream,
    Transition,
    TransitionAction,
)
from eldercare.registry_model import Site
from tests.helpers.detectors import (
    HOME_DEVICES,
    context,
    home_site,
    kinds_actions,
    local_ts,
    reading,
    replay,
)

SH = "Asia/Shanghai"
BERLIN = "Europe/Berlin"
RAISE, CLEAR, UPDATE = TransitionAction.RAISE, TransitionAction.CLEAR, TransitionAction.UPDATE


def _bed_exit(
    tz: str, day: tuple[int, int, int], hour: int, minute: int, out_minutes: float
) -> tuple[list[Transition], float]:
    site = home_site(tz)
    rule = BedExitRule(context(site))
    y, m, d = day
    left = local_ts(tz, y, m, d, hour, minute)
    readings = [
        reading(site, "bed-1", Stream.OCCUPANCY, left - 3600, occupied=True),
        reading(site, "bed-1", Stream.OCCUPANCY, left, occupied=False),
        reading(site, "pir-living", Stream.MOTION, left + 20, motion=True),  # up and about
        reading(site, "bed-1", Stream.OCCUPANCY, left + out_minutes * 60, occupied=True),
    ]
    return replay(rule, readings, left + 6 * 3600), left


@pytest.mark.parametrize("tz", [SH, BERLIN])
def test_bed_exit_29_minutes_is_fine_31_raises(tz: str) -> None:
    out, _ = _bed_exit(tz, (2024, 5, 10), 2, 0, 29)
    assert out == []
    out, left = _bed_exit(tz, (2024, 5, 10), 2, 0, 31)
    assert kinds_actions(out) == [("bed_exit_no_return", "raise"), ("bed_exit_no_return", "clear")]
    assert out[0].ts == left + 30 * 60
    assert out[0].severity == Severity.HIGH
    assert out[0].details["left_bed_at"] == "02:00"
    assert out[1].details["minutes_out_of_bed"] == 31.0
    assert out[0].evidence[0].summary == "bed empty"


@pytest.mark.parametrize("tz", [SH, BERLIN])
def test_bed_exit_window_crosses_midnight(tz: str) -> None:
    # 23:50 out → limit at 00:20 next day, inside the 22:00–06:00 window.
    out, left = _bed_exit(tz, (2024, 5, 10), 23, 50, 90)
    assert [t.action for t in out] == [RAISE, UPDATE, UPDATE, CLEAR]
    assert out[0].ts == left + 1800 and out[1].ts == left + 3600
    # Out of bed at 05:40 to start the day: the limit (06:10) falls outside the window.
    out, _ = _bed_exit(tz, (2024, 5, 10), 5, 40, 120)
    assert out == []
    # Up at 21:00 (before the window): nothing.
    out, _ = _bed_exit(tz, (2024, 5, 10), 21, 0, 40)
    assert out == []


def test_bed_exit_across_dst_change_berlin() -> None:
    # 31 Mar 2024: clocks jump 02:00 → 03:00 in Berlin. Out at 01:50 local; 30 real minutes
    # later the wall clock reads 03:20, still in the night window.
    out, left = _bed_exit(BERLIN, (2024, 3, 31), 1, 50, 45)
    assert [t.action for t in out] == [RAISE, CLEAR]
    assert out[0].ts - left == 1800
    assert out[0].details["left_bed_at"] == "01:50"
    # Autumn (27 Oct 2024): 05:20 local is still night despite the extra hour at 02:00–03:00.
    out, left = _bed_exit(BERLIN, (2024, 10, 27), 5, 20, 60)
    assert [t.action for t in out] == [RAISE, UPDATE, CLEAR]


def test_night_window_is_local_to_the_site() -> None:
    # The same instant is 02:00 in Shanghai and 19:00 (the day before) in Berlin.
    instant = local_ts(SH, 2024, 5, 10, 2, 0)
    results = {}
    for tz in (SH, BERLIN):
        site = home_site(tz)
        rule = BedExitRule(context(site))
        rs = [
            reading(site, "bed-1", Stream.OCCUPANCY, instant - 60, occupied=True),
            reading(site, "bed-1", Stream.OCCUPANCY, instant, occupied=False),
            reading(site, "pir-living", Stream.MOTION, instant + 20, motion=True),
        ]
        results[tz] = replay(rule, rs, instant + 45 * 60)
    assert len(results[SH]) == 1 and results[BERLIN] == []


def test_bed_exit_threshold_overridable_per_resident() -> None:
    site = home_site(SH, resident_overrides={"bed_exit_no_return": {"minutes": 10}})
    rule = BedExitRule(context(site))
    left = local_ts(SH, 2024, 5, 10, 2, 0)
    rs = [
        reading(site, "bed-1", Stream.OCCUPANCY, left - 60, occupied=True),
        reading(site, "bed-1", Stream.OCCUPANCY, left, occupied=False),
        reading(site, "pir-living", Stream.MOTION, left + 20, motion=True),
    ]
    out = replay(rule, rs, left + 11 * 60)
    assert [t.ts - left for t in out] == [600]


def _bathroom(tz: str, hour: int, minutes_inside: float) -> tuple[list[Transition], float]:
    site = home_site(tz)
    rule = BathroomRule(context(site))
    t = local_ts(tz, 2024, 5, 10, hour, 0)
    rs = [
        reading(site, "pir-living", Stream.MOTION, t - 60, motion=True),
        reading(site, "door-bath", Stream.CONTACT, t, open=True),
        reading(site, "door-bath", Stream.CONTACT, t + 5, open=False),
        reading(site, "flush-1", Stream.FLUSH, t + 120, flushed=True),
        reading(site, "door-bath", Stream.CONTACT, t + minutes_inside * 60, open=True),
        reading(site, "pir-living", Stream.MOTION, t + minutes_inside * 60 + 30, motion=True),
    ]
    return replay(rule, rs, t + 4 * 3600), t


def test_bathroom_night_and_day_limits() -> None:
    assert _bathroom(SH, 3, 14)[0] == []
    out, t = _bathroom(SH, 3, 16)
    assert [(x.action, x.ts - t) for x in out] == [(RAISE, 900), (CLEAR, 960)]
    assert _bathroom(SH, 14, 44)[0] == []
    out, t = _bathroom(SH, 14, 46)
    assert [(x.action, x.ts - t) for x in out] == [(RAISE, 2700), (CLEAR, 2760)]
    assert out[0].room_id == "bathroom"


def test_bathroom_stay_ends_with_movement_elsewhere_even_with_door_left_open() -> None:
    site = home_site(SH)
    rule = BathroomRule(context(site))
    t = local_ts(SH, 2024, 5, 10, 10, 0)
    rs = [
        reading(site, "pir-bath", Stream.MOTION, t, motion=True),
        reading(site, "pir-kitchen", Stream.MOTION, t + 600, motion=True),
    ]
    assert replay(rule, rs, t + 5 * 3600) == []


def test_fall_raises_at_once_and_maybe_fall_needs_stillness() -> None:
    site = home_site(SH)
    t = local_ts(SH, 2024, 5, 10, 10, 0)
    out = replay(FallRule(context(site)), [reading(site, "radar-1", Stream.FALL, t, status="fall")])
    assert [(x.action, x.ts, x.severity) for x in out] == [(RAISE, t, Severity.CRITICAL)]

    # maybe_fall then movement in the same room at 59 s: not a fall.
    rs = [
        reading(site, "radar-1", Stream.FALL, t, status="maybe_fall"),
        reading(site, "pir-bath", Stream.MOTION, t + 59, motion=True),
    ]
    assert replay(FallRule(context(site)), rs, t + 600) == []
    # maybe_fall then movement only in another room: still a fall, raised at 60 s.
    rs = [
        reading(site, "radar-1", Stream.FALL, t, status="maybe_fall"),
        reading(site, "pir-kitchen", Stream.MOTION, t + 30, motion=True),
    ]
    out = replay(FallRule(context(site)), rs, t + 61)
    assert [(x.action, x.ts) for x in out] == [(RAISE, t + 60)]


def test_fall_repeated_reports_update_only_on_change() -> None:
    site = home_site(SH)
    t = local_ts(SH, 2024, 5, 10, 10, 0)
    statuses = ["fall", "fall", "fall", "none", "fall", "maybe_fall", "maybe_fall"]
    rs = [reading(site, "radar-1", Stream.FALL, t + i, status=s) for i, s in enumerate(statuses)]
    out = replay(FallRule(context(site)), rs)
    assert [(x.action, x.ts - t, x.details["status"]) for x in out] == [
        (RAISE, 0, "fall"),
        (UPDATE, 4, "fall"),
        (UPDATE, 5, "maybe_fall"),
    ]


def test_fall_clears_after_radar_none_for_a_while_or_walking_away() -> None:
    site = home_site(SH)
    t = local_ts(SH, 2024, 5, 10, 10, 0)
    rs = [
        reading(site, "radar-1", Stream.FALL, t, status="fall"),
        reading(site, "pir-bath", Stream.MOTION, t + 30, motion=True),  # same room: no clear
        reading(site, "radar-1", Stream.FALL, t + 120, status="none"),
    ]
    out = replay(FallRule(context(site)), rs, t + 120 + 599)
    assert [x.action for x in out] == [RAISE]
    out = replay(FallRule(context(site)), rs, t + 120 + 600)
    assert [(x.action, x.ts) for x in out] == [(RAISE, t), (CLEAR, t + 720)]
    rs.append(reading(site, "pir-kitchen", Stream.MOTION, t + 200, motion=True))
    out = replay(FallRule(context(site)), rs, t + 3600)
    assert [(x.action, x.ts) for x in out] == [(RAISE, t), (CLEAR, t + 200)]


def test_sos_raise_repeat_update_then_condition_clears() -> None:
    site = home_site(SH)
    t = local_ts(SH, 2024, 5, 10, 10, 0)
    rs = [
        reading(site, "sos-1", Stream.SOS, t, pressed=True),
        reading(site, "sos-1", Stream.SOS, t + 30, pressed=True),
    ]
    out = replay(SosRule(context(site)), rs, t + 3600)
    assert [(x.action, x.ts) for x in out] == [(RAISE, t), (UPDATE, t + 30), (CLEAR, t + 150)]
    assert out[0].severity == Severity.CRITICAL and out[1].details["presses"] == 2


def _inactivity_site(**overrides: Any) -> Site:
    return home_site(SH, resident_overrides={"inactivity": overrides} if overrides else None)


def test_inactivity_default_three_hours_before_learning() -> None:
    site = _inactivity_site()
    t = local_ts(SH, 2024, 5, 10, 9, 0)
    rule = InactivityRule(context(site))
    out = replay(
        rule, [reading(site, "pir-kitchen", Stream.MOTION, t, motion=True)], t + 3 * 3600 - 1
    )
    assert out == []
    out = rule.advance(t + 3 * 3600)
    assert [(x.action, x.ts) for x in out] == [(RAISE, t + 3 * 3600)]
    assert out[0].details["learned"] is False and out[0].details["threshold_minutes"] == 180.0
    out = rule.update(reading(site, "pir-living", Stream.MOTION, t + 4 * 3600, motion=True))
    assert [x.action for x in out] == [CLEAR]


def test_inactivity_suppressed_while_away() -> None:
    site = _inactivity_site()
    t = local_ts(SH, 2024, 5, 10, 9, 0)
    rs = [
        reading(site, "pir-living", Stream.MOTION, t, motion=True),
        reading(site, "door-front", Stream.CONTACT, t + 60, open=True),
        reading(site, "door-front", Stream.CONTACT, t + 65, open=False),
        # back at 19:00 after ten silent hours: no inactivity, no alert on return
        reading(site, "door-front", Stream.CONTACT, t + 10 * 3600, open=True),
        reading(site, "pir-living", Stream.MOTION, t + 10 * 3600 + 30, motion=True),
    ]
    assert replay(InactivityRule(context(site)), rs, t + 10 * 3600 + 60) == []
    # Without the door the same silence raises.
    out = replay(InactivityRule(context(site)), rs[:1], t + 10 * 3600)
    assert [x.action for x in out] == [RAISE]


def test_inactivity_not_while_asleep_in_bed() -> None:
    site = _inactivity_site()
    t = local_ts(SH, 2024, 5, 10, 22, 0)
    rs = [
        reading(site, "bed-1", Stream.OCCUPANCY, t - 60, occupied=False),
        reading(site, "bed-1", Stream.OCCUPANCY, t, occupied=True),
    ]
    assert replay(InactivityRule(context(site)), rs, t + 9 * 3600) == []


def _learn_two_hour_quiets(**overrides: object) -> InactivityRule:
    rule = InactivityRule(context(_inactivity_site(learn_days=3, **overrides)))
    site = rule.ctx.site
    for day in range(10, 14):  # each day: a 2-hour quiet from 10:00
        t = local_ts(SH, 2024, 5, day, 10, 0)
        for ts in (t - 3600, t, t + 2 * 3600, t + 2 * 3600 + 600):
            rule.update(reading(site, "pir-kitchen", Stream.MOTION, ts, motion=True))
    return rule


def test_inactivity_learns_usual_gaps_bounded() -> None:
    rule = _learn_two_hour_quiets(min_samples=4)
    limit, learned = rule.limit_s("res-1", local_ts(SH, 2024, 5, 14, 10, 0))
    assert learned and limit == pytest.approx(2 * 3600 * 2.0)  # twice the longest usual gap
    # Bounded below: a resident who is never quiet gets at least min_hours.
    rule = _learn_two_hour_quiets(min_samples=4, margin=1.0, min_hours=2.5)
    assert rule.limit_s("res-1", local_ts(SH, 2024, 5, 14, 10, 0))[0] == 2.5 * 3600
    # An hour with too little data keeps the default.
    rule = _learn_two_hour_quiets(min_samples=9)
    assert rule.limit_s("res-1", local_ts(SH, 2024, 5, 14, 10, 0)) == (3 * 3600, False)


def test_inactivity_without_bed_sensor_presumes_sleep_only_where_people_sleep() -> None:
    devices = [d for d in HOME_DEVICES if d["kind"] != "bed"]
    site = home_site(SH, devices=devices)
    night = local_ts(SH, 2024, 5, 10, 23, 30)
    # A night toilet visit, then nothing till morning: back in bed (not_up's business).
    rs = [reading(site, "pir-bath", Stream.MOTION, night, motion=True)]
    assert replay(InactivityRule(context(site)), rs, night + 8 * 3600) == []
    # Quiet that began in the kitchen at night is judged.
    rs = [reading(site, "pir-kitchen", Stream.MOTION, night, motion=True)]
    out = replay(InactivityRule(context(site)), rs, night + 8 * 3600)
    assert [(x.action, x.ts) for x in out] == [(RAISE, night + 3 * 3600)]
    # Awake at 06:30 in the bedroom, not yet up for the day: still presumed in bed ...
    dawn = local_ts(SH, 2024, 5, 11, 6, 30)
    rs = [reading(site, "pir-bed", Stream.MOTION, dawn, motion=True)]
    assert replay(InactivityRule(context(site)), rs, dawn + 4 * 3600) == []
    # ... but after getting up (kitchen at 07:00), a quiet in the bedroom by day is judged.
    rs = [
        reading(site, "pir-kitchen", Stream.MOTION, dawn + 1800, motion=True),
        reading(site, "pir-bed", Stream.MOTION, dawn + 3600, motion=True),
    ]
    out = replay(InactivityRule(context(site)), rs, dawn + 5 * 3600)
    assert [(x.action, x.ts) for x in out] == [(RAISE, dawn + 4 * 3600)]


def test_bathroom_door_fumbled_on_entry_and_cistern_refill_after_leaving() -> None:
    site = home_site(SH)
    t = local_ts(SH, 2024, 5, 10, 3, 0)
    rs = [
        reading(site, "pir-living", Stream.MOTION, t - 60, motion=True),
        reading(site, "door-bath", Stream.CONTACT, t, open=True),
        reading(site, "door-bath", Stream.CONTACT, t + 5, open=False),
        reading(site, "door-bath", Stream.CONTACT, t + 10, open=True),  # reopened: same passage
        reading(site, "door-bath", Stream.CONTACT, t + 15, open=False),
        reading(site, "flush-1", Stream.FLUSH, t + 60, flushed=True),
        reading(site, "door-bath", Stream.CONTACT, t + 120, open=True),  # out
        reading(site, "flush-1", Stream.FLUSH, t + 150, flushed=True),  # the cistern refilling
    ]
    assert replay(BathroomRule(context(site)), rs, t + 3600) == []
    # Without the refill allowance the late flush would start a stay that never ends.
    site2 = home_site(SH, site_overrides={"bathroom_too_long": {"flush_after_exit_s": 0}})
    rs2 = [reading(site2, r.device_id, r.stream, r.ts, **r.fields) for r in rs]
    out = replay(BathroomRule(context(site2)), rs2, t + 3600)
    assert [(x.action, x.ts) for x in out] == [(RAISE, t + 150 + 900)]


def test_a_cabinet_opened_in_the_bathroom_is_someone_there_not_the_way_out() -> None:
    """She walks into the bathroom at night, opens the cabinet, and nothing more is seen:
    the stay is raised at the night limit. Read as the room's door, the cabinet's opening
    ended the stay ("left by the door") and a collapse after it was never raised."""
    cabinet = {"id": "cabinet-bath", "kind": "door", "room": "bathroom"}  # on furniture
    t = local_ts(SH, 2024, 5, 10, 3, 0)

    site = home_site(SH, devices=[*HOME_DEVICES, cabinet])
    rs = [
        reading(site, "pir-living", Stream.MOTION, t - 60, motion=True),
        reading(site, "pir-bath", Stream.MOTION, t, motion=True),
        reading(site, "cabinet-bath", Stream.CONTACT, t + 30, open=True),
        reading(site, "cabinet-bath", Stream.CONTACT, t + 40, open=False),
    ]
    out = replay(BathroomRule(context(site)), rs, t + 3600)
    assert [(x.action, x.ts - t) for x in out] == [(RAISE, 900)]

    # A bathroom whose only other sensor is its door: walked in, door shut behind her,
    # the cabinet opened and shut, then nothing. Timed from the entry, not ended.
    door_only = home_site(
        SH,
        devices=[
            {"id": "pir-living", "kind": "motion", "room": "living"},
            {"id": "door-bath", "kind": "door", "room": "bathroom", "room_door": True},
            cabinet,
            {"id": "door-front", "kind": "door", "room": "entrance", "outer_door": True},
        ],
    )
    rs = [
        reading(door_only, "pir-living", Stream.MOTION, t - 60, motion=True),
        reading(door_only, "door-bath", Stream.CONTACT, t, open=True),
        reading(door_only, "door-bath", Stream.CONTACT, t + 5, open=False),
        reading(door_only, "cabinet-bath", Stream.CONTACT, t + 60, open=True),
        reading(door_only, "cabinet-bath", Stream.CONTACT, t + 70, open=False),
    ]
    out = replay(BathroomRule(context(door_only)), rs, t + 3600)
    assert [(x.action, x.ts - t) for x in out] == [(RAISE, 900)]
    # Her leaving by the room's door still ends the stay.
    rs.append(reading(door_only, "door-bath", Stream.CONTACT, t + 300, open=True))
    assert replay(BathroomRule(context(door_only)), rs, t + 3600) == []


def test_night_door_exit_raises_after_ten_quiet_minutes_only_at_night() -> None:
    site = home_site(SH)
    t = local_ts(SH, 2024, 5, 10, 3, 0)
    rs = [reading(site, "door-front", Stream.CONTACT, t, open=True)]
    out = replay(NightDoorExitRule(context(site)), rs, t + 599)
    assert out == []
    out = replay(NightDoorExitRule(context(site)), rs, t + 601)
    assert [(x.action, x.ts) for x in out] == [(RAISE, t + 600)]
    # Coming home at night: movement indoors within 10 min.
    rs2 = [*rs, reading(site, "pir-living", Stream.MOTION, t + 120, motion=True)]
    assert replay(NightDoorExitRule(context(site)), rs2, t + 3600) == []
    # By day the door means nothing to this rule.
    td = local_ts(SH, 2024, 5, 10, 10, 0)
    rs3 = [reading(site, "door-front", Stream.CONTACT, td, open=True)]
    assert replay(NightDoorExitRule(context(site)), rs3, td + 3600) == []


def test_not_returned_by_night_or_after_twelve_hours() -> None:
    site = home_site(SH)
    t = local_ts(SH, 2024, 5, 10, 15, 0)
    rs = [
        reading(site, "pir-living", Stream.MOTION, t - 60, motion=True),
        reading(site, "door-front", Stream.CONTACT, t, open=True),
        reading(site, "door-front", Stream.CONTACT, t + 5, open=False),
        reading(site, "door-front", Stream.CONTACT, t + 8 * 3600, open=True),
    ]
    out = replay(NotReturnedRule(context(site)), rs, t + 9 * 3600)
    night = local_ts(SH, 2024, 5, 10, 22, 0)
    assert [(x.action, x.ts) for x in out] == [(RAISE, night), (CLEAR, t + 8 * 3600)]
    # Leaving at 08:00 and away for 13 hours: the 12-hour limit comes first (20:00).
    t = local_ts(SH, 2024, 5, 10, 8, 0)
    rs = [reading(site, "door-front", Stream.CONTACT, t, open=True)]
    out = replay(NotReturnedRule(context(site)), rs, t + 13 * 3600)
    assert [(x.action, x.ts) for x in out] == [(RAISE, t + 12 * 3600)]


def test_not_up_by_ten_before_learning() -> None:
    site = home_site(SH)
    night = local_ts(SH, 2024, 5, 10, 22, 0)
    rs = [reading(site, "pir-bed", Stream.MOTION, night, motion=True)]
    rule = NotUpRule(context(site))
    out = replay(rule, rs, local_ts(SH, 2024, 5, 11, 9, 59))
    assert out == []
    ten = local_ts(SH, 2024, 5, 11, 10, 0)
    out = rule.advance(ten)
    assert [(x.action, x.ts) for x in out] == [(RAISE, ten)]
    out = rule.update(reading(site, "pir-kitchen", Stream.MOTION, ten + 600, motion=True))
    assert [(x.action, x.details["minutes_late"]) for x in out] == [(CLEAR, 10.0)]
    # A toilet visit is not getting up.
    rule = NotUpRule(context(site))
    rs2 = [*rs, reading(site, "pir-bath", Stream.MOTION, ten - 3600, motion=True)]
    assert [x.action for x in replay(rule, rs2, ten)] == [RAISE]


def test_vitals_out_of_range_longer_than_five_minutes() -> None:
    site = home_site(SH)
    t = local_ts(SH, 2024, 5, 10, 2, 0)

    def v(dt: float, hr: float) -> Reading:
        return reading(site, "vitals-1", Stream.VITALS, t + dt, heart_rate=hr, breathing_rate=14.0)

    assert replay(VitalsRule(context(site)), [v(0, 130), v(299, 131), v(330, 70)]) == []
    out = replay(VitalsRule(context(site)), [v(0, 130), v(301, 131), v(330, 70)])
    assert [(x.action, x.ts) for x in out] == [(RAISE, t + 301), (CLEAR, t + 330)]
    assert out[0].details["problems"] == ["heart_rate 131bpm > 120"]


def test_device_offline_after_twice_the_interval_and_on_lwt_without_site_offline() -> None:
    # With site_offline off, nothing waits for the site to be heard: a device is raised at
    # its deadline, or at once on availability offline (test_detectors_silence.py has the
    # default, where device_offline waits for the site to speak).
    site = home_site(SH, site_overrides={"site_offline": {"enabled": False}})
    # bed-1 reports every 600 s; others default to 3600 s
    t = local_ts(SH, 2024, 5, 10, 2, 0)
    rule = DeviceOfflineRule(context(site))
    rs = [reading(site, d.id, Stream.HEARTBEAT, t) for d in site.devices]
    out = replay(rule, rs, t + 1199)
    assert out == []
    out = rule.advance(t + 1200)
    assert [(x.action, x.device_id, x.ts) for x in out] == [(RAISE, "bed-1", t + 1200)]
    out = rule.update(reading(site, "pir-kitchen", Stream.AVAILABILITY, t + 1300, online=False))
    assert [(x.action, x.details["devices"]) for x in out] == [(UPDATE, ["bed-1", "pir-kitchen"])]
    out = rule.update(reading(site, "bed-1", Stream.HEARTBEAT, t + 1400))
    out += rule.update(reading(site, "pir-kitchen", Stream.AVAILABILITY, t + 1500, online=True))
    assert [x.action for x in out] == [UPDATE, CLEAR]


def test_site_offline_when_every_device_is_silent() -> None:
    devices = [
        {"id": "pir-living", "kind": "motion", "room": "living", "report_interval_s": 600},
        {
            "id": "door-front",
            "kind": "door",
            "room": "entrance",
            "outer_door": True,
            "report_interval_s": 900,
        },
    ]
    site = home_site(SH, devices=devices)
    t = local_ts(SH, 2024, 5, 10, 2, 0)
    rule = SiteOfflineRule(context(site))
    rs = [
        reading(site, "pir-living", Stream.HEARTBEAT, t),
        reading(site, "door-front", Stream.HEARTBEAT, t + 100),
    ]
    out = replay(rule, rs, t + 100 + 1800 - 1)
    assert out == []
    out = rule.advance(t + 100 + 1800)
    assert [(x.action, x.ts, x.kind) for x in out] == [(RAISE, t + 1900, AlertKind.SITE_OFFLINE)]
    out = rule.update(reading(site, "pir-living", Stream.MOTION, t + 5000, motion=True))
    assert [x.action for x in out] == [CLEAR]


def test_low_battery_hysteresis() -> None:
    site = home_site(SH)
    t = local_ts(SH, 2024, 5, 10, 2, 0)
    levels = [16, 14, 16, 18, 19.9, 14, 20]
    rs = [
        reading(site, "pir-living", Stream.BATTERY, t + i, percent=p) for i, p in enumerate(levels)
    ]
    out = replay(LowBatteryRule(context(site)), rs)
    assert [(x.action, x.ts - t) for x in out] == [(RAISE, 1), (CLEAR, 6)]


def test_removed_device_leaves_a_device_alert_after_a_registry_edit() -> None:
    site = home_site(SH)
    t = local_ts(SH, 2024, 5, 10, 2, 0)
    rule = LowBatteryRule(context(site))
    out = rule.update(reading(site, "pir-kitchen", Stream.BATTERY, t, percent=5.0))
    assert [x.action for x in out] == [RAISE]
    edited = home_site(SH, devices=[d for d in HOME_DEVICES if d["id"] != "pir-kitchen"])
    rebuilt = LowBatteryRule(context(edited))
    rebuilt.restore(rule.snapshot())
    out = rebuilt.update(reading(edited, "pir-living", Stream.BATTERY, t + 60, percent=90.0))
    assert [(x.action, x.device_id, x.details["reason"]) for x in out] == [
        (CLEAR, "pir-kitchen", "device removed")
    ]


def _institution() -> Site:
    return Site.model_validate(
        {
            "id": "care-home",
            "kind": "institution",
            "name": "Care home",
            "organisation": "Institution/Floor 3",
            "timezone": SH,
            "rooms": [
                {"id": "r301", "kind": "bedroom"},
                {"id": "r302", "kind": "bedroom"},
                {"id": "corridor", "kind": "corridor"},
            ],
            "beds": [{"id": "b301", "room": "r301"}, {"id": "b302", "room": "r302"}],
            "residents": [
                {"id": "wang", "name": "Wang", "room": "r301", "bed": "b301"},
                {"id": "li", "name": "Li", "room": "r302", "bed": "b302"},
            ],
            "devices": [
                {"id": "bed-301", "kind": "bed", "bed": "b301"},
                {"id": "bed-302", "kind": "bed", "bed": "b302"},
                {"id": "pir-301", "kind": "motion", "room": "r301"},
                {"id": "pir-302", "kind": "motion", "room": "r302"},
                {"id": "pir-corridor", "kind": "motion", "room": "corridor"},
            ],
        }
    )


def _inst_reading(
    site: Site, device_id: str, stream: Stream, ts: float, **fields: FieldValue
) -> Reading:
    from eldercare.registry_index import ResolvedDevice

    device = site.device(device_id)
    assert device is not None
    resolved = ResolvedDevice(site, device)
    return Reading(
        site.id,
        device_id,
        stream,
        ts,
        dict(fields),
        room_id=resolved.room_id,
        resident_id=resolved.resident_id,
    )


def test_institution_rules_follow_each_residents_bed_and_room() -> None:
    site = _institution()
    t = local_ts(SH, 2024, 5, 10, 1, 0)
    rs = [
        _inst_reading(site, "bed-301", Stream.OCCUPANCY, t - 3600, occupied=True),
        _inst_reading(site, "bed-302", Stream.OCCUPANCY, t - 3600, occupied=True),
        _inst_reading(site, "bed-302", Stream.OCCUPANCY, t, occupied=False),
        _inst_reading(site, "pir-302", Stream.MOTION, t + 60, motion=True),
    ]
    out = replay(BedExitRule(context(site)), rs, t + 31 * 60)
    assert [(x.action, x.resident_id, x.room_id) for x in out] == [(RAISE, "li", "r302")]
    # Inactivity by day: Wang's room stays quiet, Li moves in hers; only Wang is raised.
    day = local_ts(SH, 2024, 5, 10, 9, 0)
    rs = [
        _inst_reading(site, "pir-301", Stream.MOTION, day, motion=True),
        _inst_reading(site, "pir-302", Stream.MOTION, day, motion=True),
        _inst_reading(site, "pir-302", Stream.MOTION, day + 2 * 3600, motion=True),
        _inst_reading(site, "pir-corridor", Stream.MOTION, day + 2.5 * 3600, motion=True),
    ]
    out = replay(InactivityRule(context(site)), rs, day + 3 * 3600 + 1)
    assert [(x.action, x.resident_id) for x in out] == [(RAISE, "wang")]


@pytest.mark.parametrize("day", [(2024, 3, 31), (2024, 10, 27)])
def test_not_up_deadline_is_local_ten_on_dst_change_days(day: tuple[int, int, int]) -> None:
    site = home_site(BERLIN)
    y, m, d = day
    evening = local_ts(BERLIN, y, m, d - 1, 22, 0)
    rule = NotUpRule(context(site))
    rule.update(reading(site, "pir-bed", Stream.MOTION, evening, motion=True))
    ten = local_ts(BERLIN, y, m, d, 10, 0)
    out = rule.advance(ten + 3600)
    assert [(x.action, x.ts) for x in out] == [(RAISE, ten)]
    assert out[0].details["deadline"] == "10:00"


def _couple_with_armchair() -> Site:
    site = home_site(SH, devices=[*HOME_DEVICES, {"id": "chair", "kind": "seat", "room": "living"}])
    doc = site.model_dump()
    doc["residents"] = [
        {"id": "res-1", "name": "Zhang", "room": "bedroom"},
        {"id": "res-2", "name": "Li", "room": "bedroom"},
    ]
    return Site.model_validate(doc)


def _lone_bathroom_sensor(
    before: Sequence[tuple[str, float, dict[str, bool]]], firings: int = 1
) -> list[tuple[TransitionAction, float]]:
    """A couple's home: the bathroom PIR fires at 01:00 (and `firings` times in all, every
    3 min), nothing else fires; `before` are (device, seconds before 01:00, fields) seen
    earlier."""
    site = _couple_with_armchair()
    t = local_ts(SH, 2024, 5, 10, 1, 0)
    stream = {"pir": Stream.MOTION, "chair": Stream.OCCUPANCY}
    rs = [reading(site, d, stream[d.split("-")[0]], t - ago, **f) for d, ago, f in before]
    rs += [
        reading(site, "pir-bath", Stream.MOTION, t + i * 180, motion=True) for i in range(firings)
    ]
    out = replay(BathroomRule(context(site)), rs, t + 3 * 3600)
    return [(x.action, x.ts - t) for x in out]


def test_a_bathroom_sensor_firing_with_nobody_seen_coming_is_held_to_the_day_limit() -> None:
    """At night, a bathroom sensor firing on its own with nobody up and about elsewhere in
    the 10 min before is not the night limit's certainty that a person walked in: held to
    the day limit (45 min). Before: raised at 15 min (ARAS house A's bathroom closet
    sensor chattering at night while both slept or sat)."""
    assert _lone_bathroom_sensor([("pir-kitchen", 2400, {"motion": True})]) == [(RAISE, 2700)]
    # Someone who walked, then sat down 5 min ago, is not on the way: the same.
    walked_then_sat = [
        ("chair", 3600, {"occupied": False}),
        ("pir-living", 300, {"motion": True}),
        ("chair", 290, {"occupied": True}),
    ]
    assert _lone_bathroom_sensor(walked_then_sat) == [(RAISE, 2700)]
    # Seen walking in the living room 2 min before: a person walked in, 15 min at night.
    assert _lone_bathroom_sensor([("pir-living", 120, {"motion": True})]) == [(RAISE, 900)]


def test_a_lone_bathroom_sensor_firing_again_is_timed_from_its_last_firing() -> None:
    """The same lone sensor firing again renews the same doubtful evidence; what would show
    someone lying there is its silence: 45 min from its last firing, and at the latest
    `unheralded_max_minutes` (90) from the start if it never stops. Before: raised 45 min
    from the first firing (ARAS house A's bathroom closet sensor firing every few minutes
    for over an hour with one resident on the couch and the other out)."""
    walked_long_ago = [("pir-kitchen", 2400, {"motion": True})]
    # Fires for 27 min (10 firings), then silence: 27 + 45 min.
    assert _lone_bathroom_sensor(walked_long_ago, firings=10) == [(RAISE, 27 * 60 + 2700)]
    # Fires every 3 min for 57 min and on: raised at 90 min from the start.
    assert _lone_bathroom_sensor(walked_long_ago, firings=20) == [(RAISE, 5400)]
    assert _lone_bathroom_sensor(walked_long_ago, firings=60) == [(RAISE, 5400)]
    # Someone seen walking there: a person, timed from the entry as always (15 min at night).
    seen_coming = [("pir-living", 120, {"motion": True})]
    assert _lone_bathroom_sensor(seen_coming, firings=20) == [(RAISE, 900)]


def test_a_second_bathroom_sensor_confirms_a_lone_start_as_a_person() -> None:
    site = home_site(SH)
    t = local_ts(SH, 2024, 5, 10, 1, 0)
    rs = [
        reading(site, "pir-bath", Stream.MOTION, t, motion=True),
        reading(site, "flush-1", Stream.FLUSH, t + 120, flushed=True),  # a person: night limit
    ]
    out = replay(BathroomRule(context(site)), rs, t + 3 * 3600)
    assert [(x.action, x.ts - t) for x in out] == [(RAISE, 900)]
