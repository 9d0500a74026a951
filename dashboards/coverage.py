"""Coverage: per organisation unit (city → district → street → community, or an
institution), how many sites are monitored and protected, and how fast alerts were
answered. The `org` variable narrows to a unit and everything under it."""

from __future__ import annotations

from grafana_foundation_sdk.builders import bargauge
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders.dashboard import ThresholdsConfig
from grafana_foundation_sdk.models.common import BarGaugeDisplayMode, VizOrientation
from grafana_foundation_sdk.models.dashboard import Dashboard

from dashboards import panels as p
from dashboards.influxql import datasource_ref

UID = "eldercare-coverage"
ORG_VARIABLE = 'SHOW TAG VALUES FROM "site_status" WITH KEY = "org"'
# Prefix match: a unit includes everything below it. `:regex` escapes the path's
# characters (`/` included); the custom all-value `.*` is inserted verbatim.
IN_ORG = '"org" =~ /^${org:regex}/'

_LAST_PER_SITE = (
    'SELECT last("online") AS "online", last("devices_online") AS "devices_online", '
    'last("devices_total") AS "devices_total" FROM "site_status" '
    f'WHERE {IN_ORG} AND $timeFilter GROUP BY "site", "org"'
)
SITES_MONITORED = f'SELECT count("online") FROM ({_LAST_PER_SITE}) GROUP BY "org"'
SITES_PROTECTED_PCT = (
    f'SELECT 100 * sum("online") / count("online") FROM ({_LAST_PER_SITE}) GROUP BY "org"'
)
DEVICES_ONLINE_PCT = (
    f'SELECT 100 * sum("devices_online") / sum("devices_total") FROM ({_LAST_PER_SITE}) '
    'GROUP BY "org"'
)
ALERTS_RAISED = (
    'SELECT sum("value") FROM "alert_event" WHERE "event" = \'raised\' '
    f'AND {IN_ORG} AND $timeFilter GROUP BY "org"'
)
ACK_P95 = (
    'SELECT percentile("ack_seconds", 95) FROM "alert_event" WHERE "event" = \'acknowledged\' '
    f'AND {IN_ORG} AND $timeFilter GROUP BY "org"'
)
# Visits (探访), from field_service.coverage_points: the last point of each unit, summed.
_LAST_VISITS = (
    'SELECT last("needed") AS "needed", last("visited") AS "visited", '
    'last("overdue") AS "overdue" FROM "visit_coverage" '
    f'WHERE {IN_ORG} AND $timeFilter GROUP BY "org"'
)
VISIT_RATE = (
    f'SELECT 100 * sum("visited") / sum("needed") AS "rate" FROM ({_LAST_VISITS}) GROUP BY "org"'
)
VISITS_OVERDUE = f'SELECT sum("overdue") AS "overdue" FROM ({_LAST_VISITS}) GROUP BY "org"'
ACK_WITHIN_60 = p.ack_share_query(60, where=IN_ORG, group_by='"org"')
ACK_WITHIN_180 = p.ack_share_query(180, where=IN_ORG, group_by='"org"')


def _per_unit(title: str, query: str, unit: str, steps: ThresholdsConfig) -> bargauge.Panel:
    panel = (
        bargauge.Panel()
        .title(title)
        .datasource(datasource_ref())
        .with_target(p.target("A", query, alias="$tag_org"))
        .unit(unit)
        .min(0)
        .thresholds(steps)
        .display_mode(BarGaugeDisplayMode.BASIC)
        .orientation(VizOrientation.HORIZONTAL)
        .reduce_options(p.last_value())
        .span(12)
        .height(8)
    )
    return panel.max(100) if unit == p.UNIT_PERCENT else panel


def build() -> Dashboard:
    percent_good = p.thresholds(p.RED, (90, p.ORANGE), (98, p.GREEN))
    return (
        dash.Dashboard("监护覆盖 Coverage")
        .uid(UID)
        .tags(["eldercare"])
        .timezone(p.TIMEZONE)
        .time("now-7d", "now")
        .refresh("5m")
        .with_variable(p.query_variable("org", "组织 Organisation", ORG_VARIABLE, include_all=True))
        .with_panel(
            _per_unit(
                "监护站点 Sites monitored",
                SITES_MONITORED,
                p.UNIT_COUNT,
                p.thresholds(p.GREEN),
            )
        )
        .with_panel(
            _per_unit(
                "监护覆盖率 Sites protected", SITES_PROTECTED_PCT, p.UNIT_PERCENT, percent_good
            )
        )
        .with_panel(
            _per_unit("设备在线率 Devices online", DEVICES_ONLINE_PCT, p.UNIT_PERCENT, percent_good)
        )
        .with_panel(
            _per_unit(
                "警报数 Alerts raised",
                ALERTS_RAISED,
                p.UNIT_COUNT,
                p.thresholds(p.GREEN, (10, p.ORANGE), (50, p.RED)),
            )
        )
        .with_panel(
            _per_unit(
                "60 秒内接警率 Acknowledged within 60 s",
                ACK_WITHIN_60,
                p.UNIT_PERCENT,
                p.thresholds(p.RED, (92.5, p.ORANGE), (97.5, p.GREEN)),
            )
        )
        .with_panel(
            _per_unit(
                "180 秒内接警率 Acknowledged within 180 s",
                ACK_WITHIN_180,
                p.UNIT_PERCENT,
                p.thresholds(p.RED, (94, p.ORANGE), (99, p.GREEN)),
            )
        )
        .with_panel(
            _per_unit(
                "接警用时 P95 Time to acknowledge (95th pct)",
                ACK_P95,
                p.UNIT_SECONDS,
                p.thresholds(p.GREEN, (60, p.ORANGE), (180, p.RED)),
            )
        )
        .with_panel(
            _per_unit(
                "本月探访率 Visits this month",
                VISIT_RATE,
                p.UNIT_PERCENT,
                p.thresholds(p.RED, (90, p.ORANGE), (100, p.GREEN)),
            )
        )
        .with_panel(
            _per_unit(
                "逾期未探访 Visits overdue",
                VISITS_OVERDUE,
                p.UNIT_COUNT,
                p.thresholds(p.GREEN, (1, p.RED)),
            )
        )
        .build()
    )
