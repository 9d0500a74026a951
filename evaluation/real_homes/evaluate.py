"""Replay real homes and injected incidents through the detector runtime (event clock).

Per home: the alerts its recorded life raises (every one a false alarm, with its local
time and kind), and incidents injected into that life, one per replay, on every day:

- `long_lie`: a kitchen event at 15:00, then nothing; `long_lie_at_home`: from the real
  last event before 15:00 on days the resident was active at home in the two hours
  before (judged against the inactivity limit in force);
- `night_exit`: a bedroom event at 02:59, the front door at 03:00, then nothing (10 min);
- `bed_exit` (homes with a resident's bed mats): out of bed at 03:00, seen outside the
  bedroom, not back (30 min);
- `bathroom_day` / `bathroom_night`: into the bathroom at 14:00 / 02:00, out after
  90 min (45 / 15 min);
- `not_back`: the front door at 19:00 after a kitchen event, then nothing (by the night
  deadline in force: 22:00 by default, the resident's learned one, at most 03:00).

An incident replay keeps the real life before the incident (firings still on at the
cut are ended just before it), injects the incident's readings and removes the real
life until the incident's end. The real life up to each cut is replayed once and the
detectors' state restored from a snapshot there, so a 30-day home costs one replay
plus a few hours per incident. In two-resident homes "nothing" silences both.
"""

from __future__ import annotations

import asyncio
import copy
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from detectors.runtime import DetectorRuntime
from detectors.snapshot_store import SiteStates
from eldercare.domain import AlertKind, Reading, Transition, TransitionAction
from eldercare.registry_index import RegistryIndex
from eldercare.registry_model import RegistryDocument
from evaluation.real_homes.home import Home, is_on, pulse, reading

Overrides = Mapping[str, Mapping[str, Any]]
BATCH = 64
# Each incident's rule delay in minutes (inactivity: the limit in force, from its alert).
RULE_DELAY_MIN = {
    "night_exit": 10.0,
    "bed_exit": 30.0,
    "bathroom_day": 45.0,
    "bathroom_night": 15.0,
    "not_back": 480.0,  # out at 19:00 (when not raised: the latest night deadline, 03:00)
}
INCIDENT_ORDER = (
    "long_lie",
    "long_lie_at_home",
    "night_exit",
    "bed_exit",
    "bathroom_day",
    "bathroom_night",
    "not_back",
)
OUTING_RULES = frozenset({"not_returned", "night_door_exit"})
TIME_FMT = "%Y-%m-%d %H:%M"


@dataclass
class Incident:
    name: str
    kind: AlertKind
    onset: float
    readings: list[Reading]
    quiet_until: float  # real readings in [cut, quiet_until] are removed
    horizon: float  # replay ends here
    cut: float  # real readings before this stay
    keep_on: frozenset[str] = frozenset()  # devices not ended at the cut
    results: dict[str, Any] = field(default_factory=dict)


class _Collector:
    def __init__(self) -> None:
        self.transitions: list[Transition] = []

    async def handle_transitions(self, transitions: Sequence[Transition]) -> None:
        self.transitions.extend(transitions)


@dataclass
class _Checkpoint:
    states: SiteStates
    watermark: float | None


class _Replayer:
    """One home's detectors in the runtime, fed in batches; can be checkpointed."""

    def __init__(self, home: Home, overrides: Overrides | None) -> None:
        self.home = home
        self.index = RegistryIndex(RegistryDocument(sites=[home.site]), version=1)
        self.sink = _Collector()
        self.runtime = DetectorRuntime(
            lambda: self.index, self.sink, clock_mode="event", global_overrides=overrides
        )

    async def feed(self, readings: Sequence[Reading]) -> None:
        for i in range(0, len(readings), BATCH):
            await self.runtime.handle_readings(readings[i : i + BATCH])

    def checkpoint(self) -> _Checkpoint | None:
        site = self.runtime.sites.get(self.home.site.id)
        if site is None:
            return None
        return _Checkpoint(copy.deepcopy(site.snapshot()), self.runtime.watermark)

    def resume(self, point: _Checkpoint | None) -> None:
        if point is None:
            return
        # A restart from a stored snapshot, as the platform does after a restart; the site
        # is built (and restored) now, not at its next reading: an incident may have none.
        self.runtime.watermark = point.watermark
        self.runtime.restore_site(self.home.site.id, copy.deepcopy(point.states))


def _local(day: datetime, hour: int, minute: int = 0) -> float:
    return day.replace(hour=hour, minute=minute, second=0).timestamp()


