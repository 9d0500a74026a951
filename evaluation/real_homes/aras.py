"""ARAS houses A and B (Alemdar et al., PervasiveHealth 2013): two residents each,
20 binary sensors sampled once a second for 30 days, no calendar dates.

The sensors are replayed as the closest kind the registry knows:
- force sensors and mats under couches, chairs and the armchair → `seat` mats; the
  distance sensors on the back of house A's chairs see someone sitting there → `seat`;
- bed force sensors / mats → `bed`; house B's two bed mats are each one resident's
  (mat 15 is on whenever resident 1 is labelled sleeping, mat 14 for resident 2);
  house A's single force sensor under the bed is on while either sleeps, so it is
  bound to no one (a bed rule cannot tell whose bed it is);
- contacts and photocells in doors, wardrobes, cupboards, fridge and drawers → `door`
  contacts in their room; the front ("outside"/"house") door → outer door; house A's
  bathroom door → `room_door`; the others are on furniture (`ROOM_DOORS`);
- sonar and distance sensors that see people pass (hall, kitchen, closet, bathroom
  tap and door) → `motion` in their room; house A's infrared reader under the TV
  (the remote control used) → `motion` in the living room;
- the temperature sensor above house A's oven (on while cooking) → a `plug`.

House A's bathroom door contact reads 1 while the door is *shut*: it is 1 in 68-82 % of
the seconds labelled toileting or showering and in under 5 % of those labelled
sleeping or watching TV (the door stands open when nobody is inside). It is replayed
inverted (1 = closed); the front door's 1 is open (0.4 % of the time).

A 1 Hz binary series flickers (a person shifting on a couch, a sonar at its range):
runs of "on" separated by less than `DEBOUNCE_S` are one firing, as a real sensor's
own hold time would report them. Day 1 is taken to start at `START` (local time).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from eldercare.registry_model import Site
from evaluation.real_homes.home import Firing, Home, Kit, readings_of

TIMEZONE = "Europe/Istanbul"
START = datetime(2013, 1, 7)  # a Monday; the release has no dates
DEBOUNCE_S = 10
SECONDS_PER_DAY = 86400
R1, R2 = "resident-1", "resident-2"
SHUT_WHEN_ON = frozenset({("A", "bathroom-door")})  # contacts whose 1 means closed
# Contacts on the door of their room; every other contact is on furniture (wardrobes,
# couch storage, fridge, drawers, cupboards, house A's bathroom cabinet and shower cabin,
# house B's shower cabinet): someone active in its room, not a passage.
ROOM_DOORS = frozenset({("A", "bathroom-door")})

# sensor row → (device id, kind, room, resident); rows as in `senseLabels`
HOUSE_A: list[tuple[str, str, str, str | None]] = [
    ("living-wardrobe", "door", "living", None),
    ("couch-bed-storage", "door", "living", None),
    ("tv-ir-reader", "motion", "living", None),
    ("couch-tv", "seat", "living", None),
    ("couch-window", "seat", "living", None),
    ("chair-1", "seat", "living", None),
    ("chair-2", "seat", "living", None),
    ("fridge", "door", "kitchen", None),
    ("kitchen-drawer", "door", "kitchen", None),
    ("bedroom-wardrobe", "door", "bedroom", None),
    ("bathroom-cabinet", "door", "bathroom", None),
    ("front-door", "door", "hall", None),
    ("bathroom-door", "door", "bathroom", None),  # 1 = shut, see above
    ("shower-cabin", "door", "bathroom", None),
    ("hall-sonar", "motion", "hall", None),
    ("kitchen-sonar", "motion", "kitchen", None),
    ("bathroom-tap", "motion", "bathroom", None),
    ("bathroom-closet", "motion", "bathroom", None),
    ("oven", "plug", "kitchen", None),
    ("bed", "bed", "bedroom", None),
]
HOUSE_B: list[tuple[str, str, str, str | None]] = [
    ("kitchen-cupboard-1", "door", "kitchen", None),
    ("kitchen-cupboard-2", "door", "kitchen", None),
    ("front-door", "door", "hall", None),
    ("wardrobe-1", "door", "bedroom", None),
    ("wardrobe-2", "door", "bedroom", None),
    ("shower-cabinet", "door", "bathroom", None),
    ("bathroom-tap", "motion", "bathroom", None),
    ("chair-1", "seat", "living", None),
    ("chair-2", "seat", "living", None),
    ("chair-3", "seat", "living", None),
    ("fridge", "door", "kitchen", None),
    ("kitchen-drawer", "door", "kitchen", None),
    ("couch-1", "seat", "living", None),
    ("couch-2", "seat", "living", None),
    ("bed-mat-2", "bed", "bedroom", R2),
    ("bed-mat-1", "bed", "bedroom", R1),
    ("armchair", "seat", "living", None),
    ("bathroom-door-sonar", "motion", "bathroom", None),
    ("kitchen-sonar", "motion", "kitchen", None),
    ("closet-sonar", "motion", "closet", None),
]


def _site(house: str, sensors: list[tuple[str, str, str, str | None]]) -> Site:
    devices: list[dict[str, Any]] = []
    for device_id, kind, room, resident in sensors:
        device: dict[str, Any] = {"id": device_id, "kind": kind, "room": room}
        if device_id == "front-door":
            device["outer_door"] = True
        if (house, device_id) in ROOM_DOORS:
            device["room_door"] = True
        if resident is not None:
            device["resident"] = resident
        devices.append(device)
    rooms = sorted({room for _, _, room, _ in sensors})
    kinds = {"hall": "entrance", "closet": "other"}
    return Site.model_validate(
        {
            "id": f"aras-house-{house.lower()}",
            "kind": "home",
            "name": f"ARAS house {house}",
            "organisation": "Evaluation/ARAS",
            "timezone": TIMEZONE,
            "rooms": [{"id": r, "kind": kinds.get(r, r)} for r in rooms],
            "residents": [
                {"id": R1, "name": "ARAS resident 1", "room": "bedroom"},
                {"id": R2, "name": "ARAS resident 2", "room": "bedroom"},
            ],
            "devices": devices,
            "detectors": {"device_offline": {"enabled": False}, "site_offline": {"enabled": False}},
        }
    )


def firings_of(observations: np.ndarray, device_ids: list[str], start: float) -> list[Firing]:
    """Runs of 1 in each row (one sample a second), gaps shorter than `DEBOUNCE_S` merged."""
    if observations.ndim != 2 or observations.shape[0] != len(device_ids):
        raise ValueError(
            f"expected {len(device_ids)} sensor rows, got an array of shape {observations.shape}"
        )
    out: list[Firing] = []
    for row, device_id in zip(observations, device_ids, strict=True):
        on = np.concatenate(([0], (row > 0).astype(np.int8), [0]))
        edges = np.diff(on)
        starts = np.flatnonzero(edges == 1)
        ends = np.flatnonzero(edges == -1)  # first second off
        if len(starts) == 0:
            continue
        keep = np.concatenate(([True], starts[1:] - ends[:-1] >= DEBOUNCE_S))
        run_starts = starts[keep]
        run_ends = np.concatenate((ends[np.flatnonzero(keep)[1:] - 1], [ends[-1]]))
        for s, e in zip(run_starts, run_ends, strict=True):
            out.append(Firing(start + float(s), start + float(e), device_id))
    return out


def load(path: Path, house: str) -> Home:
    import scipy.io

    mat = path / f"House{house}.mat" if path.is_dir() else path
    data = scipy.io.loadmat(mat, squeeze_me=True, struct_as_record=False)["ArasDataset"]
    sensors = HOUSE_A if house == "A" else HOUSE_B
    site = _site(house, sensors)
    start = START.replace(tzinfo=ZoneInfo(TIMEZONE)).timestamp()
    observations = np.asarray(data.observations)
    for row, (device_id, *_) in enumerate(sensors):
        if (house, device_id) in SHUT_WHEN_ON:
            observations[row] = 1 - (observations[row] > 0)
    firings = firings_of(observations, [s[0] for s in sensors], start)
    if house == "A":
        kit = Kit(
            activity="fridge",
            front_door="front-door",
            bathroom="bathroom-door",
            bedroom="bedroom-wardrobe",
        )
        na = {"bed_exit_no_return": "one bed sensor shared by both residents: whose bed is unknown"}
    else:
        kit = Kit(
            activity="fridge",
            front_door="front-door",
            bathroom="bathroom-door-sonar",
            bedroom="wardrobe-1",
            beds=("bed-mat-1",),
            elsewhere="kitchen-sonar",
        )
        na = {}
    return Home(
        key=f"aras{house.lower()}",
        dataset=f"ARAS house {house} (PervasiveHealth 2013), two residents, 20 binary sensors "
        "at 1 Hz, 30 days",
        site=site,
        background=readings_of(site, firings),
        kit=kit,
        not_applicable={
            **na,
            "fall": "no fall radar",
            "wearable_fall": "no wearable",
            "sos": "no SOS button",
            "vitals": "no vital-signs sensor",
            "device_offline": "sensors send no heartbeats (switched off)",
            "site_offline": "sensors send no heartbeats (switched off)",
        },
        notes=(
            f"1 Hz series debounced: off-gaps under {DEBOUNCE_S} s merged into one firing",
            "two residents: injected incidents silence the whole home (both)",
        ),
    )
