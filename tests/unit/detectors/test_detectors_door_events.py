"""Door contacts are events only when they open or change state: zigbee2mqtt repeats the
contact state in every state message, and devices report "closed" when they join."""

from __future__ import annotations

from typing import Any

from detectors.bathroom_too_long import BathroomRule
from detectors.inactivity import InactivityRule
from detectors.movement import MovementState, is_movement
from detectors.night_door_exit import NightDoorExitRule
from detectors.not_returned import NotReturnedRule
from detectors.settings import BathroomSettings, InactivitySettings
from eldercare.domain import Reading, Stream, TransitionAction
from eldercare.registry_model import Site
from tests.helpers.detectors import context, home_site, local_ts, reading, replay

SH = "Asia/Shanghai"
RAISE = TransitionAction.RAISE


def _closed_every_minute(site: Site, device: str, start: float, minutes: int) -> list[Reading]:
    return [
        reading(site, device, Stream.CONTACT, start + 60 * i, open=False) for i in range(minutes)
    ]


def test_contact_is_movement_only_on_opening_or_change() -> None:
    site = home_site(SH)
    state = MovementState()
    t = local_ts(SH, 2024, 5, 10, 2, 0)
    seq = [False, False, True, True, False, False, True]
    got = [
        is_movement(reading(site, "door-front", Stream.CONTACT, t + i, open=v), state)
        for i, v in enumerate(seq)
    ]
    assert got == [False, False, True, False, True, False, True]
    # A device whose first report is "open" has opened.
    assert is_movement(reading(site, "door-bath", Stream.CONTACT, t, open=True), state)


def test_repeated_closed_reports_at_night_are_no_door_exit_and_no_absence() -> None:
    site = home_site(SH)
    t = local_ts(SH, 2024, 5, 10, 1, 0)
    rs = [reading(site, "pir-bed", Stream.MOTION, t - 60, motion=True)]
    rs += _closed_every_minute(site, "door-front", t, 180)
    end = t + 4 * 3600
    assert replay(NightDoorExitRule(context(site)), rs, end) == []
    assert replay(NotReturnedRule(context(site)), rs, end) == []
    rule = InactivityRule(context(site))
    replay(rule, rs, end)
    assert not rule.picture.is_away(end)
    assert rule.picture.door_evidence() is None


def test_real_exit_still_raises_and_repeated_closed_reports_do_not_clear_it() -> None:
    site = home_site(SH)
    t = local_ts(SH, 2024, 5, 11, 2, 0)
    rs = [
        reading(site, "pir-bed", Stream.MOTION, t - 60, motion=True),
        reading(site, "door-front", Stream.CONTACT, t, open=True),
        reading(site, "door-front", Stream.CONTACT, t + 5, open=False),
    ]
    rs += _closed_every_minute(site, "door-front", t + 60, 40)
    out = replay(NightDoorExitRule(context(site)), rs, t + 3600)
    assert [(x.action, x.ts - t) for x in out] == [(RAISE, 600)]


def test_repeated_closed_reports_do_not_count_as_activity_for_inactivity() -> None:
    site = home_site(SH)
    t = local_ts(SH, 2024, 5, 10, 10, 0)
    rs = [reading(site, "pir-living", Stream.MOTION, t, motion=True)]
    rs += _closed_every_minute(site, "door-bath", t + 60, 300)
    limit = context(site).settings("inactivity", InactivitySettings).default_hours * 3600
    out = replay(InactivityRule(context(site)), rs, t + 6 * 3600)
    assert [(x.action, x.ts - t) for x in out] == [(RAISE, limit)]


_DOOR_ONLY: list[dict[str, Any]] = [
    {"id": "pir-living", "kind": "motion", "room": "living"},
    {"id": "door-bath", "kind": "door", "room": "bathroom", "room_door": True},
    {"id": "door-front", "kind": "door", "room": "entrance", "outer_door": True},
]


def test_door_only_bathroom_repeated_closed_reports_do_not_restart_the_timer() -> None:
    site = home_site(SH, devices=_DOOR_ONLY)
    t = local_ts(SH, 2024, 5, 10, 14, 0)
    rs = [
        reading(site, "pir-living", Stream.MOTION, t - 60, motion=True),
        reading(site, "door-bath", Stream.CONTACT, t, open=True),
        reading(site, "door-bath", Stream.CONTACT, t + 5, open=False),
    ]
    rs += _closed_every_minute(site, "door-bath", t + 60, 120)
    limit = context(site).settings("bathroom_too_long", BathroomSettings).day_minutes * 60
    out = replay(BathroomRule(context(site)), rs, t + 3 * 3600)
    assert [(x.action, x.ts - t) for x in out] == [(RAISE, limit)]
