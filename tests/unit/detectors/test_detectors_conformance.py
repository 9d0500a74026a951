"""The generic checks every detector of the catalogue must pass (river's `checks/` style)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from detectors.base import Detector
from detectors.catalogue import CATALOGUE, site_context
from eldercare.domain import Reading, Transition
from tests.helpers.detector_conformance import scripted_day, scripted_site

NAMES = sorted(CATALOGUE)


def _fresh(name: str) -> Detector:
    return CATALOGUE[name].factory(site_context(scripted_site()))


def _run(det: Detector, readings: list[Reading], until: float) -> list[Transition]:
    out: list[Transition] = []
    for r in readings:
        out.extend(det.update(r))
    out.extend(det.advance(until))
    return out


@pytest.fixture(scope="module")
def day() -> list[Reading]:
    return scripted_day(scripted_site())


def test_catalogue_covers_every_alert_kind() -> None:
    from eldercare.domain import AlertKind

    emitted = {k for e in CATALOGUE.values() for k in _fresh(e.name).kinds}
    # Raised by the field service's device-fault watch, from device tests, not readings.
    raised_elsewhere = {AlertKind.DEVICE_FAULT}
    assert emitted == set(AlertKind) - raised_elsewhere


@pytest.mark.parametrize("name", NAMES)
def test_follows_the_protocol(name: str, day: list[Reading]) -> None:
    """What the runtime relies on, by behaviour (a runtime-checkable Protocol only looks
    at attribute names): transitions of its own kinds, none stamped after the time
    advanced to, a due time that is a number or None, and a snapshot that survives JSON
    into a fresh detector."""
    det = _fresh(name)
    assert det.kinds, "a detector declares the kinds it may raise"
    out: list[Transition] = []
    for r in day:
        step = det.update(r)
        assert isinstance(step, list)
        out.extend(step)
        due = det.next_due()
        assert due is None or isinstance(due, int | float)
    until = day[-1].ts + 86400
    late = det.advance(until)
    assert all(t.ts <= until for t in late)
    out.extend(late)
    assert all(isinstance(t, Transition) and t.kind in det.kinds for t in out)
    state = json.loads(json.dumps(det.snapshot()))
    twin = _fresh(name)
    twin.restore(state)
    assert twin.snapshot() == det.snapshot()


@pytest.mark.parametrize("name", NAMES)
def test_defaults_are_valid(name: str) -> None:
    model = CATALOGUE[name].settings_model
    defaults = model()
    assert model.model_validate(defaults.model_dump()) == defaults


@pytest.mark.parametrize("name", NAMES)
def test_does_not_mutate_input(name: str, day: list[Reading]) -> None:
    before = copy.deepcopy(day)
    _run(_fresh(name), day, day[-1].ts + 86400)
    assert day == before


@pytest.mark.parametrize("name", NAMES)
def test_deterministic(name: str, day: list[Reading]) -> None:
    until = day[-1].ts + 86400
    assert _run(_fresh(name), day, until) == _run(_fresh(name), day, until)


@pytest.mark.parametrize("name", NAMES)
def test_emits_only_its_kinds_in_time_order(name: str, day: list[Reading]) -> None:
    det = _fresh(name)
    out = _run(det, day, day[-1].ts + 86400)
    assert {t.kind for t in out} <= set(det.kinds)
    assert [t.ts for t in out] == sorted(t.ts for t in out)


@pytest.mark.parametrize("name", NAMES)
def test_snapshot_restore_round_trips_mid_episode(name: str, day: list[Reading]) -> None:
    until = day[-1].ts + 86400
    expected = _run(_fresh(name), day, until)
    expected_state = _run_snapshot(name, day, until)
    for cut in range(1, len(day), 3):
        first = _fresh(name)
        head = _run(first, day[:cut], day[cut - 1].ts)
        state = json.loads(json.dumps(first.snapshot()))  # must survive JSON as is
        second = _fresh(name)
        second.restore(state)
        tail = _run(second, day[cut:], until)
        assert head + tail == expected, f"cut at reading {cut}"
        assert second.snapshot() == expected_state


def _run_snapshot(name: str, day: list[Reading], until: float) -> dict[str, Any]:
    det = _fresh(name)
    _run(det, day, until)
    state: dict[str, Any] = json.loads(json.dumps(det.snapshot()))
    return state


@pytest.mark.parametrize("name", NAMES)
def test_advance_in_steps_equals_one_advance(name: str, day: list[Reading]) -> None:
    until = day[-1].ts + 2 * 86400
    whole = _run(_fresh(name), day, until)
    det = _fresh(name)
    stepped: list[Transition] = []
    for r in day:
        stepped.extend(det.update(r))
    t = day[-1].ts
    while t < until:
        t = min(until, t + 977.0)
        stepped.extend(det.advance(t))
    assert stepped == whole


def test_the_scripted_day_exercises_every_rule(day: list[Reading]) -> None:
    """Otherwise the checks above would pass vacuously for a silent rule."""
    silent = [n for n in NAMES if not _run(_fresh(n), day, day[-1].ts + 86400)]
    assert silent == []
