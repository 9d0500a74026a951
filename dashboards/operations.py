"""Operations: the service centre at a glance — open alerts, response compliance,
sites and devices online, bad input and the ingest pipeline's own health."""

from __future__ import annotations

from grafana_foundation_sdk.builders import bargauge, stat, timeseries
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders.common import StackingConfig
from grafana_foundation_sdk.models.common import (
    BarGaugeDisplayMode,
    GraphDrawStyle,
    StackingMode,
    VizOrientation,
)
from grafana_foundation_sdk.models.dashboard import Dashboard

from dashboards import panels as p
from dashboards.influxql import datasource_ref
from eldercare.domain import HAZARD_KINDS

UID = "eldercare-operations"

OPEN_ALERTS_BY_SEVERITY = (
    # Raised minus resolved, per severity: the subqueries give each event +1 or -1.
    'SELECT sum("open") FROM '
    '(SELECT "value" AS "open" FROM "alert_event" WHERE "event" = \'raised\' AND $timeFilter), '
    '(SELECT -1 * "value" AS "open" FROM "alert_event" WHERE "event" = \'resolved\' '
    "AND $timeFilter) "
    'GROUP BY "severity"'
)
ALERTS_PER_DAY_BY_KIND = (
    'SELECT sum("value") FROM "alert_event" WHERE "event" = \'raised\' AND $timeFilter '
    f'GROUP BY time(1d), "kind" fill(0) {p.TZ}'
)
# Home hazards (smoke, gas, CO, water, heat, cold) raised, per kind: counted apart from
# falls and SOS calls, which the per-kind chart mixes them with.
HAZARDS_BY_KIND = (
    'SELECT sum("value") FROM "alert_event" WHERE "event" = \'raised\' '
    f'AND "kind" =~ /^({"|".join(sorted(k.value for k in HAZARD_KINDS))})$/ AND $timeFilter '
    'GROUP BY "kind"'
)
SITES_ONLINE = (
    'SELECT sum("online") FROM (SELECT last("online") AS "online" FROM "site_status" '
    'WHERE $timeFilter GROUP BY "site")'
)
SITES_TOTAL = (
    'SELECT count("online") FROM (SELECT last("online") AS "online" FROM "site_status" '
    'WHERE $timeFilter GROUP BY "site")'
)
DEVICES_ONLINE = (
    'SELECT sum("online") FROM (SELECT last("online") AS "online" FROM "device_status" '
    'WHERE $timeFilter GROUP BY "device")'
)
DEVICES_TOTAL = (
    'SELECT count("online") FROM (SELECT last("online") AS "online" FROM "device_status" '
    'WHERE $timeFilter GROUP BY "device")'
)


def _ingest_counter(field: str) -> str:
    # Cumulative per ingest instance since it started; summed over instances.
    return (
        f'SELECT sum("{field}") FROM (SELECT last("{field}") AS "{field}" FROM "ingest_stats" '
        'WHERE $timeFilter GROUP BY "instance")'
    )


INGEST_RATE = (
    'SELECT mean("rate") FROM "ingest_stats" WHERE $timeFilter '
    'GROUP BY time($__interval), "instance" fill(null)'
)
INGEST_LAG = (
    'SELECT max("lag_seconds") FROM "ingest_stats" WHERE $timeFilter '
    'GROUP BY time($__interval), "instance" fill(null)'
)


def _open_alerts() -> bargauge.Panel:
    return (
        bargauge.Panel()
        .title("待处理警报（按级别）Open alerts by severity")
        .description("Raised minus resolved in the time range, per severity.")
        .datasource(datasource_ref())
        .with_target(p.target("A", OPEN_ALERTS_BY_SEVERITY, alias="$tag_severity"))
        .unit(p.UNIT_COUNT)
        .min(0)
        .thresholds(p.thresholds(p.GREEN, (1, p.ORANGE), (5, p.RED)))
        .display_mode(BarGaugeDisplayMode.BASIC)
        .orientation(VizOrientation.HORIZONTAL)
        .reduce_options(p.last_value())
        .span(8)
        .height(7)
    )


def _ack_share(within_s: int, target_pct: float) -> stat.Panel:
    return (
        stat.Panel()
        .title(f"{within_s} 秒内接警率 Acknowledged within {within_s} s")
        .description(
            f"Share of raised alerts acknowledged within {within_s} s; the telecare target is "
            f"{target_pct:g}%. Inhibited and self-resolved alerts are left out."
        )
        .datasource(datasource_ref())
        .with_target(p.target("A", p.ack_share_query(within_s)))
        .unit(p.UNIT_PERCENT)
        .decimals(1)
        .min(0)
        .max(100)
        .thresholds(p.thresholds(p.RED, (target_pct - 5, p.ORANGE), (target_pct, p.GREEN)))
        .reduce_options(p.last_value())
        .span(4)
        .height(7)
    )


