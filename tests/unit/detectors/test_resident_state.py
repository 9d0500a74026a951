"""The shared resident-state model (`detectors/resident_state.py`) on a fake clock, and the
rules re-founded on it."""

from __future__ import annotations

import dataclasses
import random

from detectors.bathroom_too_long import BathroomRule
from detectors.bed_exit_no_return import BedExitRule
from detectors.catalogue import build_site_detectors
from detectors.inactivity import InactivityRule
from detectors.not_up import NotUpRule
from detectors.resident_state import NAME, Confidence, ResidentStateModel
from detectors.rule import Rule
from detectors.runtime import SiteDetectors
from eldercare.domain import Reading, Stream
from eldercare.registry_model import Site
from tests.helpers.detectors import (
    HOME_DEVICES,
    OCCUPANCY_TZ,
    context,
    home_site,
    kinds_actions,
    local_ts,
    occupancy_couple,
    occupancy_home,
    reading,
    replay,
)

TZ = OCCUPANCY_TZ


def _at(hour: int, minute: int = 0, second: float = 0.0, day: int = 10) -> float:
    return local_ts(TZ, 2024, 5, day, hour, minute, second)


def _fed(site_readings: list[Reading], model: ResidentStateModel) -> ResidentStateModel:
    for r in site_readings:
        model.update(r)
    return model


def test_the_room_follows_movement_with_its_evidence() -> None:
    site = occupancy_home()
    model = ResidentStateModel(context(site))
    _fed(
        [
            reading(site, "pir-bed", Stream.MOTION, _at(8), motion=True),
            reading(site, "pir-kitchen", Stream.MOTION, _at(8, 5), motion=True),
        ],
        model,
    )
    facts = model.view.facts("res-1", _at(8, 6))
    assert facts.room.value == "kitchen"
    assert facts.room.confidence == Confidence.INFERRED
    assert facts.room.evidence is not None and facts.room.evidence.device_id == "pir-kitchen"
    assert facts.moving.value is True  # a minute ago
    later = model.view.facts("res-1", _at(8, 30))
    assert later.moving.value is False and later.moving.since == _at(8, 5)


def test_seated_and_still_is_seated_not_moving() -> None:
    site = occupancy_home()
    model = ResidentStateModel(context(site))
    _fed(
        [
            reading(site, "pir-kitchen", Stream.MOTION, _at(19), motion=True),
            reading(site, "armchair", Stream.OCCUPANCY, _at(19, 1), occupied=False),
            reading(site, "armchair", Stream.OCCUPANCY, _at(19, 2), occupied=True),
        ],
        model,
    )
    facts = model.view.facts("res-1", _at(22))
    assert facts.seated.value is True and facts.seated.since == _at(19, 2)
    assert facts.seated.confidence == Confidence.SEEN
    assert facts.seated.evidence is not None and facts.seated.evidence.device_id == "armchair"
    assert facts.room.value == "living"  # the mat changing is her sitting down there
    assert facts.moving.value is False
    assert facts.asleep.value is False  # no bed, not in the bedroom


def test_in_bed_at_night_is_asleep_and_an_emptied_mat_with_nothing_moving_is_still_bed() -> None:
    site = occupancy_home()
    model = ResidentStateModel(context(site))
    _fed(
        [
            reading(site, "pir-bed", Stream.MOTION, _at(23), motion=True),
            reading(site, "mat-left", Stream.OCCUPANCY, _at(23, 1), occupied=False),
            reading(site, "mat-left", Stream.OCCUPANCY, _at(23, 2), occupied=True),
        ],
        model,
    )
    facts = model.view.facts("res-1", _at(23, 10))
    assert facts.in_bed.value is True and facts.in_bed.confidence == Confidence.SEEN
    assert facts.in_bed.evidence is not None and facts.in_bed.evidence.device_id == "mat-left"
    assert facts.asleep.value is True  # in bed, in the night window
    model.update(reading(site, "mat-left", Stream.OCCUPANCY, _at(23, 30), occupied=False))
    emptied = model.view.facts("res-1", _at(23, 40))
    assert emptied.in_bed.value is True and emptied.in_bed.confidence == Confidence.INFERRED
    model.update(reading(site, "pir-kitchen", Stream.MOTION, _at(23, 41), motion=True))
    up = model.view.facts("res-1", _at(23, 42))
    assert up.in_bed.value is False and up.asleep.value is False
    assert model.view.left_bed_at("res-1") == _at(23, 30)


