"""Routing readings to the rules that declare their stream, and the cached due times.

A rule's `streams` says which readings can change it; the runtime gives it no others
(besides the first reading after a build or restore). A wrong declaration would lose
alerts silently, so every rule is probed here with readings of every stream it leaves
out, mid-episode, and must not change; and a routed site must emit exactly what a site
giving every reading to every rule emits.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from typing import Any

import pytest

from detectors.base import Detector
from detectors.catalogue import CATALOGUE, build_site_detectors, site_context
from detectors.device_offline import DeviceOfflineRule
from detectors.rule import Rule
from detectors.site_detectors import SiteDetectors
from detectors.site_offline import SiteOfflineRule
from eldercare.domain import AlertKind, FieldValue, Reading, Stream, Transition
from tests.helpers.detector_conformance import scripted_day, scripted_site
from tests.helpers.detectors import reading

# Values of each stream worth probing with (both sides of every flag a rule may look at).
PROBES: dict[Stream, list[dict[str, FieldValue]]] = {
    Stream.MOTION: [{"motion": True}, {"motion": False}],
    Stream.CONTACT: [{"open": True}, {"open": False}],
    Stream.OCCUPANCY: [{"occupied": True}, {"occupied": False}],
    Stream.PRESENCE: [{"present": True}, {"present": False}],
    Stream.FALL: [{"status": "fall"}, {"status": "maybe_fall"}, {"status": "none"}],
    Stream.SOS: [{"pressed": True}],
    Stream.BATTERY: [{"percent": 5.0}, {"percent": 80.0}],
    Stream.TAMPER: [{"tamper": True}, {"tamper": False}],
    Stream.VITALS: [{"heart_rate": 150.0, "breathing_rate": 14.0}, {"heart_rate": 60.0}],
    Stream.LINK: [{"linkquality": 10}],
    Stream.HEARTBEAT: [{}, {"seq": 7}],
    Stream.AVAILABILITY: [{"online": False}, {"online": True}],
    Stream.FLUSH: [{"flushed": True}],
    Stream.POWER: [{"watts": 900.0}, {"watts": 0.0}],
    Stream.SMOKE: [{"smoke": True}, {"smoke": False}],
    Stream.GAS: [{"gas": True}, {"gas": False}],
    Stream.CARBON_MONOXIDE: [{"carbon_monoxide": True}, {"carbon_monoxide": False}],
    Stream.WATER_LEAK: [{"water_leak": True}, {"water_leak": False}],
    Stream.TEMPERATURE: [{"celsius": 35.0}, {"celsius": 10.0}],
    Stream.HUMIDITY: [{"percent": 90.0}],
    Stream.ACCEL: [],  # only the wearable detector reads it, and it declares no streams
    # The field service's streams: a test press, a resident's request. No rule reads them.
    Stream.DEVICE_TEST: [{"passed": True}, {"passed": False}],
    Stream.ACTION: [{"action": "double"}],
    Stream.SERVICE_REQUEST: [{"kind": "meal"}],
}
RULES = sorted(n for n in CATALOGUE if n != "wearable_fall")


def _state(det: Detector) -> tuple[str, float | None]:
    return json.dumps(det.snapshot(), sort_keys=True), det.next_due()


def test_every_rule_declares_its_streams() -> None:
    """Only the rules that judge devices' silence take every reading (heartbeats)."""
    ctx = site_context(scripted_site())
    every = sorted(n for n in RULES if CATALOGUE[n].factory(ctx).streams is None)  # type: ignore[attr-defined]
    assert every == ["device_offline", "site_offline"]


