"""Hazard rules on event time: smoke, gas, CO and water leak alarms; heat and cold indoors."""

from __future__ import annotations

from typing import Any

from detectors.catalogue import build_site_detectors
from detectors.hazard_alarm import GasRule, SmokeRule, WaterLeakRule
from detectors.indoor_temperature import ColdRule, HeatRule
from eldercare.domain import AlertKind, Severity, Stream, TransitionAction
from eldercare.evidence import EvidenceCode, seen
from tests.helpers.detectors import HOME_DEVICES, context, home_site, local_ts, reading

TZ = "Asia/Shanghai"
HAZARD_DEVICES: list[dict[str, Any]] = [
    {"id": "smoke-kitchen", "kind": "smoke_alarm", "room": "kitchen"},
    {"id": "smoke-living", "kind": "smoke_alarm", "room": "living"},
    {"id": "gas-kitchen", "kind": "gas_alarm", "room": "kitchen"},
    {"id": "leak-bath", "kind": "water_leak", "room": "bathroom"},
    {"id": "th-bedroom", "kind": "climate", "room": "bedroom"},
    {"id": "th-living", "kind": "climate", "room": "living"},
]


def site(**kw: Any) -> Any:
    return home_site(TZ, devices=HOME_DEVICES + HAZARD_DEVICES, **kw)


def at(hour: int, minute: int = 0, day: int = 15, month: int = 7) -> float:
    return local_ts(TZ, 2024, month, day, hour, minute)


def actions(out: list[Any]) -> list[str]:
    return [t.action.value for t in out]


# --- smoke, gas, CO, water ---------------------------------------------------------------


def test_smoke_raises_clears_and_raises_again() -> None:
    s = site()
    rule = SmokeRule(context(s))
    t0 = at(18, 5)
    [raised] = rule.update(reading(s, "smoke-kitchen", Stream.SMOKE, t0, smoke=True))
    assert raised.action is TransitionAction.RAISE and raised.kind is AlertKind.SMOKE
    assert raised.severity is Severity.CRITICAL
    assert raised.ts == t0 and raised.room_id == "kitchen" and raised.resident_id == "res-1"
    assert raised.evidence[0].summary == "smoke alarm sounding"
    assert raised.evidence[0].observations == (seen(EvidenceCode.SMOKE_ALARM),)
    # The detector repeats its state while it sounds: nothing new.
    assert rule.update(reading(s, "smoke-kitchen", Stream.SMOKE, t0 + 30, smoke=True)) == []
    [cleared] = rule.update(reading(s, "smoke-kitchen", Stream.SMOKE, t0 + 300, smoke=False))
    assert cleared.action is TransitionAction.CLEAR and cleared.ts == t0 + 300
    [again] = rule.update(reading(s, "smoke-kitchen", Stream.SMOKE, t0 + 420, smoke=True))
    assert again.action is TransitionAction.RAISE and again.ts == t0 + 420


def test_two_detectors_are_one_alert_until_both_clear() -> None:
    s = site()
    rule = SmokeRule(context(s))
    t0 = at(18)
    out = rule.update(reading(s, "smoke-kitchen", Stream.SMOKE, t0, smoke=True))
    out += rule.update(reading(s, "smoke-living", Stream.SMOKE, t0 + 40, smoke=True))
    out += rule.update(reading(s, "smoke-kitchen", Stream.SMOKE, t0 + 200, smoke=False))
    assert actions(out) == ["raise", "update", "update"]
    assert out[-1].details["devices"] == ["smoke-living"]
    [cleared] = rule.update(reading(s, "smoke-living", Stream.SMOKE, t0 + 260, smoke=False))
    assert cleared.action is TransitionAction.CLEAR


def test_a_test_press_raises_nothing() -> None:
    s = site()
    rule = SmokeRule(context(s))
    t0 = at(10)
    assert rule.update(reading(s, "smoke-kitchen", Stream.SMOKE, t0, smoke=True, test=True)) == []
    assert rule.update(reading(s, "smoke-kitchen", Stream.SMOKE, t0 + 5, smoke=False)) == []


def test_gas_is_critical_and_water_leak_high() -> None:
    s = site()
    t0 = at(12)
    [gas] = GasRule(context(s)).update(reading(s, "gas-kitchen", Stream.GAS, t0, gas=True))
    assert gas.kind is AlertKind.GAS and gas.severity is Severity.CRITICAL
    leak_rule = WaterLeakRule(context(s))
    [leak] = leak_rule.update(reading(s, "leak-bath", Stream.WATER_LEAK, t0, water_leak=True))
    assert leak.kind is AlertKind.WATER_LEAK and leak.severity is Severity.HIGH


