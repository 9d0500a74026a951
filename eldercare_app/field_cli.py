"""`eldercare field ...`: responders, visit categories, coverage, and the simulated
field agents of `make demo`.

    eldercare field responders add --username wang --name 王强 --kind grid_worker \\
        --area 滨州市/滨城区/市中街道 --phone 135... --on-duty --password-stdin
    eldercare field responders list
    eldercare field categories set dementia --period week --flag dementia --name-zh 认知障碍老人
    eldercare field coverage --month 2026-12 [--depth 3] [--csv FILE]
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from eldercare.cli_errors import fail
from eldercare.db import create_engine, session_factory
from eldercare.logs import configure_logging
from eldercare.settings import load_settings
from field_service.models import init_field_store
from field_service.responders import ResponderKind, list_responders, upsert_responder
from field_service.visit_store import Sessions, list_visits, put_category, visit_categories
from field_service.visits import VisitCategory, VisitPeriod

app = typer.Typer(help="Field service: responders, visits, coverage.", no_args_is_help=True)
responders_app = typer.Typer(help="People who go to the door.", no_args_is_help=True)
categories_app = typer.Typer(help="Who must be visited how often.", no_args_is_help=True)
app.add_typer(responders_app, name="responders")
app.add_typer(categories_app, name="categories")
T = TypeVar("T")


def _with_sessions(fn: Callable[[Sessions], Awaitable[T]], with_accounts: bool = False) -> T:
    configure_logging("WARNING")

    async def main() -> T:
        engine = create_engine(load_settings().database_url)
        try:
            await init_field_store(engine)
            sessions = session_factory(engine)
            if with_accounts:
                from gateway.app import init_gateway_store

                await init_gateway_store(sessions)
            return await fn(sessions)
        finally:
            await engine.dispose()

    return asyncio.run(main())


@responders_app.command("add")
def add_responder(
    username: Annotated[str, typer.Option(help="account name to sign in with")],
    name: Annotated[str, typer.Option(help="display name")],
    kind: Annotated[ResponderKind, typer.Option(help="community_worker, grid_worker, ...")],
    area: Annotated[str, typer.Option(help="service area: an organisation path")],
    phone: Annotated[str | None, typer.Option()] = None,
    on_duty: Annotated[bool, typer.Option("--on-duty/--off-duty")] = False,
    password_stdin: Annotated[bool, typer.Option("--password-stdin")] = False,
    notify: Annotated[
        list[str] | None,
        typer.Option(help="Apprise URL new orders are sent to (repeatable); absent: kept"),
    ] = None,
) -> None:
    """Create (or update) a responder: an account of role responder scoped to the area,
    and the responder record. The password is read from stdin with --password-stdin."""
    from gateway.users import AccountError, Role, create_user

    async def work(sessions: Sessions) -> str:
        created = "updated"
        if password_stdin:
            password = sys.stdin.readline().rstrip("\n")
            try:
                await create_user(
                    sessions, username=username, role=Role.RESPONDER, password=password,
                    now=time.time(), scope=area, display_name=name,
                )  # fmt: skip
                created = "created"
            except AccountError as exc:
                if "exists already" not in str(exc):
                    fail(str(exc))
        try:
            await upsert_responder(
                sessions, username=username, name=name, kind=kind, area=area, phone=phone,
                on_duty=on_duty, now=time.time(), notify=notify,
            )  # fmt: skip
        except ValueError as exc:
            fail(str(exc))
        return created

    typer.echo(f"responder {username} {_with_sessions(work, with_accounts=True)}")


@responders_app.command("list")
def list_all() -> None:
    for r in _with_sessions(list_responders):
        duty = "on duty" if r.on_duty else "off duty"
        typer.echo(f"{r.username:<20}{r.name:<8}{r.kind.value:<18}{duty:<10}{'/'.join(r.area)}")


@categories_app.command("set")
def set_category(
    category_id: Annotated[str, typer.Argument(help="stable id, e.g. special_hardship")],
    period: Annotated[VisitPeriod, typer.Option(help="week or month")],
    organisation: Annotated[str, typer.Option(help="path prefix; empty = everywhere")] = "",
    flag: Annotated[str | None, typer.Option(help="residents carrying this flag")] = None,
    min_age: Annotated[int | None, typer.Option(help="and at least this old")] = None,
    name_zh: Annotated[str, typer.Option()] = "",
    name_en: Annotated[str, typer.Option()] = "",
) -> None:
    """Set a visit category (once any is set, the built-in defaults no longer apply)."""
    org = tuple(p for p in organisation.strip("/").split("/") if p)
    category = VisitCategory(category_id, org, period, flag, min_age, name_zh, name_en)

    async def work(sessions: Sessions) -> None:
        await put_category(sessions, category, time.time())

    _with_sessions(work)
    typer.echo(f"visit category {category_id} set")


@app.command("coverage")
def coverage_cmd(
    month: Annotated[str, typer.Option(help="YYYY-MM")],
    depth: Annotated[int | None, typer.Option(help="organisation levels to group by")] = None,
    csv_out: Annotated[Path | None, typer.Option("--csv", help="also write the CSV return")] = None,
) -> None:
    """Visit coverage per organisation unit for a month, from the registry and the visits."""
    from eldercare import registry_store
    from field_service.coverage import CoverageRow, coverage, parse_month, to_csv

    try:
        parse_month(month)
    except ValueError as exc:
        fail(str(exc))

    async def work(sessions: Sessions) -> list[CoverageRow]:
        index = await registry_store.load_index(sessions)
        visits = await list_visits(sessions)
        categories = await visit_categories(sessions)
        marks = [v.mark for v in visits]
        return coverage(index.document.sites, categories, marks, month, time.time(), depth)

    rows = _with_sessions(work)
    typer.echo(f"{'unit':<36}{'needed':>8}{'visited':>9}{'overdue':>9}{'due':>6}{'rate':>9}")
    for r in rows:
        rate = "-" if r.rate is None else f"{100 * r.rate:.1f}%"
        typer.echo(
            f"{r.unit or 'total':<36}{r.needed:>8}{r.visited:>9}{r.overdue:>9}{r.due:>6}{rate:>9}"
        )
    if csv_out is not None:
        csv_out.write_text(to_csv(rows), encoding="utf-8")
        typer.echo(f"written {csv_out}")


@app.command("agents")
def agents(
    base: Annotated[str, typer.Option(help="the gateway's base URL")],
    accounts: Annotated[Path, typer.Option(help="JSON of the simulated people's accounts")],
    registry: Annotated[Path, typer.Option(help="registry YAML (for the homes' coordinates)")],
    truth: Annotated[Path, typer.Option(help="ground-truth JSONL to append to")],
    tick_s: Annotated[float, typer.Option(help="seconds between rounds")] = 5.0,
    seed: Annotated[int, typer.Option()] = 7,
) -> None:
    """Run the simulated responders, families and operator stand-in (device_sim.field_agents)
    against a running gateway, in real time, until interrupted."""
    import json
    import random

    import httpx
    import yaml

    from device_sim.field_agents import (
        FamilyAgent,
        FieldAgents,
        OperatorAgent,
        ResponderAgent,
        Truth,
        login,
    )

    configure_logging("INFO")
    people = json.loads(accounts.read_text(encoding="utf-8"))
    sites = {s["id"]: s for s in (yaml.safe_load(registry.read_text()) or {}).get("sites", [])}
    truth.parent.mkdir(parents=True, exist_ok=True)
    record = Truth(truth)
    rng = random.Random(seed)

    async def main() -> None:
        clients: list[httpx.AsyncClient] = []

        async def client(user: str, password: str) -> httpx.AsyncClient:
            c = httpx.AsyncClient(base_url=base, timeout=20)
            clients.append(c)
            await login(c, user, password)
            return c

        try:
            responders = [
                ResponderAgent(
                    await client(r["username"], r["password"]),
                    r["username"],
                    (r["lat"], r["lon"]),
                    rng,
                    record,
                )
                for r in people["responders"]
            ]
            fam = people["family"]
            families = [
                FamilyAgent(
                    await client(fam["username"], fam["password"]),
                    fam["site_id"],
                    fam["resident_id"],
                    rng,
                    record,
                )
            ]
            op = people["operator"]
            operator = OperatorAgent(await client(op["username"], op["password"]), rng, record)
            world = FieldAgents(responders, families, operator, sites, time.time)
            while True:
                try:
                    await world.tick()
                except httpx.HTTPError as exc:  # the gateway restarting: try again next round
                    typer.echo(f"field agents: {exc}", err=True)
                await asyncio.sleep(tick_s)
        finally:
            for c in clients:
                await c.aclose()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


@app.command("check-truth")
def check_truth_cmd(
    truth: Annotated[Path, typer.Option(help="the field agents' ground-truth JSONL")],
    tick_s: Annotated[float, typer.Option(help="the agents' round, seconds")] = 5.0,
) -> None:
    """Evaluate: did the platform record every simulated arrival when it happened?"""
    import json

    from device_sim.field_agents import check_truth
    from field_service.orders import OrderStore

    records = [json.loads(line) for line in truth.read_text(encoding="utf-8").splitlines() if line]

    async def work(sessions: Sessions) -> dict[str, float | None]:
        orders = await OrderStore(sessions).list_orders(limit=1_000_000)
        return {o.id: o.arrived_at for o in orders}

    result = check_truth(records, _with_sessions(work), time.time(), tick_s)
    typer.echo(json.dumps(result, ensure_ascii=False))
    if result["missing"] or result["off"]:
        raise typer.Exit(1)
