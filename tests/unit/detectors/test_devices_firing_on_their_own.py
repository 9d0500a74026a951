"""A device learned to fire on its own in an empty home (`absence.lone_firing`): fired with
nothing else indoors and then the outer door came next, on `lone_device_days` (2)
days, it is no longer, alone, someone come home (fake clock). In view: van Kasteren house
B's kitchen PIR firing in the evenings he was out."""

from __future__ import annotations

from detectors.absence import AbsenceState
from detectors.bathroom_too_long import BathroomRule
from detectors.inactivity import InactivityRule
from detectors.resident_state import ResidentStateModel
from eldercare.domain import AlertKind, Reading, Stream, Transition, TransitionAction
from eldercare.registry_model import Site
from tests.helpers.detectors import HOME_DEVICES, context, home_site, local_ts, reading, replay

TZ = "Europe/Amsterdam"
RAISE = TransitionAction.RAISE


def _site() -> Site:
    """The test home (front door in an entrance without a sensor) with a fridge contact."""
    return home_site(
        TZ, devices=[*HOME_DEVICES, {"id": "fridge", "kind": "door", "room": "kitchen"}]
    )


def _at(day: int, hour: int, minute: int = 0, second: float = 0.0) -> float:
    return local_ts(TZ, 2024, 5, day, hour, minute, second)


def _door(site: Site, ts: float) -> list[Reading]:
    return [
        reading(site, "door-front", Stream.CONTACT, ts, open=True),
        reading(site, "door-front", Stream.CONTACT, ts + 20, open=False),
    ]


def _fires(site: Site, device: str, ts: float) -> list[Reading]:
    if device == "fridge":
        return [
            reading(site, device, Stream.CONTACT, ts, open=True),
            reading(site, device, Stream.CONTACT, ts + 5, open=False),
        ]
    return [reading(site, device, Stream.MOTION, ts, motion=True)]


def _evening_out(
    site: Site, day: int, device: str, back: tuple[int, int] = (21, 0)
) -> list[Reading]:
    """Home at 17:00, out of the front door at 18:00, `device` fires alone at 19:00 in the
    empty home, back through the door at `back`, then seen in the living room."""
    back_ts = _at(day, *back)
    return [
        *_fires(site, "pir-living", _at(day, 17)),
        *_door(site, _at(day, 18)),
        *_fires(site, device, _at(day, 19)),
        *_door(site, back_ts),
        *_fires(site, "pir-living", back_ts + 60),
    ]


def _learned(site: Site, device: str = "pir-kitchen") -> list[Reading]:
    """Two evenings (10 and 11 May) with `device` firing alone while she was out."""
    return _evening_out(site, 10, device) + _evening_out(site, 11, device)


def _raises(out: list[Transition], kind: AlertKind, day: int) -> list[Transition]:
    """Raised from noon of `day` on (the learning evenings' own nights are not judged)."""
    return [t for t in out if t.action == RAISE and t.kind == kind and t.ts >= _at(day, 12)]


def test_a_device_that_fired_alone_in_an_empty_home_on_two_days_does_not_end_an_absence() -> None:
    site = _site()
    model = ResidentStateModel(context(site))
    for r in _learned(site):
        model.update(r)
    assert model.state.absence.lone_firings == {"pir-kitchen": 2}
    for r in [*_fires(site, "pir-living", _at(12, 17)), *_door(site, _at(12, 18))]:
        model.update(r)
    model.update(_fires(site, "pir-kitchen", _at(12, 19))[0])
    assert model.view.is_away(_at(12, 19, 1)) is True  # the PIR alone: still out
    assert model.view.moved is False  # and not a movement for any rule
    for r in _door(site, _at(12, 21)):
        model.update(r)
    assert model.view.is_away(_at(12, 21, 1)) is False  # the door: home


def test_before_it_is_learned_a_lone_firing_ends_the_absence_as_before() -> None:
    """The warm-up: nothing learned, a firing in an empty home is someone come home."""
    site = _site()
    model = ResidentStateModel(context(site))
    for r in _evening_out(site, 10, "pir-kitchen")[:4]:  # up to the kitchen PIR at 19:00
        model.update(r)
    assert model.view.is_away(_at(10, 19, 1)) is False
    assert model.state.absence.lone_firings == {}


def test_lone_firings_count_once_a_day() -> None:
    site = _site()
    model = ResidentStateModel(context(site))
    two_outings = [
        *_evening_out(site, 10, "pir-kitchen", back=(20, 0)),
        *_door(site, _at(10, 21)),
        *_fires(site, "pir-kitchen", _at(10, 22)),
        *_door(site, _at(10, 23)),
    ]
    for r in two_outings:
        model.update(r)
    assert model.state.absence.lone_firings == {"pir-kitchen": 1}


def test_a_second_device_with_it_is_someone_home() -> None:
    site = _site()
    model = ResidentStateModel(context(site))
    rs = [
        *_learned(site),
        *_fires(site, "pir-living", _at(12, 17)),
        *_door(site, _at(12, 18)),
        *_fires(site, "pir-kitchen", _at(12, 19)),
        *_fires(site, "pir-living", _at(12, 19, 2)),
    ]
    for r in rs:
        model.update(r)
    assert model.view.is_away(_at(12, 19, 3)) is False


def test_another_device_learned_to_fire_alone_is_not_learned_for_the_fridge() -> None:
    """Safety: the kitchen PIR learned, then the fridge opened at 15:00 in the empty home
    and nothing after it is someone come home and lying still: raised."""
    site = _site()
    rs = [
        *_learned(site),
        *_fires(site, "pir-living", _at(12, 13)),
        *_door(site, _at(12, 14)),
        *_fires(site, "fridge", _at(12, 15)),
    ]
    out = replay(InactivityRule(context(site)), rs, _at(12, 23))
    assert len(_raises(out, AlertKind.INACTIVITY, 12)) == 1


def test_a_learned_device_firing_in_an_empty_home_is_no_long_lie() -> None:
    """Before: the kitchen PIR at 19:00 brought him home, and out until 23:30 raised
    `inactivity` at 22:00 (house B, three evenings)."""
    site = _site()
    rs = _learned(site) + _evening_out(site, 12, "pir-kitchen", back=(23, 30))
    out = replay(InactivityRule(context(site)), rs, _at(13, 0))
    assert _raises(out, AlertKind.INACTIVITY, 12) == []


def test_a_learned_bathroom_sensor_firing_in_an_empty_home_is_no_bathroom_stay() -> None:
    """Before: the bathroom PIR alone at 19:00 in the empty home began a stay, raised at
    19:45 (ARAS house A's shower cabin with both out)."""
    site = _site()
    rs = _learned(site, "pir-bath") + _evening_out(site, 12, "pir-bath")
    out = replay(BathroomRule(context(site)), rs, _at(13, 0))
    assert _raises(out, AlertKind.BATHROOM_TOO_LONG, 12) == []


def test_the_learned_record_is_kept_in_snapshots_and_old_snapshots_restore() -> None:
    site = _site()
    model = ResidentStateModel(context(site))
    for r in _learned(site):
        model.update(r)
    again = ResidentStateModel(context(site))
    again.restore(model.snapshot())
    assert again.state.absence.lone_firings == {"pir-kitchen": 2}
    old = {"last_door": 1.0, "indoor_after_door": False, "away_since": 1.0}
    restored = AbsenceState.model_validate(old)
    assert restored.lone_firings == {} and restored.fired_alone == []