def test_away_after_the_door_and_silence_and_home_again_on_movement_inside() -> None:
    site = occupancy_home()
    model = ResidentStateModel(context(site))
    _fed(
        [
            reading(site, "pir-kitchen", Stream.MOTION, _at(10), motion=True),
            reading(site, "door-front", Stream.CONTACT, _at(10, 1), open=True),
            reading(site, "door-front", Stream.CONTACT, _at(10, 1, 20), open=False),
        ],
        model,
    )
    view = model.view
    assert not view.is_away(_at(10, 5))  # the silence has not run out yet
    assert view.is_away(_at(10, 12)) and view.away_since(_at(10, 12)) == _at(10, 1, 20)
    assert view.facts("res-1", _at(10, 12)).away.value is True
    model.update(reading(site, "pir-kitchen", Stream.MOTION, _at(12), motion=True))
    assert view.change == "returned"
    assert not view.is_away(_at(12, 1))
    assert view.absence_ended() == (_at(10, 1, 20), _at(12))  # from the last door event


def test_a_mat_or_radar_reporting_someone_keeps_the_home_occupied_after_the_door() -> None:
    site = occupancy_home()
    model = ResidentStateModel(context(site))
    _fed(
        [
            reading(site, "armchair", Stream.OCCUPANCY, _at(21), occupied=False),
            reading(site, "armchair", Stream.OCCUPANCY, _at(21, 1), occupied=True),
            reading(site, "door-front", Stream.CONTACT, _at(22), open=True),
            reading(site, "door-front", Stream.CONTACT, _at(22, 0, 20), open=False),
        ],
        model,
    )
    assert not model.view.is_away(_at(23))


def test_two_residents_one_out_the_household_is_not_away_while_a_mat_reports_someone() -> None:
    site = occupancy_couple()
    model = ResidentStateModel(context(site))
    _fed(
        [
            reading(site, "armchair", Stream.OCCUPANCY, _at(14), occupied=False),
            reading(site, "armchair", Stream.OCCUPANCY, _at(14, 1), occupied=True),
            reading(site, "pir-kitchen", Stream.MOTION, _at(15), motion=True),
            reading(site, "door-front", Stream.CONTACT, _at(15, 1), open=True),
        ],
        model,
    )
    facts = model.view.facts("", _at(16))
    assert facts.away.value is False
    assert facts.seated.confidence == Confidence.HOUSEHOLD  # someone, not known to be who


def test_snapshot_and_restore_mid_stream_give_the_same_picture() -> None:
    site = occupancy_home()
    rs = [
        reading(site, "pir-bed", Stream.MOTION, _at(22), motion=True),
        reading(site, "mat-left", Stream.OCCUPANCY, _at(22, 1), occupied=True),
        reading(site, "mat-left", Stream.OCCUPANCY, _at(23), occupied=False),
        reading(site, "pir-kitchen", Stream.MOTION, _at(23, 2), motion=True),
        reading(site, "door-front", Stream.CONTACT, _at(23, 3), open=True),
        reading(site, "door-front", Stream.CONTACT, _at(23, 3, 30), open=False),
    ]
    whole = _fed(rs, ResidentStateModel(context(site)))
    for cut in range(len(rs) + 1):
        first = _fed(rs[:cut], ResidentStateModel(context(site)))
        resumed = ResidentStateModel(context(site))
        resumed.restore(first.snapshot())
        _fed(rs[cut:], resumed)
        assert resumed.snapshot() == whole.snapshot()
        for now in (_at(23, 5), _at(23, 30)):
            assert resumed.view.facts("res-1", now) == whole.view.facts("res-1", now)


