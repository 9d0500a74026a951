"""The `eldercare` command.

This module and `eldercare_app.wiring` are the only places in the kernel that
reach into the other packages, and only lazily: they are the wiring.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from eldercare.cli_errors import fail
from eldercare.logs import configure_logging
from eldercare.settings import Settings, load_settings
from eldercare_app.cluster_role_names import ROLES
from eldercare_app.local_services import LocalServices, ServiceError

app = typer.Typer(
    name="eldercare",
    help="Round-the-clock safety monitoring for older people at home and in institutions.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

services_app = typer.Typer(
    help="Local Mosquitto, InfluxDB and NATS run by the project.", no_args_is_help=True
)
app.add_typer(services_app, name="services")

# Sub-commands owned by the other packages: (name, "module:attribute").
# Each attribute is a typer.Typer. Keep this list the single place they are wired.
_SUBCOMMANDS: list[tuple[str, str]] = [
    ("eval", "evaluation.cli:app"),
    ("bench", "benchmarks.cli:app"),
    ("registry", "eldercare_app.registry_cli:app"),
    ("users", "gateway.cli:users_app"),
    ("alerts", "alerts.cli:app"),
    ("field", "eldercare_app.field_cli:app"),
    ("sim", "device_sim.cli:app"),
    ("ingest", "ingest.cli:ingest_app"),
    ("devices", "ingest.cli:devices_app"),
    ("dashboards", "dashboards.cli:app"),
    ("mqtt", "eldercare_app.mqtt_cli:app"),
    ("privacy", "eldercare_app.privacy_cli:app"),
]


_SUBCOMMANDS_REGISTERED: set[str] = set()  # register once per process (tests call it again)


def _run_dir() -> Path:
    return load_settings().run_dir


@services_app.command("up")
def services_up(
    cluster: Annotated[
        bool, typer.Option("--cluster", help="three NATS nodes in one JetStream cluster")
    ] = False,
) -> None:
    """Start the local broker, InfluxDB and NATS (idempotent); print their addresses.
    NATS is left out when ELDERCARE_NATS_URL names servers of a deployment's own."""
    configure_logging("WARNING")
    try:
        settings = load_settings()
        own_nats = "nats_url" not in Settings().model_fields_set
        services = LocalServices(
            settings.run_dir, mqtt_tls=settings.mqtt_tls, nats=own_nats, cluster=cluster
        )
        statuses = services.up()
    except ServiceError as exc:
        fail(str(exc))
    for s in statuses:
        typer.echo(f"{s.name:<10} pid={s.pid} port={s.port} healthy={s.healthy}")


@services_app.command("down")
def services_down() -> None:
    """Stop the local services."""
    LocalServices(_run_dir()).down()
    typer.echo("stopped")


