"""Rule state is held in slots dataclasses (no `__dict__` per object; a worker keeps some
thirty per site) that dump and restore the JSON the pydantic models wrote.

`snapshots_session7.json` holds every catalogue rule's snapshot part-way through the
conformance day (after reading 114) and at its end, written by the code of session 7,
when rule state was pydantic models (`tests/helpers/detector_conformance.scripted_day`;
regenerate only on purpose: a change there is a change of the snapshot format). Its
`not_up` entry was written by session 8's pydantic models, when that rule gained three
fields (`last_moved`, `quiet_door`, `unseen_return`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from detectors.catalogue import CATALOGUE, site_context  # every rule, so every state class
from detectors.rule import RuleState
from tests.helpers.detector_conformance import scripted_day, scripted_site

CUT = 114
GOLDEN: dict[str, dict[str, Any]] = json.loads(
    (Path(__file__).parent / "snapshots_session7.json").read_text()
)


def _subclasses(cls: type[RuleState]) -> list[type[RuleState]]:
    out = []
    for sub in cls.__subclasses__():
        out += [sub, *_subclasses(sub)]
    return out


def test_every_rule_state_is_a_slots_dataclass() -> None:
    # `@rule_state` makes a new class (dataclass slots): the module's name is bound to it.
    states = [
        cls
        for cls in _subclasses(RuleState)
        if getattr(sys.modules[cls.__module__], cls.__name__, None) is cls
    ]
    assert len(states) > 30
    for cls in states:
        assert cls.__dictoffset__ == 0, f"{cls.__qualname__}: its objects would have a __dict__"
        assert "__dataclass_fields__" in vars(cls), f"{cls.__qualname__}: not @rule_state"


def test_the_golden_file_covers_the_catalogue() -> None:
    assert sorted(GOLDEN) == sorted(CATALOGUE)


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_a_rule_dumps_the_snapshots_it_dumped_as_pydantic_models(name: str) -> None:
    site = scripted_site()
    day = scripted_day(site)
    det = CATALOGUE[name].factory(site_context(site))
    for r in day[:CUT]:
        det.update(r)
    assert json.loads(json.dumps(det.snapshot())) == GOLDEN[name]["mid_day"]
    for r in day[CUT:]:
        det.update(r)
    det.advance(day[-1].ts + 86400)
    assert json.loads(json.dumps(det.snapshot())) == GOLDEN[name]["end"]


@pytest.mark.parametrize("name", sorted(CATALOGUE))
@pytest.mark.parametrize("when", ["mid_day", "end"])
def test_a_snapshot_of_the_pydantic_models_restores_identically(name: str, when: str) -> None:
    site = scripted_site()
    day = scripted_day(site)
    det = CATALOGUE[name].factory(site_context(site))
    det.restore(GOLDEN[name][when])
    assert json.loads(json.dumps(det.snapshot())) == GOLDEN[name][when]
    if when == "mid_day":  # and it goes on as the uninterrupted rule did
        for r in day[CUT:]:
            det.update(r)
        det.advance(day[-1].ts + 86400)
        assert json.loads(json.dumps(det.snapshot())) == GOLDEN[name]["end"]
