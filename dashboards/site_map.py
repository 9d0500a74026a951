"""Map: every site on a geomap, coloured by its state — normal, alerting, or offline
(unprotected) — from the latest `site_status` of each site."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import geomap, table
from grafana_foundation_sdk.builders.common import FrameGeometrySource, MapLayerOptions
from grafana_foundation_sdk.models.common import FrameGeometrySourceMode
from grafana_foundation_sdk.models.dashboard import Dashboard

from dashboards import panels as p
from dashboards.influxql import datasource_ref

UID = "eldercare-map"
CENTRE = (37.38, 117.97)  # Binzhou; pan and zoom are the viewer's

# state: 0 normal, 1 online with open alerts, 2 offline. InfluxQL has no CASE, so
# min(open_alerts, 1) is written ceil(x / (x + 1)) for a count x >= 0.
SITE_STATES = (
    'SELECT 2 * (1 - "online") + "online" * ceil("open_alerts" / ("open_alerts" + 1)) AS "state", '
    '"latitude", "longitude", "name", "online", "open_alerts" FROM '
    '(SELECT last("online") AS "online", last("open_alerts") AS "open_alerts", '
    'last("latitude") AS "latitude", last("longitude") AS "longitude", last("name") AS "name" '
    'FROM "site_status" WHERE $timeFilter GROUP BY "site", "kind") '
    'GROUP BY "site", "kind"'
)

STATES = {
    "0": ("正常 Normal", p.GREEN),
    "1": ("有警报 Alerting", p.ORANGE),
    "2": ("离线（无监护）Offline", p.RED),
}


def _markers() -> MapLayerOptions:
    return (
        MapLayerOptions()
        .type("markers")
        .name("站点 Sites")
        .location(
            FrameGeometrySource()
            .mode(FrameGeometrySourceMode.COORDS)
            .latitude("latitude")
            .longitude("longitude")
        )
        .config(
            {
                "showLegend": True,
                "style": {
                    "color": {"field": "state", "fixed": p.GREEN},
                    "size": {"fixed": 8},
                    "opacity": 0.9,
                    "symbol": {"mode": "fixed", "fixed": "img/icons/marker/circle.svg"},
                    "text": {"mode": "field", "field": "name", "fixed": ""},
                },
            }
        )
        .tooltip(True)
    )


def _map() -> geomap.Panel:
    return (
        geomap.Panel()
        .title("站点地图 Sites map")
        .description("Green: normal; orange: open alerts; red: offline, the site is unprotected.")
        .datasource(datasource_ref())
        .with_target(p.target("A", SITE_STATES, table=True))
        .view(geomap.MapViewConfig().id("coords").lat(CENTRE[0]).lon(CENTRE[1]).zoom(11))  # type: ignore[arg-type]
        .layers([_markers()])
        .unit(p.UNIT_STATE)
        .min(0)
        .max(2)
        .thresholds(p.thresholds(p.GREEN, (1, p.ORANGE), (2, p.RED)))
        .mappings([p.value_map(STATES)])
        .span(16)
        .height(18)
    )


def _table() -> table.Panel:
    return (
        table.Panel()
        .title("站点状态 Site states")
        .datasource(datasource_ref())
        .with_target(p.target("A", SITE_STATES, table=True))
        .unit(p.UNIT_STATE)
        .thresholds(p.thresholds(p.GREEN, (1, p.ORANGE), (2, p.RED)))
        .mappings([p.value_map(STATES)])
        .span(8)
        .height(18)
    )


def build() -> Dashboard:
    return (
        dash.Dashboard("站点地图 Map")
        .uid(UID)
        .tags(["eldercare"])
        .timezone(p.TIMEZONE)
        .time("now-1h", "now")
        .refresh("1m")
        .with_panel(_map())
        .with_panel(_table())
        .build()
    )