def incidents(home: Home, days: list[datetime]) -> list[Incident]:
    kit = home.kit
    out: list[Incident] = []

    def add(
        name: str, kind: AlertKind, onset: float, rs: list[Reading], end: float, **kw: Any
    ) -> None:
        cut = kw.pop("cut", onset - 60)
        horizon = kw.pop("horizon", end)
        out.append(Incident(name, kind, onset, rs, end, horizon, cut, **kw))

    for day in days:
        nxt = day + timedelta(days=1)
        onset = _local(day, 15)
        fridge = home.device(kit.activity)
        on, off = (
            reading(home.site, fridge, onset - 5, True),
            reading(home.site, fridge, onset, False),
        )
        add("long_lie", AlertKind.INACTIVITY, onset, [r for r in (on, off) if r], onset + 12 * 3600)
        onset = _local(nxt, 3)
        add(
            "night_exit",
            AlertKind.NIGHT_DOOR_EXIT,
            onset,
            pulse(home, kit.bedroom, onset - 60) + pulse(home, kit.front_door, onset),
            onset + 2 * 3600,
        )
        if kit.beds:
            beds = [home.device(b) for b in kit.beds]
            rs = [r for b in beds if (r := reading(home.site, b, onset - 120, True))]
            rs += [r for b in beds if (r := reading(home.site, b, onset, False))]
            if kit.elsewhere:
                rs += pulse(home, kit.elsewhere, onset + 30)
            add(
                "bed_exit",
                AlertKind.BED_EXIT_NO_RETURN,
                onset,
                rs,
                onset + 2 * 3600,
                cut=onset - 120,
                keep_on=frozenset(kit.beds),
            )
        onset = _local(day, 19)
        add(
            "not_back",
            AlertKind.NOT_RETURNED,
            onset,
            pulse(home, kit.activity, onset - 60) + pulse(home, kit.front_door, onset),
            onset + 9 * 3600,  # past the latest night deadline (03:00)
        )
        for name, start in (("bathroom_day", _local(day, 14)), ("bathroom_night", _local(nxt, 2))):
            back = pulse(home, kit.activity, start + 91 * 60)[:1]
            add(
                name,
                AlertKind.BATHROOM_TOO_LONG,
                start,
                pulse(home, kit.activity, start - 60)
                + pulse(home, kit.bathroom, start)
                + pulse(home, kit.bathroom, start + 90 * 60)
                + back,
                start + 91 * 60,
                horizon=start + 92 * 60,
            )
    return out


def lies_at_home(home: Home, days: list[datetime]) -> list[Incident]:
    """The real last event before 15:00 becomes the onset, on days it is indoors (not the
    front door) and within the two hours before: a lie in the middle of a real afternoon."""
    out: list[Incident] = []
    bg = home.background
    for day in days:
        mid = _local(day, 15)
        earlier = [r for r in bg if mid - 2 * 3600 <= r.ts < mid]
        if not earlier or earlier[-1].device_id == home.kit.front_door:
            continue
        onset = earlier[-1].ts
        end = onset + 12 * 3600
        out.append(
            Incident("long_lie_at_home", AlertKind.INACTIVITY, onset, [], end, end, onset + 0.5)
        )
    return out


def _end_firings(before: Sequence[Reading], cut: float, keep_on: frozenset[str]) -> list[Reading]:
    """Devices left on by the cut (a door open, a mat pressed) are turned off just before
    it, so that the injected readings start from a quiet home."""
    last: dict[str, Reading] = {}
    for r in before:
        last[r.device_id] = r
    out = []
    for r in last.values():
        if r.device_id in keep_on or not is_on(r):
            continue
        off = {k: (0.0 if k == "watts" else False) for k in r.fields}
        t = max(r.ts + 1, cut - 1)  # never at the last reading's own time (a duplicate)
        out.append(replace(r, ts=t, received_at=t, fields=off))
    return sorted(out, key=lambda r: r.ts)


def _raises(transitions: Sequence[Transition]) -> list[Transition]:
    return [t for t in transitions if t.action == TransitionAction.RAISE]


