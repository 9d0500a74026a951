"""`eldercare alerts ...`: look at and act on alerts from the command line.

    eldercare alerts list --json [--status open] [--site S] [--kind fall] [--since ISO]
    eldercare alerts ack ID [--by NAME]
    eldercare alerts resolve ID --outcome resident_fine --note "..." [--by NAME]
    eldercare alerts route --site S --kind fall [--resident R] [--json]
    eldercare alerts sla --since ISO [--until ISO] --json

The store is `ELDERCARE_DATABASE_URL`; the registry is the relational store's
(or `--registry FILE.yaml`); policies are the shipped defaults plus
`--policies DIR` site overrides. Times given without a UTC offset are read as UTC.
"""

from __future__ import annotations

import asyncio
import getpass
import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
import yaml

from alerts.events import OUTBOX_DIR, AlertEventRecorder, InfluxAlertEventRecorder
from alerts.policy import PolicyError, PolicySet, load_inhibit_rules
from alerts.route import format_route, plan_route
from alerts.service import HUMAN_OUTCOMES, AlertService
from alerts.sla import SLA_SECTIONS, SlaSection, response_figures
from alerts.store import AlertFilter, AlertNotFound, AlertStateError, AlertStore, init_store
from alerts.terms import kind_term, severity_term, status_term
from eldercare.cli_errors import fail
from eldercare.clock import WallClock
from eldercare.db import create_engine
from eldercare.domain import AlertKind
from eldercare.logs import configure_logging
from eldercare.registry_index import RegistryIndex
from eldercare.registry_model import RegistryDocument
from eldercare.settings import Settings, load_settings

app = typer.Typer(
    help="Alerts: list, acknowledge, resolve, routing, response figures.", no_args_is_help=True
)

T = TypeVar("T")

PoliciesOpt = Annotated[
    Path | None, typer.Option("--policies", help="directory of <site id>.yaml policy overrides")
]
RegistryOpt = Annotated[
    Path | None, typer.Option("--registry", help="registry YAML file (default: the store's)")
]


def parse_time(value: str) -> float:
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        fail(f"not an ISO 8601 time: {value!r}")
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def _read_registry(registry: Path) -> RegistryIndex:
    try:
        doc = RegistryDocument.model_validate(yaml.safe_load(registry.read_text("utf-8")))
    except (OSError, ValueError, yaml.YAMLError) as exc:
        fail(f"{registry}: {exc}")
    return RegistryIndex(doc)


async def _store_index(engine: Any) -> RegistryIndex:
    from eldercare import registry_store
    from eldercare.db import session_factory

    await registry_store.init_store(engine)
    return await registry_store.load_index(session_factory(engine))


def _run(
    work: Callable[[Settings, AlertService, RegistryIndex], Awaitable[T]],
    registry: Path | None = None,
    policies_dir: Path | None = None,
    with_events: bool = False,
) -> T:
    configure_logging("WARNING")
    settings = load_settings()
    try:
        policies = PolicySet.load(overrides_dir=policies_dir)
    except PolicyError as exc:
        fail(str(exc))

    file_index = _read_registry(registry) if registry is not None else None

    async def main() -> T:
        engine = create_engine(settings.database_url)
        client = None
        recorder: AlertEventRecorder | None = None
        try:
            await init_store(engine)
            index = file_index if file_index is not None else await _store_index(engine)
            if with_events:
                from eldercare.influx import InfluxClient

                client = InfluxClient.from_settings(settings)
                recorder = InfluxAlertEventRecorder(
                    client,
                    settings.influx_db,
                    lambda s: index.sites[s].organisation if s in index.sites else None,
                    outbox=settings.run_dir / OUTBOX_DIR,
                )
            service = AlertService(
                AlertStore(engine),
                WallClock(),
                lambda: index,
                public_url=settings.public_url,
                policies=policies,
                recorder=recorder,
            )
            return await work(settings, service, index)
        finally:
            if isinstance(recorder, InfluxAlertEventRecorder):
                await recorder.flush()  # the service only submits its events
                # InfluxDB away: the platform's recorder writes them later.
                await recorder.hand_over()
            if client is not None:
                await client.aclose()
            await engine.dispose()

    try:
        return asyncio.run(main())
    except (AlertNotFound, AlertStateError, ValueError) as exc:
        fail(str(exc))


def _line(a: dict[str, Any]) -> str:
    return (
        f"#{a['id']:<6} {severity_term(a['severity'], 'en'):<8} {a['kind']:<18} "
        f"{status_term(a['status'], 'en'):<12} {a['condition']:<7} {a['raised_at']}  "
        f"{a['site']}/{a['resident'] or '-'}  {kind_term(a['kind'], 'zh-CN')}"
    )