def test_hazard_rules_are_built_for_a_site_with_hazard_devices_only() -> None:
    with_hazards = build_site_detectors(context(site()))
    assert {"smoke", "gas", "carbon_monoxide", "water_leak", "heat", "cold"} <= set(with_hazards)
    without = build_site_detectors(context(home_site(TZ)))
    assert not {"smoke", "heat", "cold"} & set(without)


def test_a_smoke_alarm_during_a_site_outage_still_raises() -> None:
    """The detector layer: a site that was silent for hours raises its hazard on the
    first message back, stamped with the alarm's own event time."""
    s = site()
    dets = build_site_detectors(context(s))
    t0 = at(3)
    for det in dets.values():
        det.update(reading(s, "pir-living", Stream.MOTION, t0, motion=True))
    late = t0 + 6 * 3600
    out = []
    for det in dets.values():
        out += det.advance(late)
    assert any(t.kind is AlertKind.SITE_OFFLINE and t.action is TransitionAction.RAISE for t in out)
    smoke = dets["smoke"].update(reading(s, "smoke-kitchen", Stream.SMOKE, late + 1, smoke=True))
    assert [(t.kind, t.action, t.ts) for t in smoke] == [
        (AlertKind.SMOKE, TransitionAction.RAISE, late + 1)
    ]


# --- heat --------------------------------------------------------------------------------


def test_heat_sustained_two_hours_crossing() -> None:
    s = site()
    rule = HeatRule(context(s))
    t0 = at(13)
    assert rule.update(reading(s, "th-living", Stream.TEMPERATURE, t0, celsius=29.5)) == []
    cross = t0 + 600
    assert rule.update(reading(s, "th-living", Stream.TEMPERATURE, cross, celsius=30.2)) == []
    assert (
        rule.update(reading(s, "th-living", Stream.TEMPERATURE, cross + 3600, celsius=31.0)) == []
    )
    assert rule.advance(cross + 7200 - 1) == []
    [raised] = rule.advance(cross + 7200 + 600)
    assert raised.kind is AlertKind.HEAT and raised.action is TransitionAction.RAISE
    assert raised.ts == cross + 7200  # stamped with the moment it became two hours
    assert raised.details["minutes"] == 120 and raised.resident_id == "res-1"
    assert raised.evidence[0].summary == "indoor 31.0 °C"
    assert raised.evidence[0].observations == (seen(EvidenceCode.INDOOR_CELSIUS, celsius=31.0),)
    # Back below the limit by the margin: clears.
    back = cross + 9000
    assert rule.update(reading(s, "th-living", Stream.TEMPERATURE, back, celsius=29.5)) == []
    [cleared] = rule.update(reading(s, "th-living", Stream.TEMPERATURE, back + 60, celsius=28.8))
    assert cleared.action is TransitionAction.CLEAR
    assert cleared.evidence[0].observations == (seen(EvidenceCode.TEMPERATURE_NORMAL),)


def test_heat_dipping_below_the_limit_restarts_the_count() -> None:
    s = site()
    rule = HeatRule(context(s))
    t0 = at(12)
    rule.update(reading(s, "th-living", Stream.TEMPERATURE, t0, celsius=30.5))
    rule.update(reading(s, "th-living", Stream.TEMPERATURE, t0 + 3600, celsius=28.5))
    rule.update(reading(s, "th-living", Stream.TEMPERATURE, t0 + 4000, celsius=30.5))
    assert rule.advance(t0 + 7300) == []
    [raised] = rule.advance(t0 + 4000 + 7200)
    assert raised.ts == t0 + 4000 + 7200


def test_heat_rising_fast_raises_at_once() -> None:
    s = site()
    rule = HeatRule(context(s))
    t0 = at(14)
    rule.update(reading(s, "th-bedroom", Stream.TEMPERATURE, t0, celsius=27.5))
    rule.update(reading(s, "th-bedroom", Stream.TEMPERATURE, t0 + 1200, celsius=30.0))
    [raised] = rule.update(reading(s, "th-bedroom", Stream.TEMPERATURE, t0 + 2400, celsius=33.0))
    assert raised.ts == t0 + 2400 and raised.details["reason"] == "rising fast"


