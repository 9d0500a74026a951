"""The van Kasteren flats: 2008 (one person, doors and kitchen contacts) and 2010
house B (one man; PIRs, bed mats, a piano stool and a study chair mat).

House B (Pervasive 2010, `houseB_sensors.tsv`): each row is an interval in which a
sensor fired, local Dutch time. Mapping (the release's `metafeature` where it has one):
PIRs → motion sensors in bedroom, bathroom, kitchen; the two bed mats → bed mats of the
resident; piano stool and study chair → `seat` mats (living room, study); front door →
outer door; toilet door and flush → the toilet; sink float → the bathroom; bedroom door
and dresser → the bedroom (the toilet and bedroom doors are `room_door`s, every other
contact is on furniture: someone active in its room); fridge, cupboards, cutlery
drawer, stove lid → kitchen contacts; toaster and microwave → plugs; balcony door and
window → living-room contacts (not outer doors: the balcony is still home). Sensor 23
has no label (2 firings): skipped.

Only the annotated span is replayed (first to last activity in `houseB_activities.tsv`,
24 Jul – 7 Aug 2009): outside it the release's sensors are not looked after (the study
chair mat reports "pressed" from 5 to 16 Aug, a bed mat from 6 to 16 Aug, the bathroom
PIR from 5 to 15 Aug, the microwave for 15 days), which no one's life explains.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from eldercare.registry_model import Site
from evaluation.kasteren import SENSORS as SENSORS_2008
from evaluation.kasteren import parse_sense_data
from evaluation.kasteren import readings_of as readings_of_2008
from evaluation.kasteren import site as site_2008
from evaluation.real_homes.home import Firing, Home, Kit, readings_of

TIMEZONE = "Europe/Amsterdam"
RESIDENT = "resident"
_NO_HEARTBEATS = {
    "device_offline": {"enabled": False},
    "site_offline": {"enabled": False},
}
_COMMON_NA = {
    "fall": "no fall radar",
    "wearable_fall": "no wearable",
    "sos": "no SOS button",
    "vitals": "no vital-signs sensor",
    "low_battery": "no battery reports",
    "tamper": "no tamper switches",
    "device_offline": "sensors send no heartbeats or availability (switched off)",
    "site_offline": "sensors send no heartbeats or availability (switched off)",
}


def kasteren2008(path: Path) -> Home:
    sense = path / "kasterenSenseData.txt" if path.is_dir() else path
    return Home(
        key="kasteren2008",
        dataset="van Kasteren 2008 (UbiComp 2008), one flat, 14 binary sensors",
        site=site_2008(),
        background=readings_of_2008(parse_sense_data(sense)),
        kit=Kit(
            activity="fridge",
            front_door="front-door",
            bathroom="bathroom-door",
            bedroom="bedroom-door",
        ),
        not_applicable={"bed_exit_no_return": "no bed sensor", **_COMMON_NA},
    )


assert {"fridge", "front-door", "bathroom-door", "bedroom-door"} <= {
    d for d, _ in SENSORS_2008.values()
}

# sensor id → (device id, kind, room)
HOUSE_B: dict[int, tuple[str, str, str]] = {
    1: ("toilet-door", "door", "toilet"),
    3: ("fridge", "door", "kitchen"),
    5: ("groceries-cupboard", "door", "kitchen"),
    6: ("toilet-flush", "flush", "toilet"),
    7: ("front-door", "door", "hall"),
    9: ("plates-cupboard", "door", "kitchen"),
    10: ("bedroom-door", "door", "bedroom"),
    12: ("bed-mat-right", "bed", "bedroom"),
    13: ("bed-mat-left", "bed", "bedroom"),
    14: ("cutlery-drawer", "door", "kitchen"),
    15: ("stove-lid", "door", "kitchen"),
    16: ("bedroom-pir", "motion", "bedroom"),
    18: ("dresser", "door", "bedroom"),
    19: ("bathroom-pir", "motion", "bathroom"),
    20: ("piano-stool", "seat", "living"),
    21: ("sink-float", "door", "bathroom"),
    22: ("study-chair", "seat", "study"),
    24: ("balcony-door", "door", "living"),
    25: ("window", "door", "living"),
    26: ("toaster", "plug", "kitchen"),
    27: ("microwave", "plug", "kitchen"),
    28: ("kitchen-pir", "motion", "kitchen"),
}
HOUSE_B_SKIPPED = frozenset({23})  # no label in the release
# Contacts on the doors of their rooms. The others are furniture or fittings: cupboards,
# fridge, drawer, stove lid, dresser, the bathroom sink's float; the balcony door and the
# window lead nowhere else in the home (she is still in the living room).
HOUSE_B_ROOM_DOORS = frozenset({"toilet-door", "bedroom-door"})


def house_b_site() -> Site:
    devices: list[dict[str, Any]] = []
    for device_id, kind, room in sorted(HOUSE_B.values()):
        device: dict[str, Any] = {"id": device_id, "kind": kind, "room": room}
        if device_id == "front-door":
            device["outer_door"] = True
        if device_id in HOUSE_B_ROOM_DOORS:
            device["room_door"] = True
        if kind == "bed":
            device["resident"] = RESIDENT
        devices.append(device)
    return Site.model_validate(
        {
            "id": "kasteren-2010-house-b",
            "kind": "home",
            "name": "van Kasteren 2010 house B",
            "organisation": "Evaluation/Kasteren",
            "timezone": TIMEZONE,
            "rooms": [
                {"id": "hall", "kind": "entrance"},
                {"id": "toilet", "kind": "toilet"},
                {"id": "bathroom", "kind": "bathroom"},
                {"id": "kitchen", "kind": "kitchen"},
                {"id": "bedroom", "kind": "bedroom"},
                {"id": "living", "kind": "living"},
                {"id": "study", "kind": "other"},
            ],
            "residents": [{"id": RESIDENT, "name": "House B resident", "room": "bedroom"}],
            "devices": devices,
            "detectors": _NO_HEARTBEATS,
        }
    )


def parse_house_b(path: Path) -> list[Firing]:
    """Rows of houseB_sensors.tsv (header skipped); an unknown sensor id is an error."""
    tz = ZoneInfo(TIMEZONE)
    out: list[Firing] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split("\t")
        if n == 1 or not line.strip():
            continue
        if len(parts) < 3:
            raise ValueError(f"{path}:{n}: expected start, end, sensor id")
        fmt = "%Y-%m-%d %H:%M:%S"
        start = datetime.strptime(parts[0], fmt).replace(tzinfo=tz).timestamp()
        end = datetime.strptime(parts[1], fmt).replace(tzinfo=tz).timestamp()
        sensor = int(parts[2])
        if sensor in HOUSE_B_SKIPPED:
            continue
        if sensor not in HOUSE_B:
            raise ValueError(f"{path}:{n}: unknown sensor id {sensor}")
        out.append(Firing(start, end, HOUSE_B[sensor][0]))
    if not out:
        raise ValueError(f"no sensor rows in {path}")
    return out


def annotated_span(path: Path) -> tuple[float, float] | None:
    """First start and last end in houseB_activities.tsv, or None without the file."""
    if not path.exists():
        return None
    tz = ZoneInfo(TIMEZONE)
    fmt = "%Y-%m-%d %H:%M:%S"
    starts, ends = [], []
    for line in path.read_text(encoding="utf-8").splitlines()[1:]:
        parts = line.split("\t")
        if len(parts) < 2:
            continue
        starts.append(datetime.strptime(parts[0], fmt).replace(tzinfo=tz).timestamp())
        ends.append(datetime.strptime(parts[1], fmt).replace(tzinfo=tz).timestamp())
    return (min(starts), max(ends)) if starts else None


def kasteren2010_house_b(path: Path) -> Home:
    sense = path / "houseB_sensors.tsv" if path.is_dir() else path
    site = house_b_site()
    firings = parse_house_b(sense)
    span = annotated_span(sense.parent / "houseB_activities.tsv")
    if span is not None:
        firings = [f for f in firings if span[0] <= f.start and f.end <= span[1]]
    return Home(
        key="kasteren2010b",
        dataset="van Kasteren 2010 house B (Pervasive 2010), one man, 22 sensors incl. PIRs, "
        "bed and seat mats",
        site=site,
        background=readings_of(site, firings),
        kit=Kit(
            activity="fridge",
            front_door="front-door",
            bathroom="bathroom-pir",
            bedroom="bedroom-pir",
            beds=("bed-mat-left", "bed-mat-right"),
            elsewhere="kitchen-pir",
        ),
        not_applicable=_COMMON_NA,
        notes=(
            "only the annotated span (houseB_activities.tsv) is replayed",
            "the two bed mats (left, right) are both the resident's",
            "balcony door and window are not outer doors (the balcony is home)",
        ),
    )