def test_the_site_hosts_one_picture_first_and_every_reading_rule_shares_it() -> None:
    site = occupancy_home()
    detectors = build_site_detectors(context(site))
    assert next(iter(detectors)) == NAME
    model = detectors[NAME]
    assert isinstance(model, ResidentStateModel)
    readers = [d for d in detectors.values() if isinstance(d, Rule) and d.reads_picture]
    assert {d.name for d in readers} >= {"inactivity", "bed_exit_no_return", "not_returned"}
    assert all(d.picture is model.view for d in readers)
    # Hosted: a reading reaches the picture before the rules, which keep no copy of it.
    sd = SiteDetectors(site, detectors)
    sd.apply(reading(site, "pir-kitchen", Stream.MOTION, _at(9), motion=True))
    assert model.view.last_seen("res-1") is not None
    assert all("absence" not in d.snapshot() for d in readers)


def _bath_home() -> list[dict[str, object]]:
    return [
        *HOME_DEVICES,
        {"id": "armchair", "kind": "seat", "room": "living"},
    ]


def test_bathroom_firing_while_she_is_in_bed_starts_no_stay() -> None:
    site = home_site(TZ, devices=_bath_home())
    # Old behaviour: the bathroom PIR at 02:00 began a stay, raised at 02:15.
    rs = [
        reading(site, "bed-1", Stream.OCCUPANCY, _at(0, 59), occupied=False),
        reading(site, "bed-1", Stream.OCCUPANCY, _at(1), occupied=True),
        reading(site, "pir-bath", Stream.MOTION, _at(2), motion=True),
    ]
    assert replay(BathroomRule(context(site)), rs, _at(3)) == []


def test_bathroom_stay_after_leaving_the_bed_is_still_caught() -> None:
    site = home_site(TZ, devices=_bath_home())
    rs = [
        reading(site, "bed-1", Stream.OCCUPANCY, _at(0, 59), occupied=False),
        reading(site, "bed-1", Stream.OCCUPANCY, _at(1), occupied=True),
        reading(site, "bed-1", Stream.OCCUPANCY, _at(1, 59), occupied=False),
        reading(site, "pir-bath", Stream.MOTION, _at(2), motion=True),
    ]
    out = replay(BathroomRule(context(site)), rs, _at(3))
    assert kinds_actions(out) == [("bathroom_too_long", "raise")]
    assert out[0].ts == _at(2, 15)


def test_bathroom_firing_in_a_two_person_home_with_one_seated_is_still_a_stay() -> None:
    site = occupancy_couple()
    doc = site.model_dump()
    doc["rooms"].append({"id": "bath", "kind": "bathroom"})
    doc["devices"].append({"id": "pir-bath", "kind": "motion", "room": "bath"})
    site = type(site).model_validate(doc)
    rs = [
        reading(site, "armchair", Stream.OCCUPANCY, _at(1), occupied=False),
        reading(site, "armchair", Stream.OCCUPANCY, _at(1, 1), occupied=True),
        reading(site, "pir-bath", Stream.MOTION, _at(2), motion=True),
    ]
    # One person on the armchair does not account for the other.
    out = replay(BathroomRule(context(site)), rs, _at(3))
    assert kinds_actions(out) == [("bathroom_too_long", "raise")]


def test_bed_emptied_after_a_moment_on_the_mat_waits_for_movement_elsewhere() -> None:
    site = occupancy_home()
    blip = [
        reading(site, "mat-left", Stream.OCCUPANCY, _at(2), occupied=True),
        reading(site, "mat-left", Stream.OCCUPANCY, _at(2, 0, 2), occupied=False),
    ]
    # Old behaviour: raised at 03:00 (the unconfirmed limit) though nothing moved.
    assert replay(BedExitRule(context(site)), blip, _at(4)) == []
    seen_up = [*blip, reading(site, "pir-kitchen", Stream.MOTION, _at(2, 5), motion=True)]
    out = replay(BedExitRule(context(site)), seen_up, _at(4))
    assert kinds_actions(out)[:1] == [("bed_exit_no_return", "raise")]
    assert out[0].ts == _at(2, 35)  # 30 min from when she was seen up, not the blip