@app.command("list")
def list_alerts(
    as_json: Annotated[bool, typer.Option("--json", help="JSON with each alert's history")] = False,
    status: Annotated[list[str] | None, typer.Option(help="open, acknowledged, resolved")] = None,
    site: Annotated[list[str] | None, typer.Option(help="site id (repeatable)")] = None,
    kind: Annotated[list[str] | None, typer.Option(help="alert kind (repeatable)")] = None,
    since: Annotated[str | None, typer.Option(help="raised at or after (ISO 8601)")] = None,
    limit: Annotated[int, typer.Option(help="at most this many, newest first")] = 200,
) -> None:
    """List alerts, newest first."""
    for k in kind or []:
        if k not in AlertKind.__members__.values():
            fail(f"unknown kind {k!r}")
    f = AlertFilter(
        status=status or None,
        sites=site or None,
        kinds=kind or None,
        since=parse_time(since) if since else None,
        limit=limit,
    )

    async def work(_: Settings, service: AlertService, __: RegistryIndex) -> list[dict[str, Any]]:
        out = []
        for alert in await service.list_alerts(f):
            detail = await service.get_alert(alert.id)
            assert detail is not None
            out.append(detail.alert.to_dict(detail.history))
        return out

    docs = _run(work)
    if as_json:
        typer.echo(json.dumps(docs, ensure_ascii=False, indent=2))
        return
    if not docs:
        typer.echo("no alerts")
    for d in docs:
        typer.echo(_line(d))


def _who(by: str | None) -> str:
    if by:
        return by
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


@app.command("ack")
def ack(
    alert_id: Annotated[int, typer.Argument(help="alert id")],
    by: Annotated[str | None, typer.Option(help="who acknowledges (default: cli:<user>)")] = None,
) -> None:
    """Acknowledge an alert: stops its escalation."""

    async def work(_: Settings, service: AlertService, __: RegistryIndex) -> dict[str, Any]:
        return (await service.acknowledge(alert_id, _who(by))).to_dict()

    doc = _run(work, with_events=True)
    typer.echo(
        f"#{alert_id} {doc['status']} by {doc['acknowledged_by']} at {doc['acknowledged_at']}"
    )


@app.command("resolve")
def resolve(
    alert_id: Annotated[int, typer.Argument(help="alert id")],
    outcome: Annotated[
        str, typer.Option(help="one of: " + ", ".join(o.value for o in HUMAN_OUTCOMES))
    ],
    note: Annotated[str | None, typer.Option(help="what happened")] = None,
    by: Annotated[str | None, typer.Option(help="who resolves (default: cli:<user>)")] = None,
) -> None:
    """Resolve an alert with an outcome code and a note (queues the family's follow-up)."""

    async def work(_: Settings, service: AlertService, __: RegistryIndex) -> dict[str, Any]:
        return (await service.resolve(alert_id, outcome, note, _who(by))).to_dict()

    doc = _run(work, with_events=True)
    typer.echo(
        f"#{alert_id} resolved ({doc['outcome']}) by {doc['resolved_by']} at {doc['resolved_at']}"
    )


@app.command("route")
def route(
    site: Annotated[str, typer.Option(help="site id")],
    kind: Annotated[str, typer.Option(help="alert kind, e.g. fall")],
    resident: Annotated[str | None, typer.Option(help="resident id")] = None,
    registry: RegistryOpt = None,
    policies: PoliciesOpt = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Show who would be notified when, for an alert of KIND at SITE."""
    try:
        alert_kind = AlertKind(kind)
    except ValueError:
        fail(f"unknown kind {kind!r}; one of: {', '.join(AlertKind)}")

    async def work(_: Settings, service: AlertService, index: RegistryIndex) -> Any:
        return plan_route(service.policies, load_inhibit_rules(), index, site, alert_kind, resident)

    plan = _run(work, registry=registry, policies_dir=policies)
    if as_json:
        typer.echo(json.dumps(plan.to_dict(), ensure_ascii=False, indent=2))
    else:
        typer.echo(format_route(plan))


@app.command("sla")
def sla(
    ctx: typer.Context,
    since: Annotated[str, typer.Option(help="alerts raised at or after (ISO 8601)")],
    until: Annotated[str | None, typer.Option(help="and before (ISO 8601)")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Response figures: share acknowledged within 60 s / 180 s, p50/p95 of
    acknowledge and resolve times, counts; overall and per severity. Then the sections
    the platform adds (the field service: time to dispatch, accept and arrive (p50/p95),
    share within the promise, open and overdue work orders)."""
    sections: Sequence[SlaSection] = ctx.meta.get(SLA_SECTIONS, ())
    f = AlertFilter(
        since=parse_time(since), until=parse_time(until) if until else None, limit=10_000_000
    )

    async def work(settings: Settings, service: AlertService, __: RegistryIndex) -> dict[str, Any]:
        doc = response_figures(await service.list_alerts(f))
        for section in sections:
            doc[section.name] = await section.figures(settings, f.since, f.until)
        return doc

    doc = _run(work)
    doc["since"] = since
    doc["until"] = until
    if as_json:
        typer.echo(json.dumps(doc, indent=2))
        return
    rows = [("overall", doc["overall"]), *doc["by_severity"].items()]
    typer.echo(
        f"{'':<10}{'count':>7}{'acked':>7}{'<=60s':>8}{'<=180s':>8}"
        f"{'ack p50':>9}{'ack p95':>9}{'res p50':>9}{'res p95':>9}"
    )
    for name, r in rows:
        typer.echo(
            f"{name:<10}{r['count']:>7}{r['acknowledged']:>7}"
            f"{_pct(r['ack_within_60s']):>8}{_pct(r['ack_within_180s']):>8}"
            f"{_sec(r['ack_p50_s']):>9}{_sec(r['ack_p95_s']):>9}"
            f"{_sec(r['resolve_p50_s']):>9}{_sec(r['resolve_p95_s']):>9}"
        )
    for section in sections:
        typer.echo("")
        for line in section.lines(doc[section.name]):
            typer.echo(line)


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:.1f}%"


def _sec(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f}s"
