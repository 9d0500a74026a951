"""Registry files: every problem is reported with the file, line, key path and reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from eldercare.domain import DeviceKind
from eldercare.registry_apply import (
    RegistryError,
    dump_registry,
    load_registry_file,
    parse_registry,
)

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "registry.yaml"

SITE = """\
sites:
  - id: s1
    kind: home
    name: 测试家
    organisation: 滨州市/滨城区
    rooms:
      - {id: bedroom, kind: bedroom}
"""


def problems(text: str, source: str = "t.yaml") -> list[str]:
    with pytest.raises(RegistryError) as caught:
        parse_registry(text, source)
    assert caught.value.source == source
    return str(caught.value).splitlines()


def test_the_example_is_valid_and_complete() -> None:
    doc = load_registry_file(EXAMPLE)
    kinds = {d.kind for s in doc.sites for d in s.devices}
    assert kinds == set(DeviceKind)
    assert {s.kind for s in doc.sites} == {"home", "institution"}
    names = [
        d.vendor.z2m.friendly_name
        for s in doc.sites
        for d in s.devices
        if d.vendor and d.vendor.z2m
    ]
    assert names and all("/" in n for n in names)
    languages = {c.language for s in doc.sites for c in s.contacts}
    assert languages == {"zh-CN", "en"}
    urls = [u for s in doc.sites for c in s.contacts for u in c.apprise]
    assert any(u.startswith("json://") for u in urls) and any(
        u.startswith("mailto://") for u in urls
    )
    # a YAML 1.1 reader would turn 20:30 into the integer 1230
    assert doc.sites[0].contacts[0].daily_summary == "20:30"
    assert parse_registry(dump_registry(doc)) == doc


def test_yaml_syntax_error_names_line_and_column() -> None:
    assert problems("sites:\n  - id: s1\n   kind: home\n") == [
        "t.yaml:3:4: YAML syntax error: expected <block end>, but found '<block mapping start>'"
        " (while parsing a block collection)"
    ]


def test_duplicate_yaml_key_is_refused() -> None:
    text = SITE.replace("    kind: home\n", "    kind: home\n    kind: institution\n")
    assert problems(text) == [
        "t.yaml:4:5: YAML error: duplicate key 'kind' (first on line 3) (while reading a mapping)"
    ]


def test_unknown_key_names_its_path_and_line() -> None:
    text = SITE + "    devices:\n      - id: pir-1\n        kind: motion\n        colour: white\n"
    assert problems(text) == [
        "t.yaml:11: sites[s1].devices[pir-1].colour: unknown key (not part of the registry schema)"
    ]


def test_bad_value_in_an_item_without_id_uses_the_index() -> None:
    text = SITE + "    devices:\n      - {id: pir-1, kind: motion}\n      - {kind: radar}\n"
    lines = problems(text)
    assert lines[0] == "t.yaml:10: sites[s1].devices[1].id: Field required"
    assert lines[1].startswith("t.yaml:10: sites[s1].devices[1].kind: Input should be 'motion'")


def test_bad_reference_points_at_the_referring_key() -> None:
    text = (
        SITE
        + "    devices:\n      - {id: pir-1, kind: motion}\n      - id: door-1\n"
        + ("        kind: door\n        room: garage\n")
    )
    assert problems(text) == [
        "t.yaml:12: sites[s1].devices[door-1].room: refers to unknown id 'garage'"
    ]


def test_duplicate_ids_point_at_the_second_one() -> None:
    text = SITE + "      - {id: bedroom, kind: kitchen}\n"
    assert problems(text) == ["t.yaml:8: sites[s1].rooms[bedroom]: duplicate id"]


def test_duplicate_device_id_across_sites() -> None:
    text = (
        SITE
        + "    devices: [{id: pir-1, kind: motion}]\n"
        + "  - {id: s2, kind: home, name: B, organisation: 滨州市,\n"
        + "     devices: [{id: pir-1, kind: motion}]}\n"
    )
    assert problems(text) == [
        "t.yaml:10: sites[s2].devices[pir-1].id: device id 'pir-1' is already used by site 's1'"
    ]


def test_vendor_binding_clash() -> None:
    text = (
        SITE
        + "    devices: [{id: d1, kind: door, vendor: {z2m: {friendly_name: 401/门}}}]\n"
        + "  - {id: s2, kind: home, name: B, organisation: 滨州市,\n"
        + "     devices: [{id: d2, kind: door, vendor: {z2m: {friendly_name: 401/门}}}]}\n"
    )
    assert problems(text) == [
        "t.yaml:10: sites[s2].devices[d2].vendor: vendor binding z2m/zigbee2mqtt/401/门 is"
        " already bound to device 'd1'"
    ]


def test_unknown_time_zone() -> None:
    text = SITE.replace("    kind: home\n", "    kind: home\n    timezone: Mars/Olympus\n")
    assert problems(text) == ["t.yaml:4: sites[s1].timezone: unknown time zone 'Mars/Olympus'"]


def test_an_infinite_detector_override_is_refused() -> None:
    # YAML reads .inf, but a dumped registry could not carry it back (found by the fuzz test).
    text = SITE + "    detectors: {bathroom_too_long: {night_minutes: .inf}}\n"
    [problem] = problems(text)
    assert problem.endswith("bathroom_too_long.night_minutes: inf is not a finite number")


def test_unquoted_phone_number_gets_a_hint() -> None:
    text = SITE + "    residents: [{id: r1, name: 王, phone: 13800000000}]\n"
    assert problems(text) == [
        "t.yaml:8: sites[s1].residents[r1].phone: Input should be a valid string (quote numbers"
        ' meant as text, e.g. phone: "13800000000")'
    ]


def test_several_problems_are_all_reported() -> None:
    text = SITE.replace("    kind: home\n", "    kind: hut\n    timezone: Nowhere/Land\n")
    lines = problems(text)
    assert [line.split(": ")[1] for line in lines] == ["sites[s1].kind", "sites[s1].timezone"]


def test_empty_and_non_mapping_files() -> None:
    assert problems("") == ["t.yaml: the file is empty (write `sites: []` for no sites)"]
    assert problems("- a\n") == ["t.yaml:1: the top level must be a mapping with a `sites:` list"]
    assert parse_registry("sites: []\n").sites == []


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(RegistryError, match=r"nope\.yaml: no such file"):
        load_registry_file(missing)


def test_a_contact_is_on_its_room_door_only_when_declared_so() -> None:
    """`room_door` tells the bathroom's door from a cabinet in it. Undeclared, a contact is
    on furniture: read as activity, it can never end a stay that is really going on."""
    bathroom = "      - {id: bath, kind: bathroom}\n"
    text = (
        SITE.replace("      - {id: bedroom, kind: bedroom}\n", bathroom)
        + "    devices:\n"
        + "      - {id: bath-door, kind: door, room: bath, room_door: true}\n"
        + "      - {id: bath-cabinet, kind: door, room: bath}\n"
        + "      - {id: front, kind: door, room: bath, outer_door: true}\n"
    )
    (site,) = parse_registry(text, "t.yaml").sites
    mounted = {d.id: (d.room_door, d.outer_door) for d in site.devices}
    assert mounted == {
        "bath-door": (True, False),
        "bath-cabinet": (False, False),
        "front": (False, True),
    }
    assert "room_door: true" in dump_registry(parse_registry(text, "t.yaml"))

    wrong_kind = SITE + "    devices:\n      - {id: pir-1, kind: motion, room_door: true}\n"
    assert problems(wrong_kind) == [
        "t.yaml:9: sites[s1].devices[pir-1]: room_door: only a door contact sits"
        " on a door, not a motion"
    ]
    both = SITE + "    devices:\n      - {id: d1, kind: door, outer_door: true, room_door: true}\n"
    assert problems(both) == [
        "t.yaml:9: sites[s1].devices[d1]: room_door and outer_door: a contact on"
        " the door leading outside is the outer door only (set outer_door: true)"
    ]
