"""Resident: one person's day — movement per room, bed, doors, batteries, and their
alerts as annotations. Chosen with a site variable, then a resident of that site."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import statetimeline, table, timeseries
from grafana_foundation_sdk.models.common import VisibilityMode
from grafana_foundation_sdk.models.dashboard import Dashboard

from dashboards import panels as p
from dashboards.influxql import InfluxQLAnnotation, InfluxQLAnnotationBuilder, datasource_ref

UID = "eldercare-resident"

SITE_VARIABLE = 'SHOW TAG VALUES WITH KEY = "site"'
RESIDENT_VARIABLE = 'SHOW TAG VALUES WITH KEY = "resident" WHERE "site" = \'$site\''

# In a home every device watches its one resident; in an institution only the bed,
# SOS and vitals devices carry the resident tag, so rooms are shown for the site.
MOTION_PER_ROOM = (
    'SELECT "motion" FROM "motion" WHERE "site" = \'$site\' AND $timeFilter GROUP BY "room"'
)
BED_OCCUPANCY = (
    'SELECT "occupied" FROM "occupancy" WHERE "site" = \'$site\' '
    'AND "resident" = \'$resident\' AND $timeFilter GROUP BY "device"'
)
DOOR_EVENTS = (
    'SELECT "open" FROM "contact" WHERE "site" = \'$site\' AND $timeFilter GROUP BY "room"'
)
BATTERY = (
    'SELECT last("percent") FROM "battery" WHERE "site" = \'$site\' AND $timeFilter '
    'GROUP BY time($__interval), "device" fill(previous)'
)
ALERT_LOG = (
    'SELECT "alert_id", "kind", "severity", "event", "resident" FROM "alert_event" '
    "WHERE \"site\" = '$site' AND (\"resident\" = '$resident' OR \"resident\" = '') "
    "AND $timeFilter"
)
ALERT_ANNOTATIONS = (
    'SELECT "alert_id", "kind", "severity" FROM "alert_event" WHERE "site" = \'$site\' '
    "AND \"event\" = 'raised' AND $timeFilter"
)

BOOL_STATES = {
    "motion": {"true": ("有活动 motion", p.GREEN), "false": ("无 none", "transparent")},
    "bed": {"true": ("在床 in bed", p.BLUE), "false": ("离床 out of bed", p.YELLOW)},
    "door": {"true": ("开 open", p.ORANGE), "false": ("关 closed", p.GREEN)},
}


def _timeline(title: str, query: str, states: str, alias: str) -> statetimeline.Panel:
    return (
        statetimeline.Panel()
        .title(title)
        .datasource(datasource_ref())
        .with_target(p.target("A", query, alias=alias))
        .unit(p.UNIT_STATE)
        .thresholds(p.thresholds(p.GREEN))
        .mappings([p.value_map(BOOL_STATES[states])])
        .show_value(VisibilityMode.NEVER)
        .merge_values(True)
        .span(24)
        .height(8)
    )


def _battery() -> timeseries.Panel:
    return (
        timeseries.Panel()
        .title("电池电量 Battery levels")
        .datasource(datasource_ref())
        .with_target(p.target("A", BATTERY, alias="$tag_device"))
        .unit(p.UNIT_PERCENT)
        .min(0)
        .max(100)
        .thresholds(p.thresholds(p.RED, (15, p.ORANGE), (30, p.GREEN)))
        .span(12)
        .height(8)
    )


def _alert_log() -> table.Panel:
    return (
        table.Panel()
        .title("警报记录 Alert events")
        .datasource(datasource_ref())
        .with_target(p.target("A", ALERT_LOG, table=True))
        .unit(p.UNIT_STATE)
        .thresholds(p.thresholds(p.GREEN))
        .span(12)
        .height(8)
    )


def build() -> Dashboard:
    return (
        dash.Dashboard("老人详情 Resident")
        .uid(UID)
        .tags(["eldercare"])
        .timezone(p.TIMEZONE)
        .time("now-24h", "now")
        .refresh("1m")
        .with_variable(p.query_variable("site", "站点 Site", SITE_VARIABLE))
        .with_variable(p.query_variable("resident", "老人 Resident", RESIDENT_VARIABLE))
        .annotation(
            InfluxQLAnnotationBuilder(
                InfluxQLAnnotation(
                    "警报 Alerts",
                    ALERT_ANNOTATIONS,
                    icon_color=p.RED,
                    text_column="kind",
                    tags_column="severity",
                )
            )
        )
        .with_panel(_timeline("各房间活动 Motion per room", MOTION_PER_ROOM, "motion", "$tag_room"))
        .with_panel(_timeline("在床状态 Bed occupancy", BED_OCCUPANCY, "bed", "在床 in bed"))
        .with_panel(_timeline("门磁 Door events", DOOR_EVENTS, "door", "$tag_room"))
        .with_panel(_battery())
        .with_panel(_alert_log())
        .build()
    )
