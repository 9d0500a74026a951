"""Helpers for detector tests: a small home, readings at local times, a replay loop."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from detectors.base import Detector
from detectors.catalogue import site_context
from detectors.site_context import SiteContext
from eldercare.domain import FieldValue, Reading, Stream, Transition
from eldercare.registry_model import Site

HOME_DEVICES: list[dict[str, Any]] = [
    {"id": "bed-1", "kind": "bed", "room": "bedroom", "report_interval_s": 600},
    {"id": "pir-bed", "kind": "motion", "room": "bedroom"},
    {"id": "pir-living", "kind": "motion", "room": "living"},
    {"id": "pir-kitchen", "kind": "motion", "room": "kitchen"},
    {"id": "pir-bath", "kind": "motion", "room": "bathroom"},
    {"id": "door-bath", "kind": "door", "room": "bathroom", "room_door": True},
    {"id": "flush-1", "kind": "flush", "room": "bathroom"},
    {"id": "door-front", "kind": "door", "room": "entrance", "outer_door": True},
    {"id": "radar-1", "kind": "fall_radar", "room": "bathroom"},
    {"id": "sos-1", "kind": "sos_button", "room": "bedroom"},
    {"id": "vitals-1", "kind": "vitals", "room": "bedroom"},
]


def home_site(
    timezone: str = "Asia/Shanghai",
    *,
    site_id: str = "home-1",
    devices: list[dict[str, Any]] | None = None,
    site_overrides: Mapping[str, Mapping[str, Any]] | None = None,
    resident_overrides: Mapping[str, Mapping[str, Any]] | None = None,
    device_suffix: str = "",
) -> Site:
    """A small home; `device_suffix` keeps device ids unique when several homes share a
    registry."""
    devices = [
        {**d, "id": d["id"] + device_suffix}
        for d in (devices if devices is not None else HOME_DEVICES)
    ]
    return Site.model_validate(
        {
            "id": site_id,
            "kind": "home",
            "name": "Test home",
            "organisation": "City/District",
            "timezone": timezone,
            "rooms": [
                {"id": "bedroom", "kind": "bedroom"},
                {"id": "living", "kind": "living"},
                {"id": "kitchen", "kind": "kitchen"},
                {"id": "bathroom", "kind": "bathroom"},
                {"id": "entrance", "kind": "entrance"},
            ],
            "residents": [
                {
                    "id": "res-1",
                    "name": "Zhang",
                    "room": "bedroom",
                    "detectors": dict(resident_overrides or {}),
                }
            ],
            "devices": devices,
            "detectors": dict(site_overrides or {}),
        }
    )


def local_ts(
    timezone: str, year: int, month: int, day: int, hour: int, minute: int = 0, second: float = 0.0
) -> float:
    whole = int(second)
    dt = datetime(year, month, day, hour, minute, whole, tzinfo=ZoneInfo(timezone))
    return dt.timestamp() + (second - whole)


def reading(site: Site, device_id: str, stream: Stream, ts: float, **fields: FieldValue) -> Reading:
    device = site.device(device_id)
    assert device is not None, device_id
    resident = device.resident or (site.residents[0].id if len(site.residents) == 1 else None)
    return Reading(
        site_id=site.id,
        device_id=device_id,
        stream=stream,
        ts=ts,
        fields=dict(fields),
        room_id=device.room,
        resident_id=resident,
    )


def context(site: Site) -> SiteContext:
    return site_context(site)


def replay(
    detector: Detector, readings: Iterable[Reading], until: float | None = None
) -> list[Transition]:
    """Feed readings in order, then advance to `until`."""
    out: list[Transition] = []
    for r in readings:
        out.extend(detector.update(r))
    if until is not None:
        out.extend(detector.advance(until))
    return out


def kinds_actions(transitions: Sequence[Transition]) -> list[tuple[str, str]]:
    return [(t.kind.value, t.action.value) for t in transitions]


# A home with two bed mats, a bedroom and a kitchen PIR, an armchair seat mat, a presence
# radar and a front door: the occupancy tests' home (beds, seats, radars as evidence).
OCCUPANCY_TZ = "Europe/Amsterdam"
OCCUPANCY_DEVICES: list[dict[str, Any]] = [
    {"id": "mat-left", "kind": "bed", "room": "bedroom"},
    {"id": "mat-right", "kind": "bed", "room": "bedroom"},
    {"id": "pir-bed", "kind": "motion", "room": "bedroom"},
    {"id": "pir-kitchen", "kind": "motion", "room": "kitchen"},
    {"id": "armchair", "kind": "seat", "room": "living"},
    {"id": "radar-living", "kind": "presence", "room": "living"},
    {"id": "door-front", "kind": "door", "room": "entrance", "outer_door": True},
]


def occupancy_home() -> Site:
    """The occupancy home with one resident."""
    return home_site(OCCUPANCY_TZ, devices=OCCUPANCY_DEVICES)


def occupancy_couple() -> Site:
    """The occupancy home with two residents."""
    site = occupancy_home()
    doc = site.model_dump()
    doc["residents"] = [
        {"id": "res-1", "name": "Zhang", "room": "bedroom"},
        {"id": "res-2", "name": "Li", "room": "bedroom"},
    ]
    return Site.model_validate(doc)
