"""`maybe_fall`: the radar's quirk (back to `none` seconds later, the person moving on
while the room's PIR is blind after reporting the walk-in) is no fall; a person lying
still is, raised at 60 s while the radar holds `maybe_fall`, at 180 s if it went back
to `none`. Event time only: nothing sleeps."""

from __future__ import annotations

import copy
from typing import Any

from detectors.fall import FallRule
from eldercare.domain import Reading, Stream, Transition, TransitionAction
from eldercare.registry_model import Site
from tests.helpers.detectors import context, home_site, local_ts, reading, replay

SH = "Asia/Shanghai"
RAISE = TransitionAction.RAISE


def _site(residents: int = 1) -> Site:
    site = home_site(SH)
    if residents == 1:
        return site
    doc: dict[str, Any] = copy.deepcopy(site.model_dump(mode="json"))
    doc["residents"].append({"id": "res-2", "name": "Li", "room": "bedroom"})
    return Site.model_validate(doc)


def _walk_in_then_maybe(site: Site, t: float, back_to_none_after: float | None) -> list[Reading]:
    """The bathroom PIR reports the walk-in 20 s before the radar's maybe_fall (and is
    then blind for a minute); the radar goes back to `none` after the given time."""
    rs = [
        reading(site, "pir-bath", Stream.MOTION, t - 20, motion=True),
        reading(site, "radar-1", Stream.FALL, t, status="maybe_fall"),
    ]
    if back_to_none_after is not None:
        rs.append(reading(site, "radar-1", Stream.FALL, t + back_to_none_after, status="none"))
    return rs


def _raises(out: list[Transition], t: float) -> list[tuple[TransitionAction, float]]:
    return [(x.action, x.ts - t) for x in out]


def test_quirk_radar_back_to_none_and_pir_reports_after_its_blind_time_is_no_fall() -> None:
    site = _site()
    t = local_ts(SH, 2024, 5, 10, 10, 0)
    rs = _walk_in_then_maybe(site, t, 12)
    # The PIR's next report: 100 s after the maybe_fall (blind until 40 s, then a minute
    # without crossing its beam). The old 60 s window raised here.
    rs.append(reading(site, "pir-bath", Stream.MOTION, t + 100, motion=True))
    assert replay(FallRule(context(site)), rs, t + 3600) == []


def test_quirk_radar_back_to_none_then_walking_to_another_room_is_no_fall() -> None:
    site = _site()
    t = local_ts(SH, 2024, 5, 10, 10, 0)
    rs = _walk_in_then_maybe(site, t, 15)
    rs.append(reading(site, "pir-kitchen", Stream.MOTION, t + 150, motion=True))
    assert replay(FallRule(context(site)), rs, t + 3600) == []
    # Lying down on the bed elsewhere is the resident too.
    rs = [reading(site, "bed-1", Stream.OCCUPANCY, t - 3600, occupied=False)]
    rs += _walk_in_then_maybe(site, t, 15)
    rs.append(reading(site, "bed-1", Stream.OCCUPANCY, t + 150, occupied=True))
    assert replay(FallRule(context(site)), rs, t + 3600) == []


def test_still_person_radar_holding_maybe_fall_raises_at_60_s() -> None:
    site = _site()
    t = local_ts(SH, 2024, 5, 10, 10, 0)
    rs = _walk_in_then_maybe(site, t, None)
    rs += [reading(site, "radar-1", Stream.FALL, t + k, status="maybe_fall") for k in (20, 40)]
    assert replay(FallRule(context(site)), rs, t + 59.9) == []
    out = replay(FallRule(context(site)), rs, t + 60)
    assert _raises(out, t) == [(RAISE, 60)]
    assert out[0].details["status"] == "maybe_fall"
    assert out[0].details["confirmed_after_s"] == 60
    assert out[0].details["radar_back_to_none"] is False


