"""`eldercare eval home --kasteren PATH`: the detectors against a real home's life.

The van Kasteren 2008 flat (one person, 25 Feb – 23 Mar 2008, 14 binary sensors;
van Kasteren et al., UbiComp 2008) is replayed through the platform's detector
runtime in `event` clock mode, as the registry below describes it:

- front door → an outer-door contact in the hall;
- Hall-Toilet door → the toilet; Hall-Bathroom door and toilet flush → the bathroom
  (both bathroom-type rooms for `bathroom_too_long`); the flush goes with the
  bathroom door because the recording's "use toilet" episodes pair the two;
- Hall-Bedroom door → the bedroom;
- kitchen cupboards, fridge, freezer, microwave, dishwasher, washing machine →
  contacts in the kitchen (movement-like activity there).

A sensor's firing interval becomes a contact opening at its start and closing at
its end (a flush is one flush event). The flat has no bed sensor, fall radar, SOS
button, wearable or vital-signs monitor, and its sensors send no heartbeats or
availability, so `bed_exit_no_return`, `fall`, `sos`, `wearable_fall`, `vitals`,
`low_battery`, `tamper` cannot apply and `device_offline` / `site_offline` are
switched off (a silent reed switch here is normal, not a fault).

Figures:
- alerts raised by normal life, per home-day (each one a false alarm), by kind;
- recall and delay for incidents injected into the real background, one incident
  per replay, on every day of the recording: a long lie (a kitchen event at 15:00,
  then all activity stops; and, on days the resident really was active at home in
  the two hours before 15:00, from the last real movement), a night exit (bedroom
  door at 02:59, front door at 03:00, then silence), a 90-minute bathroom stay by
  day (14:00) and by night (02:00), and not coming back (kitchen, front door at 19:00,
  then silence). An incident counts as caught when its rule raises within the rule's
  delay (for inactivity: the limit in force, learned or default; for not coming back:
  by 01:00, the latest a learned night deadline may be) plus one minute.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from detectors.runtime import DetectorRuntime
from eldercare.domain import AlertKind, Reading, Stream, Transition, TransitionAction
from eldercare.registry_index import PlannedAbsence, RegistryIndex
from eldercare.registry_model import RegistryDocument, Site

TIMEZONE = "Europe/Amsterdam"
SITE_ID = "kasteren-2008"
RESIDENT_ID = "resident"

# sensor id → (device id, room id, is the flush)
SENSORS: dict[int, tuple[str, str]] = {
    1: ("microwave", "kitchen"),
    5: ("toilet-door", "toilet"),
    6: ("bathroom-door", "bathroom"),
    7: ("cups-cupboard", "kitchen"),
    8: ("fridge", "kitchen"),
    9: ("plates-cupboard", "kitchen"),
    12: ("front-door", "hall"),
    13: ("dishwasher", "kitchen"),
    14: ("toilet-flush", "bathroom"),
    17: ("freezer", "kitchen"),
    18: ("pans-cupboard", "kitchen"),
    20: ("washing-machine", "kitchen"),
    23: ("groceries-cupboard", "kitchen"),
    24: ("bedroom-door", "bedroom"),
}
FLUSH_SENSOR = 14
NOT_APPLICABLE = {
    "bed_exit_no_return": "no bed sensor",
    "vitals": "no bed or vital-signs sensor",
    "fall": "no fall radar",
    "wearable_fall": "no wearable",
    "sos": "no SOS button",
    "low_battery": "no battery reports",
    "tamper": "no tamper switches",
    "device_offline": "sensors send no heartbeats or availability (switched off)",
    "site_offline": "sensors send no heartbeats or availability (switched off)",
}
# Rules that flag going out in the evening or staying away overnight: alarming for an
# older person living alone, ordinary for the recording's subject (a young adult).
OUTING_RULES = frozenset({"not_returned", "night_door_exit"})
# Not back after leaving at 19:00: the learned night deadline is at most 01:00 (6 h later).
RULE_DELAY_MIN = {
    "night_exit": 10.0,
    "bathroom_day": 45.0,
    "bathroom_night": 15.0,
    "not_back": 360.0,
}


@dataclass(frozen=True, slots=True)
class Firing:
    start: float
    end: float
    sensor: int


def parse_sense_data(path: Path) -> list[Firing]:
    """Rows of kasterenSenseData.txt: start, end, sensor id, value (header and footer skipped)."""
    tz = ZoneInfo(TIMEZONE)
    out: list[Firing] = []
    for line in path.read_text(encoding="latin-1").splitlines():
        parts = [p.strip() for p in line.split("\t")]
        if len(parts) < 3:
            continue
        try:
            start = datetime.strptime(parts[0], "%d-%b-%Y %H:%M:%S").replace(tzinfo=tz)
            end = datetime.strptime(parts[1], "%d-%b-%Y %H:%M:%S").replace(tzinfo=tz)
            sensor = int(parts[2])
        except ValueError:
            continue  # header, separator, footer
        if sensor not in SENSORS:
            raise ValueError(f"unknown sensor id {sensor} in {path}")
        out.append(Firing(start.timestamp(), end.timestamp(), sensor))
    if not out:
        raise ValueError(f"no sensor rows in {path}")
    return out


# The contacts on the doors of their rooms (the README's "Hall-Toilet door", "Hall-Bathroom
# door", "Hall-Bedroom door"); the cupboards, fridge, freezer and appliances are furniture.
ROOM_DOORS = frozenset({"toilet-door", "bathroom-door", "bedroom-door"})


def site() -> Site:
    devices: list[dict[str, Any]] = []
    for sensor, (device_id, room) in sorted(SENSORS.items()):
        devices.append(
            {
                "id": device_id,
                "kind": "flush" if sensor == FLUSH_SENSOR else "door",
                "room": room,
                "outer_door": device_id == "front-door",
                "room_door": device_id in ROOM_DOORS,
            }
        )
    return Site.model_validate(
        {
            "id": SITE_ID,
            "kind": "home",
            "name": "van Kasteren 2008 flat",
            "organisation": "Evaluation/Kasteren",
            "timezone": TIMEZONE,
            "rooms": [
                {"id": "hall", "kind": "entrance"},
                {"id": "toilet", "kind": "toilet"},
                {"id": "bathroom", "kind": "bathroom"},
                {"id": "kitchen", "kind": "kitchen"},
                {"id": "bedroom", "kind": "bedroom"},
                {"id": "living", "kind": "living"},
            ],
            "residents": [{"id": RESIDENT_ID, "name": "Kasteren resident", "room": "bedroom"}],
            "devices": devices,
            "detectors": {
                "device_offline": {"enabled": False},
                "site_offline": {"enabled": False},
            },
        }
    )


def _reading(device_id: str, room: str, ts: float, flush: bool, opened: bool) -> Reading:
    if flush:
        return Reading(
            SITE_ID, device_id, Stream.FLUSH, ts, {"flushed": True}, ts, room, RESIDENT_ID
        )
    return Reading(SITE_ID, device_id, Stream.CONTACT, ts, {"open": opened}, ts, room, RESIDENT_ID)


def readings_of(firings: Sequence[Firing]) -> list[Reading]:
    out: list[Reading] = []
    for f in firings:
        device_id, room = SENSORS[f.sensor]
        if f.sensor == FLUSH_SENSOR:
            out.append(_reading(device_id, room, f.start, True, True))
            continue
        out.append(_reading(device_id, room, f.start, False, True))
        out.append(_reading(device_id, room, max(f.end, f.start + 1), False, False))
    out.sort(key=lambda r: (r.ts, r.device_id))
    return out


class _Collector:
    def __init__(self) -> None:
        self.transitions: list[Transition] = []

    async def handle_transitions(self, transitions: Sequence[Transition]) -> None:
        self.transitions.extend(transitions)


def parse_overrides(assignments: Sequence[str]) -> dict[str, dict[str, Any]]:
    """`rule.key=value` strings (value as YAML: 20, false, "22:30") as global overrides."""
    import yaml

    out: dict[str, dict[str, Any]] = {}
    for item in assignments:
        target, sep, raw = item.partition("=")
        rule, dot, key = target.strip().partition(".")
        if not sep or not dot or not rule or not key:
            raise ValueError(f"expected rule.key=value, got {item!r}")
        out.setdefault(rule, {})[key] = yaml.safe_load(raw)
    return out


async def replay(
    readings: Sequence[Reading],
    until: float,
    batch: int = 64,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    declarations: Sequence[tuple[float, str]] = (),
) -> list[Transition]:
    """Replay through the runtime in `event` mode. `declarations`: (when, until) planned
    absences, each taking effect (replacing the one before) from its time on, as one
    declared through the API would."""
    doc = RegistryDocument(sites=[site()])
    index = {"now": RegistryIndex(doc, version=1)}
    sink = _Collector()
    runtime = DetectorRuntime(
        lambda: index["now"], sink, clock_mode="event", global_overrides=overrides
    )
    pending = sorted(declarations)
    for i in range(0, len(readings), batch):
        chunk = list(readings[i : i + batch])
        while chunk:
            if pending and chunk[0].ts >= pending[0][0]:
                at, end = pending.pop(0)
                local_end = datetime.strptime(end, "%Y-%m-%dT%H:%M")
                end_ts = local_end.replace(tzinfo=ZoneInfo(TIMEZONE)).timestamp()
                declared = PlannedAbsence(RESIDENT_ID, SITE_ID, end, end_ts, "", "family", at)
                index["now"] = RegistryIndex(
                    doc,
                    version=index["now"].version + 1,
                    planned_absences={(SITE_ID, RESIDENT_ID): declared},
                )
            cut = next(
                (j for j, r in enumerate(chunk) if pending and r.ts >= pending[0][0]), len(chunk)
            )
            await runtime.handle_readings(chunk[:cut])
            chunk = chunk[cut:]
    await runtime.advance_to(until)
    return sink.transitions


def overnight_trips(background: Sequence[Reading], tz: ZoneInfo) -> list[tuple[float, float]]:
    """(left, back) of each absence spanning a night: two consecutive readings of the front
    door at least 6 h apart with nothing in between and the local 03:00 inside. What a
    family of a monitored person would be asked to declare (a night or weekend away)."""
    trips = []
    for a, b in itertools.pairwise(background):
        if a.device_id != "front-door" or b.device_id != "front-door" or b.ts - a.ts < 6 * 3600:
            continue
        night = datetime.fromtimestamp(a.ts, tz).replace(hour=3, minute=0, second=0)
        if night.timestamp() <= a.ts:
            night += timedelta(days=1)
        if night.timestamp() < b.ts:
            trips.append((a.ts, b.ts))
    return trips


def declared_trips(
    background: list[Reading],
    last: float,
    tz: ZoneInfo,
    overrides: Mapping[str, Mapping[str, Any]] | None,
) -> dict[str, Any]:
    """The recording again, with each overnight trip declared as the resident leaves,
    expected back at the real return rounded up to the next full hour. A what-if (the
    recording has no declarations; the return time is known here, a family's estimate
    would be rougher), to show what declarations remove and what they cannot."""
    trips = overnight_trips(background, tz)
    declarations = []
    for left, back in trips:
        end = datetime.fromtimestamp(back, tz).replace(minute=0, second=0) + timedelta(hours=1)
        declarations.append((left, end.strftime("%Y-%m-%dT%H:%M")))
    raises = [
        t
        for t in asyncio.run(
            replay(background, last, overrides=overrides, declarations=declarations)
        )
        if t.action == TransitionAction.RAISE
    ]
    by_kind: dict[str, int] = {}
    for t in raises:
        by_kind[t.kind.value] = by_kind.get(t.kind.value, 0) + 1
    days = (last - background[0].ts) / 86400
    fmt = "%Y-%m-%d %H:%M"
    return {
        "trips": [
            {
                "left": datetime.fromtimestamp(left, tz).strftime(fmt),
                "back": datetime.fromtimestamp(back, tz).strftime(fmt),
                "declared_until": until.replace("T", " "),
            }
            for (left, back), (_, until) in zip(trips, declarations, strict=True)
        ],
        "false_alarms": len(raises),
        "per_home_day": round(len(raises) / days, 3),
        "by_kind": dict(sorted(by_kind.items())),
        "alerts": [
            {"kind": t.kind.value, "at": datetime.fromtimestamp(t.ts, tz).strftime(fmt)}
            for t in raises
        ],
    }


@dataclass
class Incident:
    name: str
    kind: AlertKind
    onset: float
    readings: list[Reading]
    quiet_until: float  # real readings in (onset, quiet_until] are removed
    horizon: float  # replay ends here
    keep_before: float | None = None  # real readings before this stay (default: onset - 60 s)
    results: dict[str, Any] = field(default_factory=dict)


def _local(day: datetime, hour: int, minute: int = 0, second: int = 0) -> float:
    return day.replace(hour=hour, minute=minute, second=second).timestamp()


def incidents(days: list[datetime]) -> list[Incident]:
    out: list[Incident] = []
    for day in days:
        nxt = day + timedelta(days=1)
        onset = _local(day, 15)
        out.append(
            Incident(
                "long_lie",
                AlertKind.INACTIVITY,
                onset,
                [
                    _reading("fridge", "kitchen", onset - 5, False, True),
                    _reading("fridge", "kitchen", onset, False, False),
                ],
                onset + 12 * 3600,
                onset + 12 * 3600,
            )
        )
        onset = _local(nxt, 3)
        out.append(
            Incident(
                "night_exit",
                AlertKind.NIGHT_DOOR_EXIT,
                onset,
                [
                    _reading("bedroom-door", "bedroom", onset - 60, False, True),
                    _reading("bedroom-door", "bedroom", onset - 55, False, False),
                    _reading("front-door", "hall", onset, False, True),
                    _reading("front-door", "hall", onset + 5, False, False),
                ],
                onset + 2 * 3600,
                onset + 2 * 3600,
            )
        )
        onset = _local(day, 19)
        out.append(
            Incident(
                "not_back",
                AlertKind.NOT_RETURNED,
                onset,
                [
                    _reading("fridge", "kitchen", onset - 60, False, True),
                    _reading("fridge", "kitchen", onset - 55, False, False),
                    _reading("front-door", "hall", onset, False, True),
                    _reading("front-door", "hall", onset + 5, False, False),
                ],
                onset + 7 * 3600,
                onset + 7 * 3600,
            )
        )
        for name, start in (("bathroom_day", _local(day, 14)), ("bathroom_night", _local(nxt, 2))):
            out.append(
                Incident(
                    name,
                    AlertKind.BATHROOM_TOO_LONG,
                    start,
                    [
                        _reading("fridge", "kitchen", start - 60, False, True),
                        _reading("fridge", "kitchen", start - 55, False, False),
                        _reading("bathroom-door", "bathroom", start, False, True),
                        _reading("bathroom-door", "bathroom", start + 5, False, False),
                        _reading("bathroom-door", "bathroom", start + 90 * 60, False, True),
                        _reading("bathroom-door", "bathroom", start + 90 * 60 + 5, False, False),
                        _reading("fridge", "kitchen", start + 91 * 60, False, True),
                    ],
                    start + 91 * 60,
                    start + 92 * 60,
                )
            )
    return out


def lies_at_home(background: list[Reading], days: list[datetime]) -> list[Incident]:
    """The resident's real last movement before 15:00 becomes the onset, on days when it
    is indoors (not the front door) and within the two hours before: a lie that begins
    in the middle of a real afternoon at home, judged with whatever limit was learned."""
    out: list[Incident] = []
    for day in days:
        mid = _local(day, 15)
        earlier = [r for r in background if mid - 2 * 3600 <= r.ts < mid]
        if not earlier or earlier[-1].device_id == "front-door":
            continue
        onset = earlier[-1].ts
        out.append(
            Incident(
                "long_lie_at_home",
                AlertKind.INACTIVITY,
                onset,
                [],
                onset + 12 * 3600,
                onset + 12 * 3600,
                keep_before=onset + 0.5,
            )
        )
    return out


def _close_cut_firings(before: list[Reading], cut: float) -> list[Reading]:
    """Cutting the background mid-firing leaves a contact open; its closing is cut off
    with the rest. Close it just before the cut, so that the injected readings start from
    doors shut (a door opened while already open is not an event, `movement.py`)."""
    last: dict[str, Reading] = {}
    for r in before:
        if r.stream == Stream.CONTACT:
            last[r.device_id] = r
    closings = [
        replace(r, ts=max(r.ts, cut - 1), fields={"open": False}, received_at=max(r.ts, cut - 1))
        for r in last.values()
        if r.fields.get("open")
    ]
    return [*before, *closings]


async def _run_incident(
    background: list[Reading],
    inc: Incident,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> None:
    keep_before = inc.onset - 60 if inc.keep_before is None else inc.keep_before
    before = _close_cut_firings([r for r in background if r.ts < keep_before], keep_before)
    after = [r for r in background if inc.quiet_until < r.ts <= inc.horizon]
    readings = sorted([*before, *inc.readings, *after], key=lambda r: r.ts)
    transitions = await replay(readings, inc.horizon, overrides=overrides)
    raised = [
        t
        for t in transitions
        if t.kind == inc.kind and t.action == TransitionAction.RAISE and t.ts >= inc.onset
    ]
    if inc.kind == AlertKind.INACTIVITY:
        allowed_min = float(raised[0].details["threshold_minutes"]) if raised else float("nan")
    else:
        allowed_min = RULE_DELAY_MIN[inc.name]
    delay_min = (raised[0].ts - inc.onset) / 60 if raised else None
    inc.results = {
        "caught": delay_min is not None and delay_min <= allowed_min + 1.0,
        "delay_minutes": None if delay_min is None else round(delay_min, 1),
        "rule_delay_minutes": allowed_min,
    }


def _summary(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"median": None, "max": None}
    return {"median": round(statistics.median(values), 1), "max": round(max(values), 1)}


def evaluate(
    path: Path,
    progress: Callable[[str], None] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Replay the recording (and each injected incident); `overrides` are global detector
    settings (checked like a registry's: an unknown rule or key is an error)."""
    from detectors.catalogue import site_context

    site_context(site(), overrides)  # fail before a minute of replays, naming the bad key
    sense = path / "kasterenSenseData.txt" if path.is_dir() else path
    firings = parse_sense_data(sense)
    background = readings_of(firings)
    first, last = background[0].ts, background[-1].ts
    tz = ZoneInfo(TIMEZONE)
    home_days = (last - first) / 86400

    clean = asyncio.run(replay(background, last, overrides=overrides))
    raises = [t for t in clean if t.action == TransitionAction.RAISE]
    by_kind: dict[str, int] = {}
    for t in raises:
        by_kind[t.kind.value] = by_kind.get(t.kind.value, 0) + 1

    start_day = datetime.fromtimestamp(first, tz).replace(hour=0, minute=0, second=0)
    days = [start_day + timedelta(days=i) for i in range(1, int(home_days))]
    incs = incidents(days) + lies_at_home(background, days)
    for i, inc in enumerate(incs):
        asyncio.run(_run_incident(background, inc, overrides))
        if progress and i % 20 == 0:
            progress(f"incident {i + 1}/{len(incs)}")
    by_incident: dict[str, Any] = {}
    names = ("long_lie", "long_lie_at_home", "night_exit", "bathroom_day", "bathroom_night")
    for name in (*names, "not_back"):
        group = [i for i in incs if i.name == name]
        if not group:
            continue
        caught = [i for i in group if i.results["caught"]]
        delays = [i.results["delay_minutes"] for i in caught]
        by_incident[name] = {
            "kind": group[0].kind.value,
            "injected": len(group),
            "caught": len(caught),
            "recall": round(len(caught) / len(group), 3),
            "delay_minutes": _summary(delays),
            "missed_onsets": [
                datetime.fromtimestamp(i.onset, tz).strftime("%Y-%m-%d %H:%M")
                for i in group
                if not i.results["caught"]
            ],
        }
        if group[0].kind == AlertKind.INACTIVITY:
            limits = [i.results["rule_delay_minutes"] for i in caught]
            by_incident[name]["rule_delay_minutes"] = _summary(limits)
    others = sum(n for kind, n in by_kind.items() if kind not in OUTING_RULES)
    # A fair protocol: rules are designed on the first half of the days; the second half
    # is reported on its own (held out), split at the local midnight nearest the middle.
    middle = datetime.fromtimestamp((first + last) / 2, tz)
    split = middle.replace(hour=0, minute=0, second=0)
    if middle.hour >= 12:
        split += timedelta(days=1)
    halves = {
        "first": _half(raises, incs, first, split.timestamp(), tz),
        "second_held_out": _half(raises, incs, split.timestamp(), last, tz),
    }
    trips = declared_trips(background, last, tz, overrides)
    return {
        "dataset": "van Kasteren 2008 (UbiComp 2008), one flat, 14 binary sensors",
        "home_days": round(home_days, 2),
        "readings": len(background),
        "false_alarms": {
            "total": len(raises),
            "per_home_day": round(len(raises) / home_days, 3),
            "by_kind": dict(sorted(by_kind.items())),
            "per_home_day_by_kind": {
                k: round(n / home_days, 3) for k, n in sorted(by_kind.items())
            },
            "per_home_day_without_outing_rules": round(others / home_days, 3),
            "outing_rules": sorted(OUTING_RULES),
            "alerts": [
                {
                    "kind": t.kind.value,
                    "at": datetime.fromtimestamp(t.ts, tz).strftime("%Y-%m-%d %H:%M"),
                    "details": dict(t.details),
                }
                for t in raises
            ],
        },
        "incidents": by_incident,
        "halves": halves,
        "with_overnight_trips_declared": trips,
        "not_applicable": NOT_APPLICABLE,
        "overrides": {k: dict(v) for k, v in (overrides or {}).items()},
        "goal": {"false_alarms_per_home_day": 0.1, "caught_within": "rule delay + 1 min"},
    }