def test_bed_emptied_after_lying_on_it_is_judged_even_with_nothing_moving() -> None:
    site = occupancy_home()
    rs = [
        reading(site, "mat-left", Stream.OCCUPANCY, _at(1), occupied=True),
        reading(site, "mat-left", Stream.OCCUPANCY, _at(2), occupied=False),
    ]
    out = replay(BedExitRule(context(site)), rs, _at(4))
    assert kinds_actions(out)[:1] == [("bed_exit_no_return", "raise")]
    assert out[0].ts == _at(3)  # the unconfirmed limit (60 min): a bedside fall


def _couple_with_own_mats() -> Site:
    doc = occupancy_couple().model_dump()
    for d in doc["devices"]:
        if d["id"] == "mat-left":
            d["resident"] = "res-1"
        if d["id"] == "mat-right":
            d["resident"] = "res-2"
    return Site.model_validate(doc)


def test_a_resident_whose_bed_stayed_empty_all_day_does_not_keep_the_household_awake() -> None:
    site = _couple_with_own_mats()
    day, night = 11, 12
    rs = [
        # res-2 got up at 06:00 on the 11th and did not come back to bed (away for the night).
        reading(site, "mat-right", Stream.OCCUPANCY, _at(5, day=day), occupied=True),
        reading(site, "mat-right", Stream.OCCUPANCY, _at(6, day=day), occupied=False),
        *(
            reading(site, "pir-kitchen", Stream.MOTION, _at(h, 30, day=day), motion=True)
            for h in range(8, 24)
        ),
        reading(site, "pir-bed", Stream.MOTION, _at(23, 58, day=day), motion=True),
        reading(site, "mat-left", Stream.OCCUPANCY, _at(0, 0, day=night), occupied=True),
    ]
    # Before: the household was "up" (res-2 not in bed) and raised at 03:00.
    out = replay(InactivityRule(context(site)), rs, _at(7, day=night))
    assert kinds_actions(out) == []
    # The same night with res-2's bed used that morning: her empty bed is not enough.
    recent = [
        r if r.device_id != "mat-right" else dataclasses.replace(r, ts=r.ts + 14 * 3600) for r in rs
    ]
    out = replay(
        InactivityRule(context(site)), sorted(recent, key=lambda r: r.ts), _at(7, day=night)
    )
    assert kinds_actions(out) == [("inactivity", "raise")]


def _random_life(site: Site, seed: int, days: int = 3) -> list[Reading]:
    """Readings of every kind the occupancy home has, at random times over `days`."""
    rnd = random.Random(seed)
    start = _at(6)
    devices = {
        "pir-bed": (Stream.MOTION, "motion"),
        "pir-kitchen": (Stream.MOTION, "motion"),
        "mat-left": (Stream.OCCUPANCY, "occupied"),
        "mat-right": (Stream.OCCUPANCY, "occupied"),
        "armchair": (Stream.OCCUPANCY, "occupied"),
        "radar-living": (Stream.PRESENCE, "present"),
        "door-front": (Stream.CONTACT, "open"),
    }
    out: list[Reading] = []
    t = start
    while t < start + days * 86400:
        t += rnd.expovariate(1 / 1500)
        device = rnd.choice(sorted(devices))
        stream, key = devices[device]
        out.append(reading(site, device, stream, round(t), **{key: rnd.random() < 0.6}))
    return out