def _online(title: str, online: str, total: str, warn_below: float) -> stat.Panel:
    return (
        stat.Panel()
        .title(title)
        .datasource(datasource_ref())
        .with_target(p.target("A", online, alias="在线 online"))
        .with_target(p.target("B", total, alias="总数 total"))
        .unit(p.UNIT_COUNT)
        .min(0)
        .thresholds(p.thresholds(p.RED, (warn_below, p.GREEN)))
        .reduce_options(p.last_value())
        .span(4)
        .height(7)
    )


def _bad_input() -> stat.Panel:
    return (
        stat.Panel()
        .title("隔离与未登记消息 Quarantined / unregistered")
        .description(
            "Messages refused (quarantined) and from devices not in the registry, "
            "counted by each ingest instance since it started."
        )
        .datasource(datasource_ref())
        .with_target(p.target("A", _ingest_counter("quarantined"), alias="隔离 quarantined"))
        .with_target(p.target("B", _ingest_counter("unregistered"), alias="未登记 unregistered"))
        .unit(p.UNIT_COUNT)
        .min(0)
        .thresholds(p.thresholds(p.GREEN, (1, p.ORANGE), (100, p.RED)))
        .reduce_options(p.last_value())
        .span(4)
        .height(7)
    )


def _alerts_per_day() -> timeseries.Panel:
    return (
        timeseries.Panel()
        .title("每日警报（按类型）Alerts per day by kind")
        .datasource(datasource_ref())
        .with_target(p.target("A", ALERTS_PER_DAY_BY_KIND, alias="$tag_kind"))
        .unit(p.UNIT_COUNT)
        .min(0)
        .thresholds(p.thresholds(p.GREEN, (20, p.ORANGE), (50, p.RED)))
        .draw_style(GraphDrawStyle.BARS)
        .fill_opacity(80)
        .stacking(StackingConfig().mode(StackingMode.NORMAL))
        .span(8)
        .height(9)
    )


def _hazards() -> bargauge.Panel:
    return (
        bargauge.Panel()
        .title("居家安全隐患 Home hazards")
        .description(
            "Smoke, gas, carbon monoxide, water leak, heat and cold alerts raised in the "
            "time range, per kind."
        )
        .datasource(datasource_ref())
        .with_target(p.target("A", HAZARDS_BY_KIND, alias="$tag_kind"))
        .unit(p.UNIT_COUNT)
        .min(0)
        .thresholds(p.thresholds(p.GREEN, (1, p.ORANGE), (3, p.RED)))
        .display_mode(BarGaugeDisplayMode.BASIC)
        .orientation(VizOrientation.HORIZONTAL)
        .reduce_options(p.last_value())
        .span(8)
        .height(7)
    )


def _ingest_rate() -> timeseries.Panel:
    return (
        timeseries.Panel()
        .title("接入速率 Ingest rate")
        .datasource(datasource_ref())
        .with_target(p.target("A", INGEST_RATE, alias="$tag_instance"))
        .unit(p.UNIT_MSG_RATE)
        .min(0)
        .thresholds(p.thresholds(p.GREEN))
        .span(6)
        .height(9)
    )


def _ingest_lag() -> timeseries.Panel:
    return (
        timeseries.Panel()
        .title("接入延迟 Ingest lag")
        .description("Wall time minus event time of the newest reading ingested.")
        .datasource(datasource_ref())
        .with_target(p.target("A", INGEST_LAG, alias="$tag_instance"))
        .unit(p.UNIT_SECONDS)
        .min(0)
        .thresholds(p.thresholds(p.GREEN, (60, p.ORANGE), (300, p.RED)))
        .span(6)
        .height(9)
    )


def build() -> Dashboard:
    return (
        dash.Dashboard("运营总览 Operations")
        .uid(UID)
        .tags(["eldercare"])
        .timezone(p.TIMEZONE)
        .time("now-24h", "now")
        .refresh("1m")
        .with_panel(_open_alerts())
        .with_panel(_ack_share(60, 97.5))
        .with_panel(_ack_share(180, 99.0))
        .with_panel(_online("在线站点 Sites online", SITES_ONLINE, SITES_TOTAL, warn_below=1))
        .with_panel(_online("在线设备 Devices online", DEVICES_ONLINE, DEVICES_TOTAL, warn_below=1))
        .with_panel(_bad_input())
        .with_panel(_alerts_per_day())
        .with_panel(_ingest_rate())
        .with_panel(_ingest_lag())
        .with_panel(_hazards())
        .build()
    )
