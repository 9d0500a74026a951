"""The family portal's story rules as pure functions: state sentence, outings, night
bathroom visits, got up. No I/O; events are built by hand."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from eldercare.registry_model import RegistryDocument
from gateway.activity import (
    ActivityEvent,
    day_timeline,
    is_night,
    night_window,
    resident_state,
    without_motion_repeats,
)
from tests.helpers.gateway import REGISTRY

SITE = RegistryDocument.model_validate(REGISTRY).sites[0]
ZONE = ZoneInfo("Asia/Shanghai")


def at(hh: int, mm: int) -> float:
    return datetime(2026, 3, 10, hh, mm, tzinfo=ZONE).timestamp()


def move(ts: float, room: str) -> ActivityEvent:
    device = {"kitchen": "hh401-pir-k", "bathroom": "hh401-pir-b", "bedroom": "hh401-pir-bed"}
    return ActivityEvent(ts, "motion", True, room, device[room])


def bed(ts: float, occupied: bool) -> ActivityEvent:
    return ActivityEvent(ts, "occupancy", occupied, "bedroom", "hh401-bed")


def door(ts: float, is_open: bool = True) -> ActivityEvent:
    return ActivityEvent(ts, "contact", is_open, "entrance", "hh401-door")


def test_in_bed_since_she_lay_down() -> None:
    events = [move(at(22, 30), "bathroom"), move(at(22, 39), "bedroom"), bed(at(22, 40), True)]
    state = resident_state(SITE, events, now=at(23, 30))
    assert (state.state, state.since) == ("in_bed", at(22, 40))


def test_just_got_up_is_at_home_in_the_bedroom() -> None:
    """Out of bed and no other sensor yet: at home, last active in the bedroom (not
    "no activity data")."""
    events = [bed(at(6, 40), False)]
    state = resident_state(SITE, events, now=at(6, 42))
    assert (state.state, state.last_active_at, state.last_active_room) == (
        "at_home",
        at(6, 40),
        "bedroom",
    )


def test_out_after_the_door_with_no_movement_since() -> None:
    events = [move(at(9, 5), "kitchen"), door(at(9, 12)), door(at(9, 13), False)]
    assert resident_state(SITE, events, now=at(9, 20)).state == "at_home"  # too soon to say
    state = resident_state(SITE, events, now=at(10, 0))
    assert (state.state, state.since) == ("out", at(9, 12))
    back = [*events, door(at(10, 30)), move(at(10, 31), "kitchen")]
    state = resident_state(SITE, back, now=at(10, 40))
    assert (state.state, state.last_active_room) == ("at_home", "kitchen")


def test_a_door_opened_for_a_visitor_is_not_an_outing() -> None:
    events = [door(at(15, 0)), move(at(15, 2), "kitchen"), move(at(15, 20), "kitchen")]
    kinds = [i.kind for i in day_timeline(SITE, events, now=at(16, 0))]
    assert "went_out" not in kinds


def test_walking_out_past_the_hall_sensor_is_still_an_outing() -> None:
    events = [door(at(9, 12)), move(at(9, 12) + 20, "bedroom"), door(at(11, 0))]
    items = day_timeline(SITE, events, now=at(12, 0))
    outing = next(i for i in items if i.kind == "went_out")
    assert (outing.at, outing.until) == (at(9, 12), at(11, 0))


def test_still_out_has_no_end_yet() -> None:
    items = day_timeline(SITE, [door(at(18, 0))], now=at(19, 0))
    assert [(i.kind, i.until) for i in items] == [("went_out", None)]


def test_night_bathroom_visits_are_counted_once_each() -> None:
    events = [
        move(at(1, 10), "bathroom"),
        move(at(1, 14), "bathroom"),  # one visit
        move(at(3, 40), "bathroom"),  # another
        move(at(14, 0), "bathroom"),  # daytime: not a night visit
    ]
    night = [i for i in day_timeline(SITE, events, now=at(15, 0)) if i.kind == "night_bathroom"]
    assert [i.at for i in night] == [at(1, 10), at(3, 40)]


def test_got_up_is_the_first_bed_exit_after_five() -> None:
    events = [bed(at(2, 0), False), bed(at(2, 10), True), bed(at(6, 35), False)]
    got_up = [i for i in day_timeline(SITE, events, now=at(8, 0)) if i.kind == "got_up"]
    assert [i.at for i in got_up] == [at(6, 35)]


def test_a_cached_motion_repeat_after_the_door_is_not_being_home() -> None:
    """zigbee2mqtt repeats the hall PIR's `occupancy: true` with a battery report 10 s
    after the front door closed: the same detection, so she went out. A real new
    detection (after a `false`, or past the blind time) still counts."""
    walk = move(at(9, 11), "kitchen")
    repeat = ActivityEvent(walk.ts + 40, "motion", True, "kitchen", "hh401-pir-k")
    events = [walk, door(at(9, 11) + 20), door(at(9, 11) + 30, False), repeat]
    assert without_motion_repeats(events) == events[:3]
    state = resident_state(SITE, without_motion_repeats(events), now=at(10, 0))
    assert (state.state, state.since) == ("out", at(9, 11) + 20)
    off = ActivityEvent(walk.ts + 35, "motion", False, "kitchen", "hh401-pir-k")
    assert without_motion_repeats([walk, off, repeat]) == [walk, off, repeat]
    later = ActivityEvent(walk.ts + 60, "motion", True, "kitchen", "hh401-pir-k")
    assert without_motion_repeats([walk, later]) == [walk, later]


def test_night_bathroom_visits_follow_the_sites_own_night_window() -> None:
    late = SITE.model_copy(
        update={"detectors": {"bathroom_too_long": {"night_start": "23:30", "night_end": "05:00"}}}
    )
    events = [
        move(at(0, 10), "bathroom"),  # night by either window
        move(at(5, 30), "bathroom"),  # night by the default 22:00-06:00 only
        move(at(23, 0), "bathroom"),  # likewise
    ]
    default = [
        i.at for i in day_timeline(SITE, events, now=at(23, 50)) if i.kind == "night_bathroom"
    ]
    assert default == [at(0, 10), at(5, 30), at(23, 0)]
    own = [i.at for i in day_timeline(late, events, now=at(23, 50)) if i.kind == "night_bathroom"]
    assert own == [at(0, 10)]


def test_a_night_window_the_detectors_refuse_falls_back_to_the_default() -> None:
    bad = SITE.model_copy(update={"detectors": {"bathroom_too_long": {"night_begins": "21:00"}}})
    assert night_window(bad, "bathroom_too_long") == ("22:00", "06:00")
    assert is_night(at(21, 30), ZONE, night_window(bad, "bathroom_too_long")) is False