def test_still_person_radar_holding_maybe_fall_movement_elsewhere_does_not_help() -> None:
    site = _site()
    t = local_ts(SH, 2024, 5, 10, 10, 0)
    rs = _walk_in_then_maybe(site, t, None)
    rs.append(reading(site, "pir-kitchen", Stream.MOTION, t + 30, motion=True))
    out = replay(FallRule(context(site)), rs, t + 600)
    assert _raises(out, t) == [(RAISE, 60)]


def test_still_person_radar_back_to_none_raises_at_180_s() -> None:
    site = _site()
    t = local_ts(SH, 2024, 5, 10, 10, 0)
    rs = _walk_in_then_maybe(site, t, 10)
    assert replay(FallRule(context(site)), rs, t + 179.9) == []
    out = replay(FallRule(context(site)), rs, t + 180)
    assert _raises(out, t) == [(RAISE, 180)]
    assert out[0].details["confirmed_after_s"] == 180
    assert out[0].details["radar_back_to_none"] is True
    # Movement in the room just before the limit: up after all.
    rs.append(reading(site, "pir-bath", Stream.MOTION, t + 179.5, motion=True))
    assert replay(FallRule(context(site)), rs, t + 3600) == []


def test_radar_back_to_none_after_the_60_s_has_no_effect() -> None:
    site = _site()
    t = local_ts(SH, 2024, 5, 10, 10, 0)
    rs = _walk_in_then_maybe(site, t, 61)
    out = replay(FallRule(context(site)), rs, t + 600)
    assert _raises(out, t)[0] == (RAISE, 60)


def test_after_none_front_door_or_another_resident_is_not_the_person_getting_up() -> None:
    t = local_ts(SH, 2024, 5, 10, 10, 0)
    site = _site()
    rs = _walk_in_then_maybe(site, t, 10)
    rs.append(reading(site, "door-front", Stream.CONTACT, t + 100, open=True))  # a visitor
    assert _raises(replay(FallRule(context(site)), rs, t + 600), t) == [(RAISE, 180)]
    couple = _site(residents=2)
    rs = _walk_in_then_maybe(couple, t, 10)
    rs.append(reading(couple, "pir-kitchen", Stream.MOTION, t + 100, motion=True))  # the other
    assert _raises(replay(FallRule(context(couple)), rs, t + 600), t) == [(RAISE, 180)]
    # In the room it still counts for a couple.
    rs[-1] = reading(couple, "pir-bath", Stream.MOTION, t + 100, motion=True)
    assert replay(FallRule(context(couple)), rs, t + 600) == []


def test_maybe_fall_again_after_none_brings_the_60_s_back() -> None:
    site = _site()
    t = local_ts(SH, 2024, 5, 10, 10, 0)
    rs = _walk_in_then_maybe(site, t, 10)
    rs.append(reading(site, "radar-1", Stream.FALL, t + 30, status="maybe_fall"))
    assert _raises(replay(FallRule(context(site)), rs, t + 600), t) == [(RAISE, 60)]
    # Again only after the 60 s: raised at once, timed from the first maybe_fall.
    rs = _walk_in_then_maybe(site, t, 10)
    rs.append(reading(site, "radar-1", Stream.FALL, t + 90, status="maybe_fall"))
    out = replay(FallRule(context(site)), rs, t + 600)
    assert _raises(out, t) == [(RAISE, 90)]
    assert out[0].details["confirmed_after_s"] == 90
    # And `fall` after `none` raises at once, as always.
    rs[-1] = reading(site, "radar-1", Stream.FALL, t + 45, status="fall")
    out = replay(FallRule(context(site)), rs, t + 600)
    assert _raises(out, t) == [(RAISE, 45)]
    assert out[0].details["status"] == "fall"


def test_pending_retracted_maybe_fall_survives_snapshot_and_restore() -> None:
    site = _site()
    t = local_ts(SH, 2024, 5, 10, 10, 0)
    rule = FallRule(context(site))
    replay(rule, _walk_in_then_maybe(site, t, 10), t + 100)
    restored = FallRule(context(site))
    restored.restore(rule.snapshot())
    assert _raises(restored.advance(t + 600), t) == [(RAISE, 180)]