def test_rules_on_the_shared_picture_raise_what_each_raises_on_its_own_picture() -> None:
    # Hosted (one model fed first, rules reading it) and alone (each rule feeding its own
    # private model) must agree, whatever the batch boundaries (advances in between).
    site = occupancy_home()
    for seed in range(3):
        life = _random_life(site, seed)
        hosted = SiteDetectors(site, build_site_detectors(context(site)))
        got: list[tuple[str, str, float]] = []
        rnd = random.Random(seed)
        for r in life:
            if rnd.random() < 0.2:
                got += [(t.kind.value, t.action.value, t.ts) for t in hosted.advance(r.ts - 1)]
            got += [(t.kind.value, t.action.value, t.ts) for t in hosted.apply(r)]
        got += [(t.kind.value, t.action.value, t.ts) for t in hosted.advance(life[-1].ts + 86400)]
        for name, det in build_site_detectors(context(site)).items():
            if not (isinstance(det, Rule) and det.reads_picture):
                continue
            alone = type(det)(context(site))
            own = [
                (t.kind.value, t.action.value, t.ts)
                for t in replay(alone, life, life[-1].ts + 86400)
            ]
            shared = [g for g in got if g[0] in {k.value for k in det.kinds}]
            assert sorted(shared) == sorted(own), (seed, name)


def test_a_snapshot_from_before_the_picture_keeps_an_absence_in_progress() -> None:
    # Before the shared picture, not_returned kept its own movement and absence; a site
    # restored from such a snapshot while the resident is out must still see her return.
    site = occupancy_home()
    left = [
        reading(site, "pir-kitchen", Stream.MOTION, _at(9), motion=True),
        reading(site, "door-front", Stream.CONTACT, _at(9, 1), open=True),
        reading(site, "door-front", Stream.CONTACT, _at(9, 1, 20), open=False),
    ]
    before = SiteDetectors(site, build_site_detectors(context(site)))
    for r in left:
        before.apply(r)
    raised = before.advance(_at(22, 30))
    assert ("not_returned", "raise") in kinds_actions(raised)
    states = before.snapshot()
    old_format = {k: v for k, v in states.items() if k != NAME}
    old_format["not_returned"] = {**states["not_returned"], **states[NAME]}
    after = SiteDetectors(site, build_site_detectors(context(site)))
    after.restore(old_format)
    back = after.apply(reading(site, "pir-kitchen", Stream.MOTION, _at(23), motion=True))
    assert ("not_returned", "clear") in kinds_actions(back)


def _home_with_hall_sensor() -> Site:
    doc = occupancy_home().model_dump()
    doc["devices"].append({"id": "pir-hall", "kind": "motion", "room": "entrance"})
    return Site.model_validate(doc)


def test_where_the_door_has_a_sensor_beside_it_the_door_alone_is_not_coming_home() -> None:
    site = _home_with_hall_sensor()
    model = ResidentStateModel(context(site))
    _fed(
        [
            reading(site, "pir-kitchen", Stream.MOTION, _at(17), motion=True),
            reading(site, "pir-hall", Stream.MOTION, _at(17, 14), motion=True),
            reading(site, "door-front", Stream.CONTACT, _at(17, 15), open=True),
            reading(site, "door-front", Stream.CONTACT, _at(17, 15, 10), open=False),
            # 12 min later the door moves, and nobody passes the hall sensor beside it
            reading(site, "door-front", Stream.CONTACT, _at(17, 27), open=True),
            reading(site, "door-front", Stream.CONTACT, _at(17, 27, 1), open=False),
        ],
        model,
    )
    # Before: "came home" at 17:27, then three hours still raised inactivity.
    assert model.view.is_away(_at(20, 30))
    model.update(reading(site, "pir-hall", Stream.MOTION, _at(21), motion=True))
    assert model.view.change == "returned" and not model.view.is_away(_at(21, 1))


def test_where_no_sensor_watches_the_door_the_door_is_coming_home() -> None:
    site = occupancy_home()  # the front door's room has no sensor: she may sit unseen
    model = ResidentStateModel(context(site))
    _fed(
        [
            reading(site, "pir-kitchen", Stream.MOTION, _at(17), motion=True),
            reading(site, "door-front", Stream.CONTACT, _at(17, 15), open=True),
            reading(site, "door-front", Stream.CONTACT, _at(17, 15, 10), open=False),
            reading(site, "door-front", Stream.CONTACT, _at(17, 27), open=True),
        ],
        model,
    )
    assert model.view.change == "returned"
    assert not model.view.is_away(_at(20, 30))