def _half(
    raises: list[Transition], incs: list[Incident], start: float, end: float, tz: ZoneInfo
) -> dict[str, Any]:
    """False alarms and recall of the days in [start, end)."""
    days = (end - start) / 86400
    inside = [t for t in raises if start <= t.ts < end]
    by_kind: dict[str, int] = {}
    for t in inside:
        by_kind[t.kind.value] = by_kind.get(t.kind.value, 0) + 1
    group = [i for i in incs if start <= i.onset < end]
    return {
        "from": datetime.fromtimestamp(start, tz).strftime("%Y-%m-%d %H:%M"),
        "to": datetime.fromtimestamp(end, tz).strftime("%Y-%m-%d %H:%M"),
        "home_days": round(days, 2),
        "false_alarms": len(inside),
        "per_home_day": round(len(inside) / days, 3) if days > 0 else None,
        "by_kind": dict(sorted(by_kind.items())),
        "incidents_caught": sum(1 for i in group if i.results["caught"]),
        "incidents_injected": len(group),
    }


def report_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, ensure_ascii=False, default=str)


def format_table(report: dict[str, Any]) -> str:
    fa = report["false_alarms"]
    lines = [
        f"{report['dataset']}: {report['home_days']} home-days, {report['readings']} readings",
        f"false alarms: {fa['total']} ({fa['per_home_day']} per home-day) {fa['by_kind']}",
        f"  without {', '.join(fa['outing_rules'])}: "
        f"{fa['per_home_day_without_outing_rules']} per home-day",
    ]
    for name, h in report["halves"].items():
        lines.append(
            f"{name:<15} {h['from']} – {h['to']}: {h['false_alarms']} false alarms "
            f"({h['per_home_day']} per home-day) {h['by_kind']}, incidents caught "
            f"{h['incidents_caught']}/{h['incidents_injected']}"
        )
    d = report["with_overnight_trips_declared"]
    lines.append(
        f"with the {len(d['trips'])} overnight trips declared (what-if): {d['false_alarms']} "
        f"false alarms ({d['per_home_day']} per home-day) {d['by_kind']}"
    )
    for name, r in report["incidents"].items():
        lines.append(
            f"{name:<15} {r['kind']:<18} caught {r['caught']}/{r['injected']} "
            f"delay median {r['delay_minutes']['median']} min, max {r['delay_minutes']['max']}"
        )
    return "\n".join(lines)
