"""`eldercare dashboards`: build the Grafana folder, push it to a Grafana, or check
every panel's query against an InfluxDB."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Annotated

import typer

from eldercare.cli_errors import fail
from eldercare.registry_model import RegistryDocument

app = typer.Typer(
    help="Grafana dashboards as code: build, push, check.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

RegistryOption = Annotated[
    Path | None,
    typer.Option(
        "--registry", help="registry YAML: one Institution dashboard per institution, by floor"
    ),
]


def _registry(path: Path | None) -> RegistryDocument | None:
    if path is None:
        return None
    from eldercare.registry_apply import RegistryError, load_registry_file

    try:
        return load_registry_file(path)
    except (RegistryError, OSError) as exc:
        fail(f"registry {path}: {exc}", 2)


@app.command("build")
def build_cmd(
    out: Annotated[Path, typer.Option("--out", help="output folder")] = Path("build/grafana"),
    registry: RegistryOption = None,
    dashboards_path: Annotated[
        str, typer.Option(help="where Grafana sees OUT/dashboards (provider path)")
    ] = "/var/lib/grafana/dashboards/eldercare",
) -> None:
    """Write dashboard JSON and Grafana provisioning files to OUT."""
    from dashboards.build import write_build

    result = write_build(out, _registry(registry), dashboards_path)
    for path in [*result.dashboards, result.datasources, result.providers]:
        typer.echo(str(path))


@app.command("push")
def push_cmd(
    grafana: Annotated[str, typer.Option("--grafana", help="Grafana URL, e.g. http://host:3000")],
    token: Annotated[
        str | None,
        typer.Option(envvar="GRAFANA_TOKEN", help="service account token (or user:pass in URL)"),
    ] = None,
    registry: RegistryOption = None,
    influx_url: Annotated[
        str | None, typer.Option(help="InfluxDB URL as Grafana reaches it (default: settings)")
    ] = None,
    influx_db: Annotated[str | None, typer.Option(help="database (default: settings)")] = None,
    influx_token: Annotated[str | None, typer.Option(help="token (default: settings)")] = None,
) -> None:
    """Upload the data source, folder and dashboards through Grafana's HTTP API."""
    from grafana_client.api import GrafanaApi
    from grafana_client.client import GrafanaException

    from dashboards.build import dashboard_docs
    from dashboards.push import push
    from eldercare.settings import load_settings

    settings = load_settings()
    api = GrafanaApi.from_url(grafana, credential=token)
    try:
        report = push(
            api,
            dashboard_docs(_registry(registry)),
            influx_url=influx_url or settings.influx_url,
            influx_db=influx_db or settings.influx_db,
            influx_token=influx_token or settings.influx_token or "",
        )
    except (GrafanaException, OSError) as exc:
        fail(f"Grafana at {grafana}: {exc}")
    typer.echo(f"data source {report.datasource}; folder {report.folder}")
    for uid in report.dashboards:
        typer.echo(f"dashboard {uid}")


@app.command("list")
def list_cmd(registry: RegistryOption = None) -> None:
    """Print every panel and the InfluxQL it runs (Markdown), dashboard by dashboard."""
    from dashboards.build import dashboard_docs
    from dashboards.check import panel_queries, variable_queries

    for doc in dashboard_docs(_registry(registry)):
        typer.echo(f"\n## {doc['title']} (`{doc['uid']}`)\n")
        for ref in [*variable_queries(doc), *panel_queries(doc)]:
            typer.echo(f"- **{ref.panel}** [{ref.ref_id}]: `{ref.query}`")


@app.command("check")
def check_cmd(
    hours: Annotated[float, typer.Option(min=0.01, help="time range: the last HOURS")] = 24.0,
    var: Annotated[
        list[str] | None, typer.Option("--var", help="NAME=VALUE template variable")
    ] = None,
    registry: RegistryOption = None,
) -> None:
    """Run every panel's query against the configured InfluxDB; list rows per query.
    Exits 1 if a query fails or a panel returns no rows."""
    from dashboards.build import dashboard_docs
    from dashboards.check import TimeRange, check_dashboard
    from eldercare.influx import InfluxClient
    from eldercare.settings import load_settings

    settings = load_settings()
    bindings = dict(v.split("=", 1) for v in var or [] if "=" in v)
    end_ms = int(time.time() * 1000)
    span = TimeRange(end_ms - int(hours * 3_600_000), end_ms, "5m")

    async def run() -> bool:
        ok = True
        async with InfluxClient.from_settings(settings) as client:
            for doc in dashboard_docs(_registry(registry)):
                results = await check_dashboard(client, settings.influx_db, doc, span, bindings)
                rows_by_panel: dict[str, int] = {}
                for r in results:
                    key = r.ref.panel
                    rows_by_panel[key] = rows_by_panel.get(key, 0) + r.rows
                    mark = "ERROR " + r.error if r.error else f"{r.rows} rows"
                    typer.echo(f"{r.ref.dashboard} | {key} | {r.ref.ref_id}: {mark}")
                    ok = ok and r.error is None
                ok = ok and all(n > 0 for n in rows_by_panel.values())
        return ok

    if not asyncio.run(run()):
        raise typer.Exit(1)
