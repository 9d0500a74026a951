"""Institution floors, from the registry.

A room's floor is registry data (`Room.floor`), not an InfluxDB tag: readings carry
`room` and alert events carry `resident`. So a floor becomes, at build time, the
regular expressions matching its room ids and its residents' ids; the institution
dashboards filter on those. Rebuild the dashboards after the registry changes floors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from eldercare.domain import SiteKind
from eldercare.registry_model import RegistryDocument, Site


@dataclass(frozen=True, slots=True)
class Floor:
    label: str
    rooms: tuple[str, ...]
    residents: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Institution:
    site_id: str
    name: str
    floors: tuple[Floor, ...]


def influx_regex(values: tuple[str, ...] | list[str]) -> str:
    """An InfluxQL regex literal matching exactly these values: `/^(a|b)$/`."""
    escaped = (re.escape(v).replace("/", r"\/") for v in sorted(values))
    return "/^(" + "|".join(escaped) + ")$/"


def _floor_key(label: str) -> tuple[int, str]:
    digits = re.match(r"-?\d+", label)
    return (int(digits.group()) if digits else 1_000_000, label)


def institution_of(site: Site) -> Institution:
    floor_of_room = {r.id: r.floor for r in site.rooms if r.floor}
    room_of_bed = {b.id: b.room for b in site.beds}
    rooms: dict[str, list[str]] = {}
    for room_id, label in floor_of_room.items():
        rooms.setdefault(label, []).append(room_id)
    residents: dict[str, list[str]] = {}
    for r in site.residents:
        room = r.room or (room_of_bed.get(r.bed) if r.bed else None)
        floor = floor_of_room.get(room) if room else None
        if floor:
            residents.setdefault(floor, []).append(r.id)
    floors = tuple(
        Floor(label, tuple(sorted(rooms[label])), tuple(sorted(residents.get(label, []))))
        for label in sorted(rooms, key=_floor_key)
    )
    return Institution(site.id, site.name, floors)


def institutions(doc: RegistryDocument) -> list[Institution]:
    return [institution_of(s) for s in doc.sites if s.kind == SiteKind.INSTITUTION]