@pytest.mark.parametrize("name", RULES)
def test_undeclared_streams_leave_a_rule_unchanged(name: str) -> None:
    site = scripted_site()
    det = CATALOGUE[name].factory(site_context(site))
    assert isinstance(det, Rule)
    declared = det.streams if det.streams is not None else frozenset(Stream)
    undeclared = [s for s in Stream if s not in declared]
    devices = [d.id for d in site.devices]
    day = scripted_day(site)
    probed = 0
    for step, r in enumerate(day):
        det.update(r)  # the first reading settles the rule; after it, probes must not count
        if step % 3:
            continue
        for j, stream in enumerate(undeclared):
            for k, fields in enumerate(PROBES[stream]):
                device = devices[(step + j + k) % len(devices)]
                probe = reading(site, device, stream, r.ts, **fields)
                det.advance(probe.ts)  # the site fires every due timer before any reading
                before = _state(det)
                assert det.update(probe) == [], (name, probe)
                assert _state(det) == before, (name, stream, fields, device)
                probed += 1
    assert probed > 0 or not undeclared


class _EveryReading:
    """A detector behind a proxy that declares no streams: it gets every reading."""

    def __init__(self, inner: Detector) -> None:
        self.inner = inner
        self.kinds = inner.kinds
        self.event_time_streams: frozenset[Stream] = getattr(
            inner, "event_time_streams", frozenset()
        )

    def update(self, reading: Reading) -> list[Transition]:
        return self.inner.update(reading)

    def advance(self, now: float) -> list[Transition]:
        return self.inner.advance(now)

    def next_due(self) -> float | None:
        return self.inner.next_due()

    def snapshot(self) -> dict[str, Any]:
        return self.inner.snapshot()

    def restore(self, state: Mapping[str, Any]) -> None:
        self.inner.restore(state)


def _with_heartbeats(day: list[Reading]) -> list[Reading]:
    site = scripted_site()
    devices = [d.id for d in site.devices]
    out = [reading(site, devices[0], Stream.HEARTBEAT, day[0].ts - 60)]
    for i, r in enumerate(day):
        out.append(r)
        out.append(reading(site, devices[i % len(devices)], Stream.HEARTBEAT, r.ts + 1))
        if i % 5 == 0:
            out.append(
                reading(site, devices[i % len(devices)], Stream.LINK, r.ts + 2, linkquality=9)
            )
    return out


def test_a_routed_site_emits_what_every_rule_seeing_everything_emits() -> None:
    site = scripted_site()
    readings = _with_heartbeats(scripted_day(site))
    routed = SiteDetectors(site, build_site_detectors(site_context(site)))
    everything = SiteDetectors(
        site,
        {n: _EveryReading(d) for n, d in build_site_detectors(site_context(site)).items()},
    )
    outs: list[list[Transition]] = [[], []]
    for k, sd in enumerate((routed, everything)):
        for i, r in enumerate(readings):
            outs[k].extend(sd.apply(r))
            if i == len(readings) // 2:  # a restart mid-way: a restored set starts afresh
                sd.restore(sd.snapshot())
        outs[k].extend(sd.advance(readings[-1].ts + 3 * 86400))
    assert outs[0] == outs[1]
    kinds = {t.kind for t in outs[0]}
    assert {AlertKind.NOT_UP, AlertKind.INACTIVITY, AlertKind.DEVICE_OFFLINE} <= kinds
    assert routed.snapshot() == everything.snapshot()


def test_the_first_reading_after_a_build_goes_to_every_rule() -> None:
    """not_up starts judging mornings from the first reading of any kind: a site that only
    sends heartbeats (the resident never got out of bed) must still raise."""
    site = scripted_site()
    sd = SiteDetectors(site, build_site_detectors(site_context(site)))
    t0 = scripted_day(site)[0].ts
    out: list[Transition] = []
    for k in range(0, 20 * 3600, 600):  # 21:00 to 17:00 next day
        out += sd.apply(reading(site, "bed-1", Stream.HEARTBEAT, t0 + k))
    assert AlertKind.NOT_UP in {t.kind for t in out}


