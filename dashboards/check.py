"""Run every query of the built dashboards against a real InfluxDB, as Grafana would.

Grafana substitutes template variables and `$timeFilter` before sending InfluxQL;
`interpolate` does the same for the forms our dashboards use, so the queries that
run here are the ones Grafana runs. Variables not bound explicitly take the first
value their own query returns (Grafana's default selection).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from eldercare.influx import InfluxClient, InfluxError

_VAR = re.compile(r"\$\{(\w+)(?::(\w+))?\}|\$(\w+)")
_REGEX_SPECIAL = re.compile(r"[\\^$*+?.()|\[\]{}/]")
ALL_VALUE = ".*"


@dataclass(frozen=True, slots=True)
class TimeRange:
    start_ms: int
    end_ms: int
    interval: str = "1m"


@dataclass(frozen=True, slots=True)
class QueryRef:
    dashboard: str
    panel: str  # panel title, or "annotation: name", or "variable: name"
    ref_id: str
    query: str


@dataclass(frozen=True, slots=True)
class QueryResult:
    ref: QueryRef
    sent: str
    rows: int
    error: str | None = None


def interpolate(query: str, values: Mapping[str, str], time_range: TimeRange) -> str:
    """Grafana's substitution for the InfluxDB data source (the subset we use):
    `$timeFilter`, `$__interval`, `$var` / `${var}` (quotes escaped) and `${var:regex}`
    (regex-escaped; the custom all-value `.*` verbatim)."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(3)
        fmt = m.group(2)
        if name == "timeFilter":
            return f"time >= {time_range.start_ms}ms and time <= {time_range.end_ms}ms"
        if name == "__interval":
            return time_range.interval
        if name not in values:
            raise KeyError(f"variable ${name} is not bound")
        value = values[name]
        if fmt == "regex":
            return value if value == ALL_VALUE else _REGEX_SPECIAL.sub(r"\\\g<0>", value)
        if fmt is not None:
            raise ValueError(f"format {fmt!r} of ${name} is not supported")
        return value.replace("\\", "\\\\").replace("'", "\\'")

    return _VAR.sub(sub, query)


def variables_used(query: str) -> set[str]:
    """Template variables a query refers to (Grafana's built-ins left out)."""
    names = {m.group(1) or m.group(3) for m in _VAR.finditer(query)}
    return {n for n in names if n != "timeFilter" and not n.startswith(("__", "tag_"))}


def panel_queries(doc: Mapping[str, Any]) -> Iterator[QueryRef]:
    """Every InfluxQL query of a dashboard: panel targets and annotations."""
    title = str(doc.get("title", ""))
    for panel in _panels(doc):
        for t in panel.get("targets") or []:
            if t.get("rawQuery") and t.get("query"):
                yield QueryRef(title, str(panel.get("title", "")), str(t["refId"]), t["query"])
    for a in (doc.get("annotations") or {}).get("list") or []:
        target = a.get("target") or {}
        if target.get("query"):
            yield QueryRef(title, f"annotation: {a.get('name')}", "Anno", target["query"])


def variable_queries(doc: Mapping[str, Any]) -> list[QueryRef]:
    title = str(doc.get("title", ""))
    return [
        QueryRef(title, f"variable: {v['name']}", v["name"], str(v.get("query", "")))
        for v in (doc.get("templating") or {}).get("list") or []
        if v.get("type") == "query"
    ]


def _panels(doc: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for panel in doc.get("panels") or []:
        yield panel
        yield from panel.get("panels") or []  # panels inside a collapsed row


async def check_dashboard(
    client: InfluxClient,
    db: str,
    doc: Mapping[str, Any],
    time_range: TimeRange,
    bindings: Mapping[str, str] | None = None,
) -> list[QueryResult]:
    """Bind the variables (in order, each may use the ones before), then run every
    query. A query error is reported in its result, not raised."""
    values = dict(bindings or {})
    results: list[QueryResult] = []
    for ref in variable_queries(doc):
        name = ref.ref_id
        result, rows = await _run(client, db, ref, values, time_range)
        results.append(result)
        if name not in values and rows:
            first = sorted(str(r.get("value")) for r in rows)[0]
            values[name] = first
    for ref in panel_queries(doc):
        result, _ = await _run(client, db, ref, values, time_range)
        results.append(result)
    return results


async def _run(
    client: InfluxClient,
    db: str,
    ref: QueryRef,
    values: Mapping[str, str],
    time_range: TimeRange,
) -> tuple[QueryResult, list[dict[str, Any]]]:
    try:
        sent = interpolate(ref.query, values, time_range)
    except (KeyError, ValueError) as exc:
        return QueryResult(ref, ref.query, 0, str(exc)), []
    try:
        rows = await client.query(sent, db)
    except InfluxError as exc:
        return QueryResult(ref, sent, 0, str(exc)), []
    return QueryResult(ref, sent, len(rows)), rows
