"""Leaving past a hall sensor (`ResidentPicture.left_home_since`, read by `inactivity`):
movement in the outer door's own room between the door events of a passage out is
whoever goes through the door, not someone staying in (fake clock)."""

from __future__ import annotations

from detectors.inactivity import InactivityRule
from detectors.not_returned import NotReturnedRule
from detectors.resident_state import ResidentStateModel
from eldercare.domain import Reading, Stream, TransitionAction
from eldercare.registry_model import Site
from tests.helpers.detectors import HOME_DEVICES, context, home_site, local_ts, reading, replay

TZ = "Europe/Amsterdam"
RAISE = TransitionAction.RAISE


def _site() -> Site:
    """The test home with a motion sensor in the entrance, beside the front door."""
    return home_site(
        TZ, devices=[*HOME_DEVICES, {"id": "pir-hall", "kind": "motion", "room": "entrance"}]
    )


def _at(hour: int, minute: int = 0, second: float = 0.0, day: int = 10) -> float:
    return local_ts(TZ, 2024, 5, day, hour, minute, second)


def _going_out(site: Site, *, hall_after_door: bool = False) -> list[Reading]:
    """In the kitchen at 14:00; at 14:30 the front door opens, the hall sensor sees her
    pass, the door shuts (and, with `hall_after_door`, the hall sensor fires again after
    the door has shut)."""
    rs = [
        reading(site, "pir-kitchen", Stream.MOTION, _at(14), motion=True),
        reading(site, "door-front", Stream.CONTACT, _at(14, 30), open=True),
        reading(site, "pir-hall", Stream.MOTION, _at(14, 30, 20), motion=True),
        reading(site, "door-front", Stream.CONTACT, _at(14, 30, 40), open=False),
    ]
    if hall_after_door:
        rs.append(reading(site, "pir-hall", Stream.MOTION, _at(14, 31, 30), motion=True))
    return rs


def test_the_hall_sensor_between_the_door_events_is_her_going_out() -> None:
    site = _site()
    model = ResidentStateModel(context(site))
    for r in _going_out(site):
        model.update(r)
    view = model.view
    assert view.left_home_since(_at(14, 35)) is None  # not yet: 10 min of silence
    assert view.left_home_since(_at(14, 41)) == _at(14, 30, 40)  # dated from the door
    assert view.is_away(_at(14, 41)) is False  # the shared absence is unchanged
    # Seen inside again: back, and the time out is recorded.
    model.update(reading(site, "pir-kitchen", Stream.MOTION, _at(16), motion=True))
    assert view.left_home_since(_at(16, 30)) is None
    assert view.left_home_ended() == (_at(14, 30, 40), _at(16))


def test_the_hall_sensor_after_the_door_has_shut_is_someone_inside() -> None:
    site = _site()
    model = ResidentStateModel(context(site))
    for r in _going_out(site, hall_after_door=True):
        model.update(r)
    assert model.view.left_home_since(_at(15)) is None


def test_an_afternoon_out_past_the_hall_sensor_is_not_a_long_lie() -> None:
    """Before: the hall sensor firing while she went through the door put her inside, and
    three hours out were raised as `inactivity` at 17:30 (ARAS house A, five afternoons
    and evenings out)."""
    site = _site()
    rs = _going_out(site)
    rs.append(reading(site, "door-front", Stream.CONTACT, _at(18), open=True))
    rs.append(reading(site, "pir-hall", Stream.MOTION, _at(18, 0, 20), motion=True))
    rs.append(reading(site, "pir-kitchen", Stream.MOTION, _at(18, 1), motion=True))
    assert replay(InactivityRule(context(site)), rs, _at(19)) == []


def test_a_fall_in_the_hall_after_shutting_the_door_is_still_raised() -> None:
    """No other rule knows her out (`not_returned` reads the shared absence, which saw her
    inside): `inactivity` still raises such a quiet, when `not_returned` would raise an
    absence before learning (12 h from her last movement)."""
    site = _site()
    out = replay(InactivityRule(context(site)), _going_out(site), _at(8, day=11))
    assert [(t.action, t.ts) for t in out] == [(RAISE, _at(2, 30, 40, day=11))]
    assert replay(NotReturnedRule(context(site)), _going_out(site), _at(8, day=11)) == []


def test_the_hall_sensor_after_the_door_keeps_the_usual_limit() -> None:
    site = _site()
    out = replay(InactivityRule(context(site)), _going_out(site, hall_after_door=True), _at(19))
    assert [(t.action, t.ts) for t in out] == [(RAISE, _at(17, 31, 30))]  # 3 h default
