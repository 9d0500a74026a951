"""Ground truth of injected incidents, and matching the platform's alerts against it.

Every incident the simulator injects is one JSON line: which scenario, which alert
kind a correct platform raises for it, where and for whom, when it started (event
time) and by when the rule should have fired (`due`, from the default rules in
ARCHITECTURE.md). `match_alerts` scores alerts (plain dicts, as the API or the
alert store gives them) against those lines.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eldercare.domain import AlertKind


@dataclass(frozen=True, slots=True)
class TruthRecord:
    scenario: str
    kind: AlertKind
    site: str
    resident: str | None
    device: str | None
    start: float  # event time the incident began, epoch seconds
    due: float  # event time by which the rule should have raised the alert
    end: float | None = None  # when the incident was over (resident helped up, device back)
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        doc = asdict(self)
        doc["kind"] = self.kind.value
        doc["start_iso"] = _iso(self.start)
        doc["due_iso"] = _iso(self.due)
        doc["details"] = dict(self.details)
        return json.dumps(doc, ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, line: str) -> TruthRecord:
        doc = json.loads(line)
        return cls(
            scenario=doc["scenario"],
            kind=AlertKind(doc["kind"]),
            site=doc["site"],
            resident=doc.get("resident"),
            device=doc.get("device"),
            start=float(doc["start"]),
            due=float(doc["due"]),
            end=None if doc.get("end") is None else float(doc["end"]),
            details=doc.get("details") or {},
        )


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def write_truth(records: Iterable[TruthRecord], path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("w", encoding="utf-8") as f:
        for r in sorted(records, key=lambda r: (r.start, r.site, r.kind.value)):
            f.write(r.to_json() + "\n")
            n += 1
    return n


def read_truth(path: Path) -> list[TruthRecord]:
    with path.open(encoding="utf-8") as f:
        return [TruthRecord.from_json(line) for line in f if line.strip()]


@dataclass(frozen=True, slots=True)
class KindScore:
    expected: int
    detected: int
    late: int  # raised after `due` + tolerance (before the end): missed, not a false alarm
    recall: float
    delay_p50_s: float | None  # raised_at - start, over detected incidents
    delay_p95_s: float | None
    false_alarms: int
    # Raised at a site while an injected outage kept it silent: the platform sees
    # nothing there, so these are effects of the incident, not of normal life.
    during_outage: int = 0


@dataclass(frozen=True, slots=True)
class MatchReport:
    per_kind: dict[str, KindScore]
    false_alarms: int
    false_alarms_per_home_day: float
    home_days: float
    unmatched_truth: list[TruthRecord]
    during_outage: int = 0
    # Alerts that detected nothing and were not raised during an outage, for analysis.
    false_alarm_alerts: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "per_kind": {k: asdict(v) for k, v in self.per_kind.items()},
            "false_alarms": self.false_alarms,
            "false_alarms_per_home_day": self.false_alarms_per_home_day,
            "during_outage": self.during_outage,
            "home_days": self.home_days,
            "missed": [json.loads(r.to_json()) for r in self.unmatched_truth],
            "false_alarm_list": self.false_alarm_alerts,
        }


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _alert_time(alert: Mapping[str, Any]) -> float:
    value = alert["raised_at"]
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, datetime):
        return value.timestamp()
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def match_alerts(
    truth_records: Iterable[TruthRecord],
    alerts: Iterable[Mapping[str, Any]],
    *,
    home_days: float,
    tolerance_s: float = 300.0,
    early_s: float = 60.0,
) -> MatchReport:
    """Score alerts against the ground truth.

    An alert (dict with `site`, `resident`, `kind`, `raised_at` as epoch seconds or
    ISO 8601) detects an incident of the same site and kind (and resident, when
    both name one) if it was raised in [start - early_s, due + tolerance_s]; each
    alert detects at most one incident, each incident is detected at most once,
    earliest first. Alerts detecting nothing are false alarms, except those raised at
    a site between the start and the end (+ tolerance) of an injected `site_offline`:
    with every device silent the platform cannot tell those from the incident (a
    device's silence, a resident not seen getting up), so they are counted apart as
    `during_outage`. `home_days` is the exposure (sites x simulated days) the
    false-alarm rate is divided by.
    """
    truth = sorted(truth_records, key=lambda r: r.start)
    pending = sorted(
        ({**a, "_t": _alert_time(a), "_kind": str(a["kind"])} for a in alerts),
        key=lambda a: a["_t"],
    )
    used = [False] * len(pending)
    detected: dict[int, float] = {}
    late: set[int] = set()
    for i, rec in enumerate(truth):
        for j, a in enumerate(pending):
            if used[j] or a["_kind"] != rec.kind.value or a.get("site") != rec.site:
                continue
            resident = a.get("resident")
            if resident and rec.resident and resident != rec.resident:
                continue
            t = a["_t"]
            if rec.start - early_s <= t <= rec.due + tolerance_s:
                used[j] = True
                detected[i] = t - rec.start
                break
            if rec.due + tolerance_s < t <= (rec.end or rec.due) + tolerance_s:
                used[j] = True  # raised, but too late to count: neither a hit nor a false alarm
                late.add(i)
                break
    outages: dict[str, list[tuple[float, float]]] = {}
    for rec in truth:
        if rec.kind is AlertKind.SITE_OFFLINE:
            span = (rec.start - early_s, (rec.end or rec.due) + tolerance_s)
            outages.setdefault(rec.site, []).append(span)
    explained = [
        not used[j] and any(a <= p["_t"] <= b for a, b in outages.get(str(p.get("site")), []))
        for j, p in enumerate(pending)
    ]
    kinds = sorted({r.kind.value for r in truth} | {a["_kind"] for a in pending})
    per_kind: dict[str, KindScore] = {}
    for kind in kinds:
        idx = [i for i, r in enumerate(truth) if r.kind.value == kind]
        delays = [detected[i] for i in idx if i in detected]
        fa = sum(
            1
            for j, a in enumerate(pending)
            if not used[j] and not explained[j] and a["_kind"] == kind
        )
        outage = sum(1 for j, a in enumerate(pending) if explained[j] and a["_kind"] == kind)
        per_kind[kind] = KindScore(
            expected=len(idx),
            detected=len(delays),
            late=sum(1 for i in idx if i in late),
            recall=len(delays) / len(idx) if idx else math.nan,
            delay_p50_s=_percentile(delays, 0.5),
            delay_p95_s=_percentile(delays, 0.95),
            false_alarms=fa,
            during_outage=outage,
        )
    false = [j for j in range(len(pending)) if not used[j] and not explained[j]]
    false_alarms = len(false)
    return MatchReport(
        per_kind=per_kind,
        false_alarms=false_alarms,
        false_alarms_per_home_day=false_alarms / home_days if home_days > 0 else math.nan,
        home_days=home_days,
        unmatched_truth=[r for i, r in enumerate(truth) if i not in detected],
        during_outage=sum(explained),
        false_alarm_alerts=[
            {k: v for k, v in pending[j].items() if not k.startswith("_")} for j in false
        ],
    )