def test_a_couple_not_up_is_one_household_alert_not_one_each() -> None:
    site = occupancy_couple()
    rs = [
        reading(site, "pir-kitchen", Stream.MOTION, _at(20), motion=True),
        reading(site, "pir-bed", Stream.MOTION, _at(22), motion=True),
    ]
    out = replay(NotUpRule(context(site)), rs, _at(11, day=11))
    # Before: raised for res-1 and for res-2 at 10:00, on the same (absent) evidence.
    assert [(t.action.value, t.resident_id) for t in out] == [("raise", None)]


def test_stillness_after_the_kitchen_is_judged_by_her_normal_for_the_kitchen() -> None:
    learn = {"learn_days": 1, "min_samples": 1, "room_min_samples": 1}
    site = home_site(TZ, resident_overrides={"inactivity": learn})
    rs = [
        # day 1: a short quiet after the kitchen, a long one after the living room
        reading(site, "pir-kitchen", Stream.MOTION, _at(10), motion=True),
        reading(site, "pir-living", Stream.MOTION, _at(10, 20), motion=True),
        reading(site, "pir-kitchen", Stream.MOTION, _at(12, 20), motion=True),
        reading(site, "pir-living", Stream.MOTION, _at(12, 30), motion=True),
        reading(site, "pir-kitchen", Stream.MOTION, _at(10, day=11), motion=True),
    ]
    out = replay(InactivityRule(context(site)), rs, _at(18, day=11))
    out = [t for t in out if t.ts > _at(10, day=11)]  # day 1's quiet night raised too
    # Before: the hour's normal in any room (2 h × 2 = 4 h), raised at 14:00.
    assert kinds_actions(out) == [("inactivity", "raise")]
    assert out[0].ts == _at(11, day=11)  # the kitchen's 20 min × 2, at least min_hours (1 h)
    assert out[0].details["last_room"] == "kitchen"


def test_a_mat_left_pressed_while_she_walks_about_does_not_place_her() -> None:
    site = home_site(TZ, devices=_bath_home())
    rs = [
        reading(site, "armchair", Stream.OCCUPANCY, _at(13), occupied=False),
        reading(site, "armchair", Stream.OCCUPANCY, _at(13, 1), occupied=True),  # a cushion
        reading(site, "pir-kitchen", Stream.MOTION, _at(13, 30), motion=True),  # she is up
        reading(site, "pir-bath", Stream.MOTION, _at(14), motion=True),
    ]
    out = replay(BathroomRule(context(site)), rs, _at(15))
    assert kinds_actions(out) == [("bathroom_too_long", "raise")]
    assert out[0].ts == _at(14, 45)


def test_on_the_shared_picture_one_night_exit_is_one_alert_and_no_bed_exit_while_out() -> None:
    site = occupancy_home()
    sd = SiteDetectors(site, build_site_detectors(context(site)))
    left = _at(2, day=11)
    rs = [
        reading(site, "mat-left", Stream.OCCUPANCY, _at(23), occupied=True),
        reading(site, "pir-bed", Stream.MOTION, _at(23, 1), motion=True),
        reading(site, "mat-left", Stream.OCCUPANCY, left, occupied=False),
        reading(site, "pir-kitchen", Stream.MOTION, left + 60, motion=True),
        reading(site, "door-front", Stream.CONTACT, left + 120, open=True),
        reading(site, "door-front", Stream.CONTACT, left + 125, open=False),
    ]
    out = [t for r in rs for t in sd.apply(r)] + sd.advance(left + 3 * 3600)
    night = [
        (t.kind.value, t.action.value)
        for t in out
        if t.kind.value in ("night_door_exit", "bed_exit_no_return")
    ]
    assert night == [("night_door_exit", "raise")]
    assert model_of(sd).view.is_away(left + 3600)


def model_of(sd: SiteDetectors) -> ResidentStateModel:
    model = sd.detectors[NAME]
    assert isinstance(model, ResidentStateModel)
    return model
