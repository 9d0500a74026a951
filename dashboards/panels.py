"""Small helpers shared by the dashboard modules: thresholds, value maps, InfluxQL
snippets and the few conventions every panel follows (a unit and thresholds set,
titles in Chinese and English, the provisioned InfluxDB data source)."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders.common import ReduceDataOptions
from grafana_foundation_sdk.models.dashboard import (
    Threshold,
    ThresholdsMode,
    ValueMap,
    ValueMappingResult,
    VariableHide,
    VariableRefresh,
    VariableSort,
)

from dashboards.influxql import InfluxQLTarget, datasource_ref

TIMEZONE = "Asia/Shanghai"
TZ = f"tz('{TIMEZONE}')"

# Colours Grafana knows by name; the operator console uses the same meaning.
GREEN, YELLOW, ORANGE, RED, BLUE, GREY = "green", "yellow", "orange", "red", "blue", "text"

# Grafana unit ids (see Grafana's valueFormats); `suffix:` units are free text.
UNIT_COUNT = "short"
UNIT_PERCENT = "percent"
UNIT_SECONDS = "s"
UNIT_MSG_RATE = "suffix: msg/s"
UNIT_STATE = "none"


def thresholds(base: str, *steps: tuple[float, str]) -> dash.ThresholdsConfig:
    """Absolute thresholds: `base` colour below the first step, then each (value, colour)."""
    return (
        dash.ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps(
            [Threshold(value=None, color=base), *(Threshold(value=v, color=c) for v, c in steps)]
        )
    )


def value_map(entries: dict[str, tuple[str, str]]) -> ValueMap:
    """Value → (display text, colour)."""
    return ValueMap(
        options={
            key: ValueMappingResult(text=text, color=color, index=i)
            for i, (key, (text, color)) in enumerate(entries.items())
        }
    )


def target(
    ref_id: str, query: str, *, alias: str | None = None, table: bool = False
) -> InfluxQLTarget:
    t = InfluxQLTarget(ref_id).query(query)
    if alias is not None:
        t = t.alias(alias)
    return t.table() if table else t


# --- InfluxQL fragments -----------------------------------------------------------


def ack_share_query(within_s: float, where: str = "", group_by: str = "") -> str:
    """Share (%) of raised alerts acknowledged within `within_s`, as `eldercare alerts sla`
    counts it: inhibited alerts and alerts the system resolved by itself are left out of
    the denominator; unacknowledged alerts count as not answered in time.

    InfluxQL cannot put two WHERE clauses in one aggregate, so three subqueries give
    each event a `hit` (numerator) and an `n` (denominator) contribution and the outer
    query divides the sums. Every subquery yields both columns: InfluxDB 1.x returns a
    null sum for a column that the first subquery lacks."""
    extra = f" AND {where}" if where else ""
    group = f" GROUP BY {group_by}" if group_by else ""

    def part(hit: str, n: str, condition: str) -> str:
        return (
            f'(SELECT {hit} AS "hit", {n} AS "n" FROM "alert_event" '
            f"WHERE {condition}{extra} AND $timeFilter{group})"
        )

    acked = f'"event" = \'acknowledged\' AND "ack_seconds" <= {within_s:g}'
    left_out = (
        "(\"event\" = 'inhibited' OR (\"event\" = 'resolved' AND \"outcome\" = 'auto_cleared'))"
    )
    return (
        'SELECT 100 * sum("hit") / sum("n") AS "share" FROM '
        + ", ".join(
            [
                part('"value"', '0 * "value"', acked),
                part('0 * "value"', '"value"', "\"event\" = 'raised'"),
                part('0 * "value"', '-1 * "value"', left_out),
            ]
        )
        + group
    )


# --- variables -----------------------------------------------------------------


def query_variable(
    name: str,
    label: str,
    query: str,
    *,
    include_all: bool = False,
) -> dash.QueryVariable:
    v = (
        dash.QueryVariable(name)
        .label(label)
        .query(query)
        .datasource(datasource_ref())
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .hide(VariableHide.DONT_HIDE)
    )
    if include_all:
        # A custom all-value is inserted verbatim (not regex-escaped) by Grafana.
        v = v.include_all(True).all_value(".*")
    return v


def last_value() -> ReduceDataOptions:
    """Stat and bar-gauge panels show the latest value of each series."""
    return ReduceDataOptions().calcs(["lastNotNull"]).values(False)
