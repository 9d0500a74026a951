"""Nearly-always-empty mappings in rule state share one read-only empty mapping until their
first write, and read, dump and restore as the plain `{}` they were."""

from __future__ import annotations

import pytest

from detectors.baseline import ActivityBaseline, WakeBaseline
from detectors.bathroom_too_long import BathroomRule, BathroomState
from detectors.device_set import DeviceSetState
from detectors.no_entries import NO_ENTRIES, writable
from detectors.occupancy import OccupancyState
from detectors.rule import EvidenceData
from detectors.site_offline import SiteOfflineState
from tests.helpers.detectors import context, home_site

EV = EvidenceData.model_validate({"ts": 1.0, "device_id": "d", "stream": "motion", "summary": "x"})


def test_a_new_state_shares_the_empty_mapping_and_dumps_it_as_before() -> None:
    a, b = OccupancyState(), OccupancyState()
    assert a.bed_empty_at is NO_ENTRIES and b.bed_empty_at is NO_ENTRIES
    assert a.bed_empty_at == {} and a.bed_empty_at.get("r") is None and "r" not in a.bed_empty_at
    assert a.up_since_empty.pop("r", None) is None  # removing nothing is fine
    assert OccupancyState.model_dump(a, mode="json")["bed_empty_at"] == {}


def test_the_first_write_gives_the_state_a_mapping_of_its_own() -> None:
    a, b = DeviceSetState(), DeviceSetState()
    writable(a, "members")["d"] = EV
    assert a.members == {"d": EV} and a.members is not NO_ENTRIES
    assert b.members is NO_ENTRIES and NO_ENTRIES == {}  # nothing leaked to the others
    writable(a, "members")["e"] = EV
    assert sorted(a.members) == ["d", "e"]


def test_writing_into_the_shared_mapping_directly_is_refused() -> None:
    state = OccupancyState()
    with pytest.raises(TypeError):
        state.pressed_s["r"] = 1.0
    with pytest.raises(TypeError):
        state.pressed_s.setdefault("r", 1.0)
    with pytest.raises(TypeError):
        state.pressed_s.update(r=1.0)
    assert NO_ENTRIES == {}


def test_a_snapshot_restores_empty_mappings_shared_and_others_as_they_were() -> None:
    rule = BathroomRule(context(home_site("Asia/Shanghai")))
    rule.restore({"left_at": {}, "door_open": {"door-bath": True}})
    state: BathroomState = rule.state
    assert state.left_at is NO_ENTRIES and state.door_passage is NO_ENTRIES
    assert state.door_open == {"door-bath": True} and state.door_open is not NO_ENTRIES
    snap = rule.snapshot()
    assert snap["left_at"] == {} and snap["door_exit"] == {}
    assert snap["door_open"] == {"door-bath": True}


def test_the_baselines_learn_into_a_mapping_of_their_own() -> None:
    wake, other = WakeBaseline(), WakeBaseline()
    activity = ActivityBaseline()
    assert wake.wake_minutes is NO_ENTRIES and activity.rates is NO_ENTRIES
    assert SiteOfflineState().offline_by_lwt is NO_ENTRIES
    wake.learn("2024-05-10", 420.0)
    activity.learn("2024-05-10", 3.5)
    assert wake.wake_minutes == {"2024-05-10": 420.0} and activity.rates == {"2024-05-10": 3.5}
    assert other.wake_minutes is NO_ENTRIES and NO_ENTRIES == {}
