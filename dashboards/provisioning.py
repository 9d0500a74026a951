"""Grafana provisioning: the InfluxDB data source (InfluxQL) and the dashboard provider.

The files use Grafana's `${VAR}` expansion, so one build serves every deployment:
the URL, database and token come from the Grafana container's environment
(`deploy/docker-compose.yml` passes them; `deploy/.env.example` documents them).
"""

from __future__ import annotations

from typing import Any

import yaml

from dashboards.influxql import DATASOURCE_NAME, DATASOURCE_UID, INFLUXDB_TYPE

FOLDER_UID = "eldercare"
FOLDER_TITLE = "养老监护 Eldercare"
DEFAULT_DASHBOARDS_PATH = "/var/lib/grafana/dashboards/eldercare"

# Environment variables the provisioned data source reads (in Grafana's container).
ENV_INFLUX_URL = "ELDERCARE_INFLUX_URL"
ENV_INFLUX_DB = "ELDERCARE_INFLUX_DB"
ENV_INFLUX_TOKEN = "ELDERCARE_INFLUX_TOKEN"


def datasource(url: str, database: str, token: str) -> dict[str, Any]:
    """An InfluxDB data source speaking InfluxQL. On 2.x/3.x the v1-compatibility API
    takes the token in an `Authorization: Token …` header."""
    return {
        "name": DATASOURCE_NAME,
        "uid": DATASOURCE_UID,
        "type": INFLUXDB_TYPE,
        "access": "proxy",
        "url": url,
        "isDefault": True,
        "editable": False,
        "jsonData": {
            "version": "InfluxQL",
            "dbName": database,
            "httpMode": "POST",
            "timeInterval": "10s",
            "httpHeaderName1": "Authorization",
        },
        "secureJsonData": {"httpHeaderValue1": f"Token {token}"},
    }


def datasources_yaml() -> str:
    doc = {
        "apiVersion": 1,
        "datasources": [
            datasource(
                f"${{{ENV_INFLUX_URL}}}", f"${{{ENV_INFLUX_DB}}}", f"${{{ENV_INFLUX_TOKEN}}}"
            )
        ],
    }
    return _header("data source") + yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


def dashboards_yaml(dashboards_path: str = DEFAULT_DASHBOARDS_PATH) -> str:
    doc = {
        "apiVersion": 1,
        "providers": [
            {
                "name": "eldercare",
                "orgId": 1,
                "folder": FOLDER_TITLE,
                "folderUid": FOLDER_UID,
                "type": "file",
                "disableDeletion": False,
                "allowUiUpdates": False,  # the code is the source; edits in the UI are lost
                "updateIntervalSeconds": 60,
                "options": {"path": dashboards_path, "foldersFromFilesStructure": False},
            }
        ],
    }
    return _header("dashboard provider") + yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


def _header(what: str) -> str:
    return f"# Grafana {what}, written by `eldercare dashboards build`. Do not edit.\n"
