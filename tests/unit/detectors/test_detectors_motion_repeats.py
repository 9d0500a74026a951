"""A motion report is movement only when it is a new detection: zigbee2mqtt repeats a
PIR's cached `occupancy: true` in every state message until its occupancy timeout, but
a PIR that re-triggers after its blind time has seen the person again. Event time only."""

from __future__ import annotations

import json
from collections.abc import Sequence

from detectors.inactivity import InactivityRule
from detectors.movement import MOTION_REPEAT_S, MovementState, is_movement
from detectors.not_returned import NotReturnedRule
from eldercare.domain import Reading, Stream
from eldercare.registry_model import Site
from ingest.codecs.adapt import adapt_to_device
from ingest.codecs.limits import DecodeLimits
from ingest.codecs.z2m import decode_z2m
from ingest.decoded import Decoded
from tests.helpers.detectors import context, home_site, local_ts, reading, replay

SH = "Asia/Shanghai"


def _motions(site: Site, device: str, t: float, plan: Sequence[tuple[float, bool]]) -> list[bool]:
    state = MovementState()
    return [
        is_movement(reading(site, device, Stream.MOTION, t + dt, motion=v), state) for dt, v in plan
    ]


def test_repeated_true_within_the_blind_time_is_not_a_new_detection() -> None:
    site = home_site(SH)
    t = local_ts(SH, 2024, 5, 10, 10, 0)
    assert MOTION_REPEAT_S == 60.0
    plan = [(0, True), (3, True), (45, True), (59.9, True), (60, True), (61, True), (150, True)]
    assert _motions(site, "pir-living", t, plan) == [True, False, False, False, True, False, True]


def test_true_after_false_is_a_new_detection_however_soon() -> None:
    site = home_site(SH)
    t = local_ts(SH, 2024, 5, 10, 10, 0)
    plan = [(0, True), (20, False), (30, True), (31, True), (40, False), (41, False)]
    assert _motions(site, "pir-living", t, plan) == [True, False, True, False, False, False]


def test_repeats_are_per_device_and_late_deliveries_are_not_new() -> None:
    site = home_site(SH)
    t = local_ts(SH, 2024, 5, 10, 10, 0)
    state = MovementState()

    def seen(device: str, dt: float) -> bool:
        return is_movement(reading(site, device, Stream.MOTION, t + dt, motion=True), state)

    assert [seen("pir-living", 0), seen("pir-kitchen", 5), seen("pir-living", -4)] == [
        True,
        True,
        False,  # an older report overtaken by the newer one: not news either
    ]


def _z2m_pir_readings(
    site: Site, device_id: str, messages: list[dict[str, object]]
) -> list[Reading]:
    """zigbee2mqtt state messages of a PIR, through ingest's decoder and device adaptation."""
    device = site.device(device_id)
    assert device is not None
    out: list[Reading] = []
    for body in messages:
        received = float(body.pop("_at"))  # type: ignore[arg-type]
        decoded = decode_z2m(
            "zigbee2mqtt", "hall", json.dumps(body).encode(), received, DecodeLimits()
        )
        assert isinstance(decoded, Decoded)
        for raw in decoded.readings:
            adapted = adapt_to_device(raw, device)
            if adapted is not None:
                out.append(
                    Reading(
                        site.id,
                        device_id,
                        adapted.stream,
                        adapted.ts,
                        adapted.fields,
                        received,
                        device.room,
                        site.residents[0].id,
                    )
                )
    return out


def test_z2m_battery_report_repeating_cached_occupancy_is_not_movement() -> None:
    site = home_site(SH)
    t = local_ts(SH, 2024, 5, 10, 10, 0)
    messages: list[dict[str, object]] = [
        {"_at": t, "occupancy": True, "battery": 97, "linkquality": 120},  # the detection
        {"_at": t + 9, "occupancy": True, "battery": 96, "linkquality": 118},  # battery report
        {"_at": t + 70, "occupancy": True, "battery": 96, "linkquality": 121},  # re-triggered
        {"_at": t + 160, "occupancy": False, "battery": 96, "linkquality": 121},  # timeout
        {"_at": t + 200, "occupancy": False, "battery": 96, "linkquality": 119},
        {"_at": t + 230, "occupancy": True, "battery": 96, "linkquality": 119},  # a new one
    ]
    rs = _z2m_pir_readings(site, "pir-living", messages)
    motion = [r for r in rs if r.stream == Stream.MOTION]
    assert [r.ts - t for r in motion] == [0, 9, 70, 160, 200, 230]
    state = MovementState()
    moved = [round(r.ts - t) for r in rs if is_movement(r, state)]
    assert moved == [0, 70, 230]


def _departure(site: Site, t: float) -> list[Reading]:
    """Walk past the living-room PIR, out of the front door; 9 s after the door shut the
    PIR's battery report repeats its cached `occupancy: true` (hh-0137 in the evaluation)."""
    return [
        reading(site, "pir-living", Stream.MOTION, t - 12, motion=True),
        reading(site, "door-front", Stream.CONTACT, t - 6, open=True),
        reading(site, "door-front", Stream.CONTACT, t + 3, open=False),
        reading(site, "pir-living", Stream.MOTION, t + 12, motion=True),  # cached
        reading(site, "pir-living", Stream.MOTION, t + 78, motion=False),
    ]


def test_cached_occupancy_after_the_front_door_does_not_keep_the_resident_home() -> None:
    site = home_site(SH)
    t = local_ts(SH, 2024, 5, 10, 10, 0)
    rs = _departure(site, t)
    rule = InactivityRule(context(site))
    replay(rule, rs, t + 11 * 60)
    assert rule.picture.is_away(t + 11 * 60)
    # Out for 13 h: not_returned raises (it did not, while the repeat kept them "home").
    out = replay(NotReturnedRule(context(site)), rs, t + 14 * 3600)
    assert [x.action.value for x in out] == ["raise"]


def test_pir_re_triggering_after_its_blind_time_keeps_the_resident_home() -> None:
    site = home_site(SH)
    t = local_ts(SH, 2024, 5, 10, 10, 0)
    rs = _departure(site, t)
    # Did not go after all: the PIR sees them again after its blind time.
    rs.insert(4, reading(site, "pir-living", Stream.MOTION, t + 50, motion=True))
    rule = InactivityRule(context(site))
    replay(rule, rs, t + 11 * 60)
    assert not rule.picture.is_away(t + 11 * 60)