def test_heat_limit_per_resident() -> None:
    s = site(resident_overrides={"heat": {"limit_c": 28.0, "sustained_minutes": 60}})
    rule = HeatRule(context(s))
    t0 = at(12)
    rule.update(reading(s, "th-living", Stream.TEMPERATURE, t0, celsius=28.5))
    [raised] = rule.advance(t0 + 3600)
    assert raised.ts == t0 + 3600


def test_no_heat_alert_while_nobody_is_home_then_on_return() -> None:
    s = site()
    rule = HeatRule(context(s))
    t0 = at(9)
    rule.update(reading(s, "pir-living", Stream.MOTION, t0, motion=True))
    rule.update(reading(s, "door-front", Stream.CONTACT, t0 + 60, open=True))
    rule.update(reading(s, "door-front", Stream.CONTACT, t0 + 70, open=False))
    hot = t0 + 3600
    rule.update(reading(s, "th-living", Stream.TEMPERATURE, hot, celsius=32.0))
    assert rule.advance(hot + 4 * 3600) == []
    back = hot + 5 * 3600
    out = rule.update(reading(s, "door-front", Stream.CONTACT, back, open=True))
    out += rule.update(reading(s, "pir-living", Stream.MOTION, back + 120, motion=True))
    assert [(t.kind, t.action, t.ts) for t in out] == [
        (AlertKind.HEAT, TransitionAction.RAISE, back)  # back in through the door
    ]


def test_heat_rising_fast_while_nobody_is_home_raises_nothing() -> None:
    s = site()
    rule = HeatRule(context(s))
    t0 = at(9)
    rule.update(reading(s, "pir-living", Stream.MOTION, t0, motion=True))
    rule.update(reading(s, "door-front", Stream.CONTACT, t0 + 60, open=True))
    rule.advance(t0 + 3600)  # gone out: nobody seen inside for the absence rule's time
    hot = t0 + 2 * 3600
    rule.update(reading(s, "th-living", Stream.TEMPERATURE, hot, celsius=30.0))
    assert rule.update(reading(s, "th-living", Stream.TEMPERATURE, hot + 600, celsius=34.0)) == []


def test_low_battery_from_a_detectors_own_flag() -> None:
    from detectors.low_battery import LowBatteryRule

    s = site()
    rule = LowBatteryRule(context(s))
    t0 = at(10)
    [raised] = rule.update(reading(s, "smoke-kitchen", Stream.BATTERY, t0, low=True))
    assert raised.kind is AlertKind.LOW_BATTERY and raised.action is TransitionAction.RAISE
    assert raised.evidence[0].observations == (seen(EvidenceCode.BATTERY_FLAG),)
    [cleared] = rule.update(reading(s, "smoke-kitchen", Stream.BATTERY, t0 + 60, low=False))
    assert cleared.action is TransitionAction.CLEAR


# --- cold --------------------------------------------------------------------------------


def test_cold_only_at_night() -> None:
    s = site()
    rule = ColdRule(context(s))
    afternoon = at(14, day=15, month=1)
    rule.update(reading(s, "th-bedroom", Stream.TEMPERATURE, afternoon, celsius=14.0))
    # All afternoon and evening at 14 °C: nothing; the night starts counting at 22:00.
    assert rule.advance(at(22, 30, day=15, month=1)) == []
    [raised] = rule.advance(at(23, 30, day=15, month=1))
    assert raised.kind is AlertKind.COLD and raised.ts == at(23, 0, day=15, month=1)
    [cleared] = rule.update(
        reading(s, "th-bedroom", Stream.TEMPERATURE, at(23, 45, day=15, month=1), celsius=17.5)
    )
    assert cleared.action is TransitionAction.CLEAR


def test_cold_crossing_too_late_in_the_night_waits_for_the_next_night() -> None:
    s = site()
    rule = ColdRule(context(s))
    late = at(6, 30, day=16, month=1)  # 30 minutes before the night ends at 07:00
    rule.update(reading(s, "th-bedroom", Stream.TEMPERATURE, late, celsius=15.0))
    assert rule.advance(at(21, 0, day=16, month=1)) == []
    [raised] = rule.advance(at(23, 59, day=16, month=1))
    assert raised.ts == at(23, 0, day=16, month=1)


def test_state_survives_a_snapshot() -> None:
    s = site()
    rule = HeatRule(context(s))
    t0 = at(12)
    rule.update(reading(s, "th-living", Stream.TEMPERATURE, t0, celsius=31.0))
    restored = HeatRule(context(s))
    restored.restore(rule.snapshot())
    [raised] = restored.advance(t0 + 7200)
    assert raised.ts == t0 + 7200
