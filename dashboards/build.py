"""`eldercare dashboards build`: a folder a stock Grafana loads.

    OUT/dashboards/<uid>.json                    the dashboards
    OUT/provisioning/datasources/eldercare.yaml  InfluxDB (InfluxQL) from the environment
    OUT/provisioning/dashboards/eldercare.yaml   a file provider reading the dashboards

Mount `OUT/provisioning` at `/etc/grafana/provisioning` and `OUT/dashboards` at the
provider's path (default `/var/lib/grafana/dashboards/eldercare`), as
`deploy/docker-compose.yml` does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dashboards.catalogue import build_all
from dashboards.influxql import dashboard_json
from dashboards.provisioning import DEFAULT_DASHBOARDS_PATH, dashboards_yaml, datasources_yaml
from eldercare.registry_model import RegistryDocument

DATASOURCES_FILE = Path("provisioning/datasources/eldercare.yaml")
PROVIDERS_FILE = Path("provisioning/dashboards/eldercare.yaml")
DASHBOARDS_DIR = Path("dashboards")


@dataclass(frozen=True, slots=True)
class BuildOutput:
    root: Path
    dashboards: list[Path]
    datasources: Path
    providers: Path


def dashboard_docs(registry: RegistryDocument | None = None) -> list[dict[str, Any]]:
    return [dashboard_json(d) for d in build_all(registry)]


def write_build(
    out: Path,
    registry: RegistryDocument | None = None,
    dashboards_path: str = DEFAULT_DASHBOARDS_PATH,
) -> BuildOutput:
    """Write everything; stale dashboard files from an earlier build are removed."""
    board_dir = out / DASHBOARDS_DIR
    board_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for doc in dashboard_docs(registry):
        path = board_dir / f"{doc['uid']}.json"
        path.write_text(json.dumps(doc, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        written.append(path)
    for stale in set(board_dir.glob("*.json")) - set(written):
        stale.unlink()
    datasources = out / DATASOURCES_FILE
    providers = out / PROVIDERS_FILE
    for path in (datasources, providers):
        path.parent.mkdir(parents=True, exist_ok=True)
    datasources.write_text(datasources_yaml(), encoding="utf-8")
    providers.write_text(dashboards_yaml(dashboards_path), encoding="utf-8")
    return BuildOutput(out, written, datasources, providers)
