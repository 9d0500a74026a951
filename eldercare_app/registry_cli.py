"""`eldercare registry ...`: apply a registry file, export it, look at what is stored."""

from __future__ import annotations

import asyncio
import unicodedata
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from eldercare.cli_errors import fail
from eldercare.db import create_engine, session_factory
from eldercare.registry_apply import RegistryError, apply_file, dump_registry
from eldercare.registry_store import (
    OrgUnit,
    Sessions,
    SiteSummary,
    init_store,
    list_org_units,
    load_document,
    registry_version,
    site_summaries,
)
from eldercare.settings import load_settings

app = typer.Typer(
    help="Sites, rooms, beds, residents, devices and contacts, applied from YAML.",
    no_args_is_help=True,
)

T = TypeVar("T")

DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="SQLAlchemy async URL; default: the settings' database_url",
        show_default=False,
    ),
]


def _run(database_url: str | None, work: Callable[[Sessions], Awaitable[T]]) -> T:
    """Open the store (creating the registry tables if missing), run `work`, close it."""

    url = database_url or load_settings().database_url

    async def main() -> T:
        engine = create_engine(url)
        try:
            await init_store(engine)
            return await work(session_factory(engine))
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except (OSError, SQLAlchemyError) as exc:
        shown = make_url(url).render_as_string(hide_password=True)
        fail(f"database {shown}: {exc}", 2)


@app.command("apply")
def apply_command(
    file: Annotated[Path, typer.Argument(help="registry YAML file", show_default=False)],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="show what would change; write nothing")
    ] = False,
    prune: Annotated[
        bool, typer.Option("--prune", help="also delete stored sites the file does not name")
    ] = False,
    database_url: DatabaseOption = None,
) -> None:
    """Make the store match FILE: create, update and delete exactly what differs."""
    from detectors.catalogue import registry_problems  # CLI wiring: checks detector overrides

    try:
        result = _run(
            database_url,
            lambda s: apply_file(
                s, file, prune=prune, dry_run=dry_run, extra_validators=[registry_problems]
            ),
        )
    except RegistryError as exc:
        fail(f"{exc}\nnothing was changed")
    typer.echo(f"{file}: {result.summary()}")
    if not dry_run:
        from eldercare_app.mqtt_cli import (
            refresh_local_acl,  # the broker's ACL follows the registry
        )

        if refresh_local_acl(database_url):
            typer.echo("local MQTT broker ACL updated")


@app.command("export")
def export_command(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="write to a file instead of stdout")
    ] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Print the stored registry as YAML (re-applying it changes nothing)."""

    async def read(sessions: Sessions) -> tuple[int, str]:
        return await registry_version(sessions), dump_registry(await load_document(sessions))

    version, text = _run(database_url, read)
    text = f"# eldercare registry export, version {version}\n{text}"
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output}")


@app.command("sites")
def sites_command(database_url: DatabaseOption = None) -> None:
    """A table of the stored sites with counts of rooms, beds, residents, devices, contacts."""
    summaries = _run(database_url, site_summaries)
    if not summaries:
        typer.echo("no sites (apply a registry file first)")
        return
    header = ["SITE", "KIND", "NAME", "ORGANISATION", "ROOMS", "BEDS", "RESID.", "DEVICES", "CONT."]
    rows = [
        [
            s.id,
            s.kind,
            s.name,
            s.organisation,
            str(s.rooms),
            str(s.beds),
            str(s.residents),
            str(s.devices),
            str(s.contacts),
        ]
        for s in summaries
    ]
    for line in _table(header, rows, numeric_from=4):
        typer.echo(line)


@app.command("show")
def show_command(database_url: DatabaseOption = None) -> None:
    """Totals, the organisation tree and the sites table."""

    async def read(sessions: Sessions) -> tuple[int, list[OrgUnit], list[SiteSummary]]:
        return (
            await registry_version(sessions),
            await list_org_units(sessions),
            await site_summaries(sessions),
        )

    version, units, summaries = _run(database_url, read)
    totals = {
        kind: sum(getattr(s, kind) for s in summaries)
        for kind in ("residents", "devices", "contacts", "rooms", "beds")
    }
    typer.echo(
        f"registry version {version}: {len(summaries)} sites, "
        + ", ".join(f"{n} {kind}" for kind, n in totals.items())
    )
    typer.echo("organisation units:")
    for unit in units:
        typer.echo(f"  {'  ' * (unit.depth - 1)}{unit.name}  ({unit.site_count} sites)")
    sites_command(database_url)


def _width(text: str) -> int:
    """Display width in a terminal: CJK characters take two columns."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _table(header: list[str], rows: list[list[str]], numeric_from: int) -> list[str]:
    widths = [max(_width(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def fmt(cells: list[str]) -> str:
        out = []
        for i, cell in enumerate(cells):
            pad = " " * (widths[i] - _width(cell))
            out.append(pad + cell if i >= numeric_from else cell + pad)
        return "  ".join(out).rstrip()

    return [fmt(header), *(fmt(r) for r in rows)]
