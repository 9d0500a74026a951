"""The open-episode helper: open, close, raise once, snapshot/restore, and snapshots
written before it (the rules' old field names) still resume their episodes."""

from __future__ import annotations

from detectors.bathroom_too_long import BathroomRule
from detectors.episode import Episode, Episodes
from detectors.night_door_exit import NightDoorExitRule
from detectors.rule import EvidenceData
from detectors.sos import SosRule
from detectors.vitals import VitalsRule
from eldercare.domain import Stream, TransitionAction
from tests.helpers.detectors import context, home_site, local_ts, reading

SH = "Asia/Shanghai"
RAISE, CLEAR, UPDATE = TransitionAction.RAISE, TransitionAction.CLEAR, TransitionAction.UPDATE
EV = {"ts": 1.0, "device_id": "d", "stream": "motion", "summary": "x"}


def test_open_raise_once_close_and_round_trip() -> None:
    eps: Episodes[Episode] = Episodes[Episode]()
    assert not eps.is_open("a") and eps.close("a") is None
    ep = eps.open("b", Episode(since=60.0, evidence=EvidenceData.model_validate(EV)))
    eps.open("a", Episode(since=0.0, evidence=EvidenceData.model_validate(EV)))
    assert eps.sorted_keys() == ["a", "b"] and len(eps) == 2
    assert ep.mark_raised() == RAISE and ep.mark_raised() == UPDATE
    assert ep.minutes_at(60.0 + 90) == 1.5
    dumped = eps.model_dump(mode="json")
    assert dumped["b"]["raised"] is True and dumped["b"]["since"] == 60.0  # a plain mapping
    back = Episodes[Episode].model_validate(dumped)
    assert back == eps
    closed = back.close("b")
    assert closed is not None and closed.raised and not back.is_open("b")


def test_snapshots_with_the_old_field_names_resume_their_episodes() -> None:
    site = home_site(SH)
    t = local_ts(SH, 2024, 5, 10, 3, 0)
    ev = {**EV, "ts": t, "device_id": "door-front", "stream": "contact"}

    door = NightDoorExitRule(context(site))
    door.restore({"exit": {"door_at": t, "door": ev, "resident_id": None, "raised": True}})
    back = door.update(reading(site, "pir-living", Stream.MOTION, t + 900, motion=True))
    assert [(x.action, x.details["minutes_out"]) for x in back] == [(CLEAR, 15.0)]

    sos = SosRule(context(site))
    old = {"first_press": t, "last_press": t, "presses": 1, "device_id": "sos-1"}
    sos.restore({"open": {"res-1": {**old, "room_id": None, "first_evidence": ev}}})
    again = sos.update(reading(site, "sos-1", Stream.SOS, t + 30, pressed=True))
    assert [(x.action, x.details["presses"]) for x in again] == [(UPDATE, 2)]

    bath = BathroomRule(context(site))
    stay = {"room_id": "bathroom", "since": t, "entered": ev, "device_id": "pir-bath"}
    bath.restore({"stays": {"": {**stay, "limit_s": 900.0}}})
    assert bath.next_due() == t + 900

    vitals = VitalsRule(context(site))
    vitals.restore({"runs": {"": {"since": t, "first": ev}}})
    assert vitals.snapshot()["runs"][""]["evidence"]["ts"] == t


def test_no_episodes_hold_no_mapping_and_dump_an_empty_one() -> None:
    # One per rule and site, nearly always empty: no `__dict__`, no mapping until opened.
    eps: Episodes[Episode] = Episodes[Episode]()
    assert not hasattr(eps, "__dict__") and eps._root is None
    assert eps.model_dump(mode="json") == {} and len(eps) == 0 and eps.sorted_keys() == []
    eps.open("a", Episode(since=0.0, evidence=EvidenceData.model_validate(EV)))
    assert eps.close("a") is not None and eps._root is None  # the last one closed
    sos = SosRule(context(home_site(SH)))
    assert sos.snapshot()["open"] == {}
    sos.restore({"open": {}})
    assert sos.state.open._root is None and sos.state.open == Episodes[Episode]()