async def _run(
    home: Home,
    incs: list[Incident],
    overrides: Overrides | None,
    progress: Callable[[str], None],
    checkpoints: bool = True,
) -> list[Transition]:
    """The home's life once (its raises are returned), checkpointed at every incident's
    cut; then each incident from its checkpoint (`checkpoints` false: each incident
    replays the life from its start instead, the slow way, to check the fast one)."""
    bg = home.background
    life = _Replayer(home, overrides)
    todo = sorted(incs, key=lambda i: i.cut)
    points: list[tuple[Incident, _Checkpoint | None, int]] = []
    pos = 0
    for inc in todo:
        upto = pos
        while upto < len(bg) and bg[upto].ts < inc.cut:
            upto += 1
        await life.feed(bg[pos:upto])
        pos = upto
        points.append((inc, life.checkpoint() if checkpoints else None, pos))
    await life.feed(bg[pos:])
    await life.runtime.advance_to(bg[-1].ts)
    clean = _raises(life.sink.transitions)
    for n, (inc, point, at) in enumerate(points):
        await _run_incident(home, inc, point, at, overrides)
        if n % 50 == 0:
            progress(f"{home.key}: incident {n + 1}/{len(points)}")
    return clean


async def _run_incident(
    home: Home, inc: Incident, point: _Checkpoint | None, at: int, overrides: Overrides | None
) -> None:
    bg = home.background
    replayer = _Replayer(home, overrides)
    if point is None:
        await replayer.feed(bg[:at])
    else:
        replayer.resume(point)
    ended = _end_firings(bg[max(0, at - 2000) : at], inc.cut, inc.keep_on)
    after = [r for r in bg[at:] if inc.quiet_until < r.ts <= inc.horizon]
    await replayer.feed(sorted([*ended, *inc.readings, *after], key=lambda r: r.ts))
    await replayer.runtime.advance_to(inc.horizon)
    raised = [t for t in _raises(replayer.sink.transitions) if t.kind == inc.kind]
    raised = [t for t in raised if t.ts >= inc.onset]
    if inc.kind == AlertKind.INACTIVITY:
        allowed = float(raised[0].details["threshold_minutes"]) if raised else float("nan")
    elif inc.kind == AlertKind.NOT_RETURNED and raised:
        # The night deadline in force (the default, or the resident's learned one).
        hh, mm = (int(x) for x in str(raised[0].details["deadline"]).split(":"))
        due = datetime.fromtimestamp(inc.onset, home.tz).replace(hour=hh, minute=mm, second=0)
        if due.timestamp() < inc.onset:
            due += timedelta(days=1)
        allowed = (due.timestamp() - inc.onset) / 60
    else:
        allowed = RULE_DELAY_MIN[inc.name]
    delay = (raised[0].ts - inc.onset) / 60 if raised else None
    inc.results = {
        "caught": delay is not None and delay <= allowed + 1.0,
        "delay_minutes": None if delay is None else round(delay, 1),
        "rule_delay_minutes": allowed,
    }


def _summary(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"median": None, "max": None}
    return {"median": round(statistics.median(values), 1), "max": round(max(values), 1)}


def _by_kind(raises: Sequence[Transition]) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in raises:
        out[t.kind.value] = out.get(t.kind.value, 0) + 1
    return dict(sorted(out.items()))


def evaluate_home(
    home: Home,
    overrides: Overrides | None = None,
    progress: Callable[[str], None] = lambda _: None,
    checkpoints: bool = True,
) -> dict[str, Any]:
    from detectors.catalogue import site_context

    site_context(home.site, overrides)  # fail before the replays, naming a bad key
    bg = home.background
    first, last = bg[0].ts, bg[-1].ts
    tz = home.tz
    home_days = (last - first) / 86400
    start_day = datetime.fromtimestamp(first, tz).replace(hour=0, minute=0, second=0)
    days = [start_day + timedelta(days=i) for i in range(1, int(home_days))]
    incs = incidents(home, days) + lies_at_home(home, days)
    raises = asyncio.run(_run(home, incs, overrides, progress, checkpoints))
    by_incident: dict[str, Any] = {}
    for name in INCIDENT_ORDER:
        group = [i for i in incs if i.name == name]
        if not group:
            continue
        caught = [i for i in group if i.results["caught"]]
        by_incident[name] = {
            "kind": group[0].kind.value,
            "injected": len(group),
            "caught": len(caught),
            "recall": round(len(caught) / len(group), 3),
            "delay_minutes": _summary([i.results["delay_minutes"] for i in caught]),
            "missed": [
                {
                    "onset": datetime.fromtimestamp(i.onset, tz).strftime(TIME_FMT),
                    "delay_minutes": i.results["delay_minutes"],
                }
                for i in group
                if not i.results["caught"]
            ],
        }
    middle = datetime.fromtimestamp((first + last) / 2, tz)
    split = middle.replace(hour=0, minute=0, second=0)
    if middle.hour >= 12:
        split += timedelta(days=1)
    return {
        "home": home.key,
        "dataset": home.dataset,
        "home_days": round(home_days, 2),
        "readings": len(bg),
        "false_alarms": {
            "total": len(raises),
            "per_home_day": round(len(raises) / home_days, 3),
            "by_kind": _by_kind(raises),
            "alerts": [
                {
                    "kind": t.kind.value,
                    "at": datetime.fromtimestamp(t.ts, tz).strftime(TIME_FMT),
                    "resident": t.resident_id,
                    "details": dict(t.details),
                }
                for t in raises
            ],
        },
        "incidents": by_incident,
        "halves": {
            "first": _half(raises, incs, first, split.timestamp(), tz),
            "second_held_out": _half(raises, incs, split.timestamp(), last, tz),
        },
        "not_applicable": dict(home.not_applicable),
        "notes": list(home.notes),
    }


