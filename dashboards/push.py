"""`eldercare dashboards push`: upload the data source, folder and dashboards to a
running Grafana through its HTTP API (for a Grafana not provisioned from files)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from grafana_client.api import GrafanaApi
from grafana_client.client import GrafanaClientError

from dashboards.influxql import DATASOURCE_UID
from dashboards.provisioning import FOLDER_TITLE, FOLDER_UID, datasource


@dataclass(slots=True)
class PushReport:
    datasource: str = ""  # "created" | "updated"
    folder: str = ""  # "created" | "exists"
    dashboards: list[str] = field(default_factory=list)  # uids uploaded


def _missing(exc: GrafanaClientError) -> bool:
    return bool(exc.status_code == 404)


def push(
    api: GrafanaApi,
    docs: Sequence[dict[str, Any]],
    *,
    influx_url: str,
    influx_db: str,
    influx_token: str,
) -> PushReport:
    """Create or update, idempotently: running it twice leaves the same Grafana."""
    report = PushReport()
    # grafana-client's element methods are untyped.
    datasources: Any = api.datasource
    folders: Any = api.folder
    dashboards: Any = api.dashboard
    ds = datasource(influx_url, influx_db, influx_token)
    try:
        datasources.get_datasource_by_uid(DATASOURCE_UID)
    except GrafanaClientError as exc:
        if not _missing(exc):
            raise
        datasources.create_datasource(ds)
        report.datasource = "created"
    else:
        datasources.update_datasource_by_uid(DATASOURCE_UID, ds)
        report.datasource = "updated"
    try:
        folders.get_folder(FOLDER_UID)
        report.folder = "exists"
    except GrafanaClientError as exc:
        if not _missing(exc):
            raise
        folders.create_folder(FOLDER_TITLE, uid=FOLDER_UID)
        report.folder = "created"
    for doc in docs:
        dashboards.update_dashboard(
            {
                "dashboard": {**doc, "id": None},
                "folderUid": FOLDER_UID,
                "overwrite": True,
                "message": "eldercare dashboards push",
            }
        )
        report.dashboards.append(str(doc["uid"]))
    return report
