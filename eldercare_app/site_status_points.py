"""The map's site and device status points, as one process and a cluster's detector
worker both write them; apart from `eldercare_app.wiring` so that a detector worker can
build them without importing the whole platform."""

from __future__ import annotations

from collections.abc import Callable

from alerts.store_queries import AlertQueries
from eldercare.clock import Clock
from eldercare.influx import InfluxClient
from eldercare.registry_index import RegistryIndex
from eldercare.settings import Settings
from ingest.site_status import SiteStatusTracker


def site_status_tracker(
    settings: Settings,
    index: Callable[[], RegistryIndex],
    alerts: AlertQueries,
    influx: InfluxClient,
    clock: Clock,
) -> SiteStatusTracker:
    """The map's site and device status points, with each site's unresolved alerts,
    written to InfluxDB (one process, or a cluster's detector worker)."""

    async def write(lines: list[str]) -> None:
        await influx.write(lines, settings.influx_db)

    return SiteStatusTracker(index, alerts.unresolved_by_site, write, clock)
