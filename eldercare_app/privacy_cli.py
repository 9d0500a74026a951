"""`eldercare privacy ...`: retention, a resident's export, erasure."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from eldercare.cli_errors import fail
from eldercare.db import create_engine, session_factory
from eldercare.influx import InfluxClient, InfluxError
from eldercare.registry_store import Sessions
from eldercare.settings import Settings, load_settings
from eldercare_app.privacy import (
    DEFAULT_RETENTION,
    PrivacyError,
    apply_retention,
    erase_resident,
    export_resident,
)

app = typer.Typer(
    help="Personal data: retention per data kind, a resident's export, erasure.",
    no_args_is_help=True,
)

T = TypeVar("T")

ResidentOption = Annotated[str, typer.Option("--resident", help="resident id")]
SiteOption = Annotated[
    str | None, typer.Option("--site", help="site id, when the resident id is not unique")
]


def _influx(settings: Settings) -> InfluxClient:
    return InfluxClient.from_settings(settings)


def _with_stores(work: Callable[[Sessions, InfluxClient, Settings], Awaitable[T]]) -> T:
    settings = load_settings()

    async def main() -> T:
        from eldercare_app.wiring import prepare_store

        engine = create_engine(settings.database_url)
        try:
            await prepare_store(engine)  # the relational store at the current schema
            async with _influx(settings) as influx:
                return await work(session_factory(engine), influx, settings)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except (PrivacyError, InfluxError) as exc:
        fail(str(exc))


@app.command("retention")
def retention_command(
    apply: Annotated[
        bool, typer.Option("--apply", help="set the policy and delete expired points")
    ] = False,
) -> None:
    """Show (or, with --apply, enforce) how long each kind of data is kept."""
    for rule in DEFAULT_RETENTION:
        names = ", ".join(rule.measurements) or "(all other measurements)"
        typer.echo(f"{rule.kind:<13} {rule.days:>5} days  {names}: {rule.description}")
    settings = load_settings()

    async def run() -> None:
        async with _influx(settings) as influx:
            report = await apply_retention(
                influx, settings.influx_db, time.time(), dry_run=not apply
            )
        typer.echo(("applied: " if apply else "would run: ") + report.policy_statement)
        verb = "deleted" if apply else "would delete"
        for measurement, n in sorted(report.deleted.items()):
            typer.echo(f"{verb} {n:>8} expired points of {measurement}")

    try:
        asyncio.run(run())
    except InfluxError as exc:
        fail(str(exc))


@app.command("export")
def export_command(
    resident: ResidentOption,
    out: Annotated[Path, typer.Option("--out", help="JSON file to write")],
    site: SiteOption = None,
    by: Annotated[str, typer.Option("--by", help="who asked (audited)")] = "cli",
) -> None:
    """Write everything held about a resident to a JSON file (audited)."""

    async def work(sessions: Sessions, influx: InfluxClient, settings: Settings) -> int:
        doc = await export_resident(
            sessions, influx, settings.influx_db, resident, site_id=site, actor=by
        )
        out.write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
        return sum(len(v) for v in doc["readings"].values())

    points = _with_stores(work)
    typer.echo(f"wrote {out} ({points} readings)")


@app.command("erase")
def erase_command(
    resident: ResidentOption,
    by: Annotated[str, typer.Option("--by", help="who is erasing (recorded in the audit)")],
    site: SiteOption = None,
    yes: Annotated[bool, typer.Option("--yes", help="do not ask for confirmation")] = False,
) -> None:
    """Delete a resident's readings and blank their personal data (cannot be undone)."""
    if not yes:
        typer.confirm(f"Erase resident {resident}'s readings and personal data?", abort=True)

    async def work(
        sessions: Sessions, influx: InfluxClient, settings: Settings
    ) -> dict[str, object]:
        report = await erase_resident(
            sessions, influx, settings.influx_db, resident, by, site_id=site
        )
        return report.to_json()

    report = _with_stores(work)
    typer.echo(json.dumps(report, ensure_ascii=False, indent=1))
    typer.secho(
        "remove the resident's details from your registry YAML too: re-applying a file "
        "that still names them brings them back",
        fg="yellow",
    )