class _Counting:
    kinds: tuple[AlertKind, ...] = (AlertKind.VITALS,)
    streams = frozenset({Stream.VITALS})

    def __init__(self) -> None:
        self.updates = 0
        self.due_asked = 0

    def update(self, reading: Reading) -> list[Transition]:
        self.updates += 1
        return []

    def advance(self, now: float) -> list[Transition]:
        return []

    def next_due(self) -> float | None:
        self.due_asked += 1
        return None

    def snapshot(self) -> dict[str, Any]:
        return {}

    def restore(self, state: Mapping[str, Any]) -> None:
        pass


def test_only_rules_given_a_reading_recompute_their_due() -> None:
    site = scripted_site()
    counting = _Counting()
    sd = SiteDetectors(site, {"counting": counting})
    t0 = scripted_day(site)[0].ts
    sd.apply(reading(site, "bed-1", Stream.HEARTBEAT, t0))  # the first goes to everyone
    assert (counting.updates, counting.due_asked) == (1, 1)
    for k in range(1, 50):
        sd.apply(reading(site, "bed-1", Stream.HEARTBEAT, t0 + k))
    assert counting.updates == 1
    assert counting.due_asked == 2  # once more, when the first reading's due was recomputed
    sd.apply(reading(site, "vitals-1", Stream.VITALS, t0 + 60, heart_rate=70.0))
    assert sd.next_due() is None
    assert (counting.updates, counting.due_asked) == (2, 3)


def test_a_detector_added_after_the_build_is_routed() -> None:
    site = scripted_site()
    sd = SiteDetectors(site, {})
    t0 = scripted_day(site)[0].ts
    sd.apply(reading(site, "bed-1", Stream.HEARTBEAT, t0))
    counting = _Counting()
    sd.detectors["counting"] = counting
    sd.apply(reading(site, "bed-1", Stream.HEARTBEAT, t0 + 1))
    assert counting.updates == 1  # a changed set starts afresh: the next reading goes to all
    sd.apply(reading(site, "vitals-1", Stream.VITALS, t0 + 2, heart_rate=70.0))
    assert counting.updates == 2


# --- the incremental due times of the silence rules ----------------------------------------


@pytest.mark.parametrize("rule", [DeviceOfflineRule, SiteOfflineRule])
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("site_offline_on", [True, False])
def test_incremental_due_equals_a_full_scan(
    rule: type[Rule[Any]], seed: int, site_offline_on: bool
) -> None:
    """After any mix of readings (availability offline and back, devices silent for long,
    late readings, timers firing), the kept due equals one computed from scratch.
    (device_offline waits for the site to be heard while site_offline runs, and raises at
    its own timers when it does not.)"""
    rng = random.Random(seed)
    site = scripted_site()
    if not site_offline_on:
        site = site.model_copy(update={"detectors": {"site_offline": {"enabled": False}}})
    ctx = site_context(site)
    det = rule(ctx)
    devices = [d.id for d in site.devices]
    t = scripted_day(site)[0].ts
    for _ in range(400):
        t += rng.choice([1.0, 30.0, 300.0, 3600.0])
        ts = t - rng.choice([0.0, 0.0, 0.0, 50.0])  # now and then a late reading
        device = rng.choice(devices[: rng.choice([2, len(devices)])])  # some devices stay silent
        roll = rng.random()
        if roll < 0.1:
            r = reading(site, device, Stream.AVAILABILITY, ts, online=False)
        elif roll < 0.2:
            r = reading(site, device, Stream.AVAILABILITY, ts, online=True)
        else:
            r = reading(site, device, Stream.HEARTBEAT, ts)
        # The same reading to the rule as it goes and to one restored from its snapshot
        # (heaps rebuilt from the state): the same transitions, the same due time.
        restored = rule(ctx)
        restored.restore(det.snapshot())
        assert det.update(r) == restored.update(r)
        if rng.random() < 0.2:
            now = t + rng.choice([0.0, 600.0, 7200.0])
            assert det.advance(now) == restored.advance(now)
        fresh = rule(ctx)
        fresh.restore(det.snapshot())
        assert det.next_due() == fresh.next_due() == restored.next_due()