def _half(
    raises: list[Transition], incs: list[Incident], start: float, end: float, tz: ZoneInfo
) -> dict[str, Any]:
    days = (end - start) / 86400
    inside = [t for t in raises if start <= t.ts < end]
    group = [i for i in incs if start <= i.onset < end]
    return {
        "from": datetime.fromtimestamp(start, tz).strftime(TIME_FMT),
        "to": datetime.fromtimestamp(end, tz).strftime(TIME_FMT),
        "home_days": round(days, 2),
        "false_alarms": len(inside),
        "per_home_day": round(len(inside) / days, 3) if days > 0 else None,
        "by_kind": _by_kind(inside),
        "incidents_caught": sum(1 for i in group if i.results["caught"]),
        "incidents_injected": len(group),
    }


def together(reports: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """All homes as one: false alarms per home-day over every home-day, incidents summed."""

    def pool(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
        days = sum(p["home_days"] for p in parts)
        alarms = sum(p["false_alarms"] for p in parts)
        by_kind: dict[str, int] = {}
        for p in parts:
            for k, n in p["by_kind"].items():
                by_kind[k] = by_kind.get(k, 0) + n
        return {
            "home_days": round(days, 2),
            "false_alarms": alarms,
            "per_home_day": round(alarms / days, 3) if days else None,
            "by_kind": dict(sorted(by_kind.items())),
            "incidents_caught": sum(p["incidents_caught"] for p in parts),
            "incidents_injected": sum(p["incidents_injected"] for p in parts),
        }

    whole = [
        {
            "home_days": r["home_days"],
            "false_alarms": r["false_alarms"]["total"],
            "by_kind": r["false_alarms"]["by_kind"],
            "incidents_caught": sum(i["caught"] for i in r["incidents"].values()),
            "incidents_injected": sum(i["injected"] for i in r["incidents"].values()),
        }
        for r in reports
    ]
    return {
        "homes": [r["home"] for r in reports],
        "all": pool(whole),
        "first": pool([r["halves"]["first"] for r in reports]),
        "second_held_out": pool([r["halves"]["second_held_out"] for r in reports]),
    }


def format_homes(reports: Sequence[dict[str, Any]]) -> str:
    lines: list[str] = []
    for r in reports:
        fa = r["false_alarms"]
        lines.append(f"== {r['home']}: {r['dataset']}")
        lines.append(
            f"{r['home_days']} home-days, {r['readings']} readings; false alarms {fa['total']} "
            f"({fa['per_home_day']} per home-day) {fa['by_kind']}"
        )
        for a in fa["alerts"]:
            who = f" {a['resident']}" if a["resident"] else ""
            lines.append(f"  {a['at']} {a['kind']}{who}")
        for name, h in r["halves"].items():
            lines.append(
                f"  {name:<15} {h['from']} – {h['to']}: {h['false_alarms']} "
                f"({h['per_home_day']} per home-day), incidents caught "
                f"{h['incidents_caught']}/{h['incidents_injected']}"
            )
        for name, i in r["incidents"].items():
            lines.append(
                f"  {name:<17} {i['kind']:<19} caught {i['caught']}/{i['injected']} delay "
                f"median {i['delay_minutes']['median']} max {i['delay_minutes']['max']} min"
                + (f"; missed {i['missed']}" if i["missed"] else "")
            )
    if len(reports) > 1:
        t = together(reports)
        lines.append(f"== all homes together ({', '.join(t['homes'])})")
        for name in ("all", "first", "second_held_out"):
            p = t[name]
            lines.append(
                f"  {name:<15} {p['home_days']} home-days: {p['false_alarms']} false alarms "
                f"({p['per_home_day']} per home-day) {p['by_kind']}, incidents caught "
                f"{p['incidents_caught']}/{p['incidents_injected']}"
            )
    return "\n".join(lines)
