"""Institution: a care home's night — beds occupied now, bed exits at night, alerts
by floor.

With the registry, one dashboard per institution, its floors spelled out (see
`dashboards.floors`). Without it, one generic dashboard with a site variable and
no floor breakdown.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import bargauge, stat, timeseries
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.models.common import (
    BarGaugeDisplayMode,
    GraphDrawStyle,
    VizOrientation,
)
from grafana_foundation_sdk.models.dashboard import Dashboard

from dashboards import panels as p
from dashboards.floors import Floor, Institution, influx_regex
from dashboards.influxql import datasource_ref

UID_PREFIX = "eldercare-institution"
SITE_VARIABLE = (
    'SHOW TAG VALUES FROM "site_status" WITH KEY = "site" WHERE "kind" = \'institution\''
)


def _last_occupancy(site: str, room_filter: str = "") -> str:
    # The latest occupancy report of every bed sensor in the range.
    return (
        'SELECT last("occupied") AS "occupied" FROM "occupancy" '
        f'WHERE "site" = \'{site}\'{room_filter} AND $timeFilter GROUP BY "device"'
    )


def beds_occupied(site: str, room_filter: str = "") -> str:
    return (
        f'SELECT count("occupied") FROM ({_last_occupancy(site, room_filter)}) '
        'WHERE "occupied" = true'
    )


def beds_monitored(site: str) -> str:
    return f'SELECT count("occupied") FROM ({_last_occupancy(site)})'


def night_bed_exits(site: str) -> str:
    # Buckets of 8 h starting 06:00, 14:00 and 22:00 local time: the 22:00 bar is the night.
    return (
        f'SELECT count("occupied") FROM "occupancy" WHERE "site" = \'{site}\' '
        f'AND "occupied" = false AND $timeFilter GROUP BY time(8h, 6h) fill(0) {p.TZ}'
    )


def alerts_by_kind(site: str) -> str:
    return (
        f'SELECT sum("value") FROM "alert_event" WHERE "site" = \'{site}\' '
        'AND "event" = \'raised\' AND $timeFilter GROUP BY "kind"'
    )


def alerts_on_floor(site: str, floor: Floor) -> str:
    # Alert events carry the resident, not the room: the floor is its residents.
    return (
        f'SELECT sum("value") FROM "alert_event" WHERE "site" = \'{site}\' '
        f'AND "event" = \'raised\' AND "resident" =~ {influx_regex(floor.residents)} '
        "AND $timeFilter"
    )


def _ref(i: int) -> str:
    return chr(ord("A") + i) if i < 26 else f"F{i}"


def _beds_now(site: str) -> stat.Panel:
    return (
        stat.Panel()
        .title("当前在床 Beds occupied now")
        .datasource(datasource_ref())
        .with_target(p.target("A", beds_occupied(site), alias="在床 in bed"))
        .with_target(p.target("B", beds_monitored(site), alias="床位传感器 beds monitored"))
        .unit(p.UNIT_COUNT)
        .min(0)
        .thresholds(p.thresholds(p.GREEN))
        .reduce_options(p.last_value())
        .span(8)
        .height(7)
    )


def _night_exits(site: str) -> timeseries.Panel:
    return (
        timeseries.Panel()
        .title("夜间离床 Night bed exits")
        .description(
            "Bed exits per shift (bars start 06:00, 14:00, 22:00); the 22:00 bar is the night."
        )
        .datasource(datasource_ref())
        .with_target(p.target("A", night_bed_exits(site), alias="离床 bed exits"))
        .unit(p.UNIT_COUNT)
        .min(0)
        .thresholds(p.thresholds(p.GREEN, (10, p.ORANGE), (30, p.RED)))
        .draw_style(GraphDrawStyle.BARS)
        .fill_opacity(80)
        .span(16)
        .height(7)
    )


def _gauge(title: str) -> bargauge.Panel:
    return (
        bargauge.Panel()
        .title(title)
        .datasource(datasource_ref())
        .unit(p.UNIT_COUNT)
        .min(0)
        .display_mode(BarGaugeDisplayMode.BASIC)
        .orientation(VizOrientation.HORIZONTAL)
        .reduce_options(p.last_value())
        .span(12)
        .height(8)
    )


def _floor_panels(inst: Institution) -> list[bargauge.Panel]:
    floors = [f for f in inst.floors if f.rooms]
    beds = _gauge("各楼层在床 Beds occupied by floor").thresholds(p.thresholds(p.GREEN))
    for i, floor in enumerate(floors):
        rooms = f' AND "room" =~ {influx_regex(floor.rooms)}'
        beds = beds.with_target(
            p.target(_ref(i), beds_occupied(inst.site_id, rooms), alias=floor.label)
        )
    alerts = _gauge("各楼层警报 Alerts by floor").thresholds(
        p.thresholds(p.GREEN, (1, p.ORANGE), (10, p.RED))
    )
    with_residents = [f for f in floors if f.residents]
    for i, floor in enumerate(with_residents):
        alerts = alerts.with_target(
            p.target(_ref(i), alerts_on_floor(inst.site_id, floor), alias=floor.label)
        )
    return [beds, alerts] if with_residents else [beds]


def _alerts_by_kind(site: str) -> bargauge.Panel:
    return (
        _gauge("警报（按类型）Alerts by kind")
        .with_target(p.target("A", alerts_by_kind(site), alias="$tag_kind"))
        .thresholds(p.thresholds(p.GREEN, (1, p.ORANGE), (10, p.RED)))
    )


def build(inst: Institution | None = None) -> Dashboard:
    """The dashboard of one institution, or (None) the generic one with a site variable."""
    site = inst.site_id if inst else "$site"
    title = f"养老机构 Institution · {inst.name}" if inst else "养老机构 Institution"
    board = (
        dash.Dashboard(title)
        .uid(f"{UID_PREFIX}-{inst.site_id}"[:40] if inst else UID_PREFIX)
        .tags(["eldercare", "institution"])
        .timezone(p.TIMEZONE)
        .time("now-24h", "now")
        .refresh("1m")
    )
    if inst is None:
        board = board.with_variable(p.query_variable("site", "机构 Institution", SITE_VARIABLE))
    board = board.with_panel(_beds_now(site)).with_panel(_night_exits(site))
    if inst is not None:
        for panel in _floor_panels(inst):
            board = board.with_panel(panel)
    board = board.with_panel(_alerts_by_kind(site))
    return board.build()
