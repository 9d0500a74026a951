"""The institution rule set: home-only rules off, bed-bound residents not expected to get
up, shared rooms' sensors attributed to nobody, night exits watched for dementia only."""

from __future__ import annotations

from typing import Any

from detectors.bed_exit_no_return import BedExitRule
from detectors.catalogue import build_site_detectors
from detectors.inactivity import InactivityRule
from detectors.night_door_exit import NightDoorExitRule
from detectors.not_up import NotUpRule
from detectors.sos import SosRule
from eldercare.domain import Reading, Stream, TransitionAction
from eldercare.registry_index import ResolvedDevice
from eldercare.registry_model import Site
from tests.helpers.detectors import context, home_site, local_ts, replay

SH = "Asia/Shanghai"
RAISE = TransitionAction.RAISE


def _care_home(flags: dict[str, list[str]] | None = None) -> Site:
    """r301: Wang alone; r302: Li alone, no bed sensor; r303: Zhao and Qian share it."""
    flags = flags or {}
    residents: list[dict[str, Any]] = [
        {"id": "wang", "name": "Wang", "room": "r301", "bed": "b301"},
        {"id": "li", "name": "Li", "room": "r302", "bed": "b302"},
        {"id": "zhao", "name": "Zhao", "room": "r303", "bed": "b303a"},
        {"id": "qian", "name": "Qian", "room": "r303", "bed": "b303b"},
    ]
    for r in residents:
        r["flags"] = flags.get(r["id"], [])
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
                {"id": "r303", "kind": "bedroom"},
                {"id": "corridor", "kind": "corridor"},
            ],
            "beds": [
                {"id": "b301", "room": "r301"},
                {"id": "b302", "room": "r302"},
                {"id": "b303a", "room": "r303"},
                {"id": "b303b", "room": "r303"},
            ],
            "residents": residents,
            "devices": [
                {"id": "bed-301", "kind": "bed", "bed": "b301"},
                {"id": "bed-303a", "kind": "bed", "bed": "b303a"},
                {"id": "bed-303b", "kind": "bed", "bed": "b303b"},
                {"id": "pir-301", "kind": "motion", "room": "r301"},
                {"id": "pir-302", "kind": "motion", "room": "r302"},
                {"id": "pir-303", "kind": "motion", "room": "r303"},
                {"id": "pir-corridor", "kind": "motion", "room": "corridor"},
                {"id": "door-301", "kind": "door", "room": "r301", "outer_door": True},
                {"id": "door-302", "kind": "door", "room": "r302", "outer_door": True},
                {"id": "door-ward", "kind": "door", "room": "corridor", "outer_door": True},
                {"id": "sos-301", "kind": "sos_button", "room": "r301", "resident": "wang"},
            ],
        }
    )


def _r(site: Site, device_id: str, stream: Stream, ts: float, **fields: Any) -> Reading:
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


def test_home_only_rules_do_not_run_in_an_institution() -> None:
    rules = set(build_site_detectors(context(_care_home())))
    assert not rules & {"not_returned", "night_door_exit", "routine_deviation"}
    assert {"inactivity", "not_up", "bed_exit_no_return", "sos", "vitals"} <= rules
    home = set(build_site_detectors(context(home_site(SH))))
    assert {"not_returned", "night_door_exit", "routine_deviation"} <= home
    # A resident with dementia brings the night door watch back.
    rules = set(build_site_detectors(context(_care_home({"li": ["dementia"]}))))
    assert "night_door_exit" in rules and "not_returned" not in rules


def test_night_door_exit_in_an_institution_watches_dementia_residents_only() -> None:
    site = _care_home({"li": ["dementia"]})
    t = local_ts(SH, 2024, 5, 10, 2, 0)

    def exit_through(door: str, room_pir: str) -> list[tuple[object, str | None]]:
        rs = [
            _r(site, room_pir, Stream.MOTION, t - 60, motion=True),
            _r(site, door, Stream.CONTACT, t, open=True),
            _r(site, door, Stream.CONTACT, t + 5, open=False),
        ]
        out = replay(NightDoorExitRule(context(site)), rs, t + 3600)
        return [(x.action, x.resident_id) for x in out]

    assert exit_through("door-302", "pir-302") == [(RAISE, "li")]
    assert exit_through("door-301", "pir-301") == []  # Wang has no dementia flag
    assert exit_through("door-ward", "pir-corridor") == [(RAISE, None)]
    no_dementia = _care_home()
    rs = [
        _r(no_dementia, "pir-corridor", Stream.MOTION, t - 60, motion=True),
        _r(no_dementia, "door-ward", Stream.CONTACT, t, open=True),
    ]
    assert replay(NightDoorExitRule(context(no_dementia)), rs, t + 3600) == []