@services_app.command("status")
def services_status(
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Show whether the local services run, and the platform's ingest counters if it runs."""
    statuses = LocalServices(_run_dir()).status()
    metrics = _platform_metrics()
    if as_json:
        doc = {"services": [vars(s) for s in statuses], "metrics": metrics}
        typer.echo(json.dumps(doc, indent=2))
        return
    for s in statuses:
        state = "healthy" if s.healthy else ("running, unhealthy" if s.running else "stopped")
        typer.echo(f"{s.name:<10} {state:<18} pid={s.pid} port={s.port}")
    if metrics:
        typer.echo("platform counters:")
        for k, v in sorted(metrics.items()):
            typer.echo(f"  {k} {v}")
    else:
        typer.echo("platform: not running (no /metrics answer)")


def _platform_metrics() -> dict[str, float]:
    """Counters scraped from the running platform's /metrics, or {} if none runs."""
    import httpx

    from gateway.metrics_access import metrics_token, scrape_headers

    settings = load_settings()
    try:
        resp = httpx.get(
            f"http://{settings.http_host}:{settings.http_port}/metrics",
            headers=scrape_headers(metrics_token(settings)),
            timeout=1.0,
        )
    except httpx.HTTPError:
        return {}
    out: dict[str, float] = {}
    for line in resp.text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        name, _, value = line.rpartition(" ")
        if name.startswith("eldercare_"):
            try:
                out[name] = float(value)
            except ValueError:
                continue
    return out


@services_app.command("env")
def services_env() -> None:
    """Print KEY=VALUE lines for the local services (`set -a; . <(eldercare services env)`)."""
    for k, v in LocalServices(_run_dir()).env().items():
        typer.echo(f"{k}={v}")


@app.command("run")
def run(
    port: Annotated[int | None, typer.Option("--port", help="HTTP port of the gateway")] = None,
    clock_mode: Annotated[
        str | None, typer.Option("--clock", help="wall (live) or event (replay, simulation)")
    ] = None,
    role: Annotated[
        str | None,
        typer.Option(
            "--role",
            help="run one role of a cluster on NATS JetStream: ingest, detectors, pipeline"
            " or gateway (docs/cluster.md); without it, everything in this process",
        ),
    ] = None,
) -> None:
    """Run the platform in one process: ingest, detectors, alerts and the gateway."""
    import asyncio

    if role is not None and role not in ROLES:
        # Before settings, logging and imports: nothing else is set up, nothing else printed.
        fail(f"--role must be one of {', '.join(ROLES)}", 2)
    overrides: dict[str, object] = {}
    if port is not None:
        overrides["http_port"] = port
    if clock_mode is not None:
        overrides["clock_mode"] = clock_mode
    from eldercare_app.run_lease import LeaseHeld

    settings = load_settings(**overrides)
    configure_logging(settings.log_level, settings.log_format)
    if role is None:
        from eldercare_app.wiring import run_until_signalled

        try:
            asyncio.run(run_until_signalled(settings))
        except LeaseHeld as exc:
            fail(str(exc), 2)
        return
    from cluster.jetstream import ClusterUnavailable
    from eldercare_app.cluster_roles import run_role_until_signalled

    try:
        asyncio.run(run_role_until_signalled(role, settings))
    except ClusterUnavailable as exc:
        fail(str(exc), 1)
    except LeaseHeld as exc:
        fail(str(exc), 2)


db_app = typer.Typer(help="The relational store (SQLite or PostgreSQL).", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the store named by ELDERCARE_DATABASE_URL to the current schema."""
    import asyncio

    from eldercare.db import create_engine
    from eldercare_app.wiring import prepare_store

    settings = load_settings()
    configure_logging("WARNING")

    async def _go() -> None:
        engine = create_engine(settings.database_url)
        try:
            await prepare_store(engine)
        finally:
            await engine.dispose()

    asyncio.run(_go())
    typer.echo("store is at the current schema")


# Commands a stage's group shows but whose code lives in a leaf package the stage must not
# import: (group, command, "module:function").
_LEAF_COMMANDS: list[tuple[str, str, str]] = [
    ("alerts", "bench", "benchmarks.alert_delivery:bench_command"),
]


def _attribute(target: str) -> Any:
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def _register_subcommands(only: str | None = None) -> None:
    """Add the stages' command groups to `app`: only the group `only` when it names one
    (`main` passes the one invoked: importing every group's package took each `eldercare`
    command about a second), else all of them."""
    names = [n for n, _ in _SUBCOMMANDS]
    wanted = [only] if only in names else names
    for name, target in _SUBCOMMANDS:
        if name not in wanted or name in _SUBCOMMANDS_REGISTERED:
            continue
        group: typer.Typer = _attribute(target)
        for leaf_group, command, leaf in _LEAF_COMMANDS:
            if leaf_group == name:
                group.command(command)(_attribute(leaf))
        app.add_typer(group, name=name)
        _SUBCOMMANDS_REGISTERED.add(name)


def _register_for(argv: list[str]) -> None:
    """Register what a command line needs: the group it names first, none for a command
    of this module's own (`run`, `services`, `db`), every group for `--help`, no
    arguments or a name not known (so the help and the error list them all)."""
    first = next(iter(argv), "--help")
    own = {
        c.name or c.callback.__name__.replace("_", "-")
        for c in app.registered_commands
        if c.callback
    }
    own |= {g.name for g in app.registered_groups if g.name}
    if first in dict(_SUBCOMMANDS):
        _register_subcommands(first)
    elif first not in own:
        _register_subcommands()


@app.callback()
def _inject(ctx: typer.Context) -> None:
    """Hand the stages' commands what only the composition root knows."""
    from alerts.sla import SLA_SECTIONS
    from device_sim.accounts import ISSUED_DIR_FINDER
    from eldercare_app.local_services import local_issued_dir
    from field_service.figures import SLA_SECTION

    ctx.meta[ISSUED_DIR_FINDER] = local_issued_dir
    ctx.meta[SLA_SECTIONS] = [SLA_SECTION]


def main() -> None:
    import sys

    from pydantic import ValidationError

    _register_for(sys.argv[1:])
    try:
        app()
    except ValidationError as exc:
        if exc.title != "Settings":
            raise
        # A bad ELDERCARE_* variable or eldercare.toml entry: say which, not a traceback.
        problems = []
        for err in exc.errors():
            name = "_".join(str(part) for part in err["loc"]).upper()
            problems.append(
                f"configuration error: ELDERCARE_{name}: {err['msg']} (got {err.get('input')!r})"
            )
        fail("\n".join(problems), 2)


if __name__ == "__main__":
    main()