def _night_in_bed_until(site: Site, bed: str, up: float | None) -> list[Reading]:
    evening = local_ts(SH, 2024, 5, 9, 21, 0)
    rs = [_r(site, bed, Stream.OCCUPANCY, evening, occupied=True)]
    if up is not None:
        rs.append(_r(site, bed, Stream.OCCUPANCY, up, occupied=False))
    return rs


def test_not_up_in_an_institution_is_leaving_ones_own_bed() -> None:
    site = _care_home()
    ten = local_ts(SH, 2024, 5, 10, 10, 0)
    seven = local_ts(SH, 2024, 5, 10, 7, 0)
    up = replay(NotUpRule(context(site)), _night_in_bed_until(site, "bed-301", seven), ten + 60)
    assert [(x.action, x.resident_id) for x in up] == []
    stayed = replay(NotUpRule(context(site)), _night_in_bed_until(site, "bed-301", None), ten + 60)
    assert [(x.action, x.resident_id, x.ts) for x in stayed] == [(RAISE, "wang", ten)]
    # Li has no bed sensor; Zhao and Qian share a room: none of them is judged, and the
    # shared room's motion does not count for anyone.
    rule = NotUpRule(context(site))
    rs = [_r(site, "pir-303", Stream.MOTION, seven, motion=True)]
    rs += [_r(site, "pir-302", Stream.MOTION, seven + 60, motion=True)]
    out = replay(rule, rs, ten + 60)
    assert [(x.action, x.resident_id) for x in out] == [(RAISE, "wang")]  # not seen up
    assert set(rule.state.mornings) == {"wang"}


def test_bed_bound_residents_get_no_not_up_nor_bed_exit_but_keep_sos() -> None:
    site = _care_home({"wang": ["bed_bound"]})
    ten = local_ts(SH, 2024, 5, 10, 10, 0)
    night = _night_in_bed_until(site, "bed-301", None)
    assert replay(NotUpRule(context(site)), night, ten + 60) == []
    two = local_ts(SH, 2024, 5, 10, 2, 0)
    out_of_bed = _night_in_bed_until(site, "bed-301", two)
    assert replay(BedExitRule(context(site)), out_of_bed, two + 3 * 3600) == []
    press = [_r(site, "sos-301", Stream.SOS, ten, pressed=True)]
    out = replay(SosRule(context(site)), press, ten + 1)
    assert [(x.action, x.resident_id) for x in out] == [(RAISE, "wang")]
    # Without the flag, the same empty bed raises.
    plain = _care_home()
    out = replay(
        BedExitRule(context(plain)), _night_in_bed_until(plain, "bed-301", two), two + 3 * 3600
    )
    assert [(x.action, x.resident_id) for x in out if x.action == RAISE] == [(RAISE, "wang")]


def test_shared_room_motion_speaks_for_nobody_and_a_bed_only_for_its_resident() -> None:
    site = _care_home()
    ctx = context(site)
    t = local_ts(SH, 2024, 5, 10, 9, 0)
    assert ctx.activity_residents(_r(site, "pir-303", Stream.MOTION, t, motion=True)) == ()
    bed = _r(site, "bed-303a", Stream.OCCUPANCY, t, occupied=False)
    assert ctx.activity_residents(bed) == ("zhao",)
    assert ctx.activity_residents(_r(site, "pir-corridor", Stream.MOTION, t, motion=True)) == ()
    assert ctx.activity_residents(_r(site, "pir-301", Stream.MOTION, t, motion=True)) == ("wang",)
    # A day of shared-room motion and bed changes raises no inactivity for Zhao or Qian,
    # while Wang's quiet room still raises.
    rs = [_r(site, "pir-301", Stream.MOTION, t, motion=True)]
    rs += [_r(site, "pir-303", Stream.MOTION, t + 600 * i, motion=True) for i in range(30)]
    rs += [bed, _r(site, "bed-303b", Stream.OCCUPANCY, t + 60, occupied=False)]
    rs.sort(key=lambda r: r.ts)
    out = replay(InactivityRule(context(site)), rs, t + 8 * 3600)
    assert [(x.action, x.resident_id) for x in out] == [(RAISE, "wang")]
