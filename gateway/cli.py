"""`eldercare users`: create and list gateway accounts."""

from __future__ import annotations

import asyncio
import getpass
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer

from eldercare.cli_errors import fail
from eldercare.db import create_engine, session_factory
from eldercare.settings import load_settings
from gateway import users
from gateway.users import AccountError, Role, Sessions, resident_ref

T = TypeVar("T")

users_app = typer.Typer(
    help="Accounts of operators, supervisors, admins and families.", no_args_is_help=True
)


async def _with_sessions(fn: Callable[[Sessions], Awaitable[T]]) -> T:
    from gateway.app import init_gateway_store

    engine = create_engine(load_settings().database_url)
    try:
        sessions = session_factory(engine)
        await init_gateway_store(sessions)
        return await fn(sessions)
    finally:
        await engine.dispose()


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        raise AccountError("the passwords differ")
    return first


@users_app.command("add")
def add(
    username: Annotated[str, typer.Option("--username", help="login name")],
    role: Annotated[Role, typer.Option("--role", help="operator, supervisor, admin or family")],
    scope: Annotated[
        str | None, typer.Option("--scope", help="organisation path, e.g. 滨州市/滨城区")
    ] = None,
    residents: Annotated[
        str | None,
        typer.Option(
            "--residents",
            help="family: comma-separated site_id/resident_id (bare ids with --contact)",
        ),
    ] = None,
    contact: Annotated[
        str | None,
        typer.Option(
            "--contact",
            help="family: the registry contact this person is, site_id/contact_id "
            "(links portal preferences to notifications; residents default to the contact's)",
        ),
    ] = None,
    contact_phone: Annotated[
        str | None,
        typer.Option("--contact-phone", help="family: find the registry contact by phone"),
    ] = None,
    display_name: Annotated[str, typer.Option("--name", help="name shown in the console")] = "",
    language: Annotated[str | None, typer.Option("--language", help="zh-CN or en")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="read the password from standard input")
    ] = False,
) -> None:
    """Create an account (the password is asked for, or read with --password-stdin)."""
    resident_ids = [r.strip() for r in (residents or "").split(",") if r.strip()]
    linking = contact is not None or contact_phone is not None
    try:
        if linking and role is not Role.FAMILY:
            raise AccountError("--contact/--contact-phone link family accounts only")
        password = _read_password(password_stdin)

        async def create(s: Sessions) -> tuple[users.Account, str]:
            if linking:
                from eldercare import registry_store
                from gateway.family_link import create_family_account

                try:
                    index = await registry_store.load_index(s)
                except Exception as exc:  # no registry tables yet
                    raise AccountError("no registry yet: run 'eldercare registry apply'") from exc
                account, linked = await create_family_account(
                    s,
                    index,
                    username=username,
                    password=password,
                    now=time.time(),
                    contact=contact,
                    contact_phone=contact_phone,
                    residents=resident_ids,
                    display_name=display_name,
                    language=language,
                )
                return account, f" linked to contact {linked.ref}"
            account = await users.create_user(
                s,
                username=username,
                role=role,
                password=password,
                now=time.time(),
                scope=scope,
                residents=resident_ids,
                display_name=display_name,
                language=language or "zh-CN",
            )
            return account, ""

        account, note = asyncio.run(_with_sessions(create))
    except AccountError as exc:
        fail(str(exc), 2)
    typer.echo(f"created {account.role} {account.username}{note}")


@users_app.command("link")
def link(
    username: Annotated[str, typer.Option("--username", help="an existing family account")],
    contact: Annotated[
        str | None, typer.Option("--contact", help="site_id/contact_id in the registry")
    ] = None,
    contact_phone: Annotated[
        str | None, typer.Option("--contact-phone", help="find the contact by phone")
    ] = None,
) -> None:
    """Link an existing family account to the registry contact she is."""
    from eldercare import registry_store
    from gateway.family_link import find_contact, link_contact

    async def run(s: Sessions) -> str:
        account = next((a for a in await users.list_users(s) if a.username == username), None)
        if account is None or account.role is not Role.FAMILY:
            raise AccountError(f"no family account {username!r}")
        linked = find_contact(await registry_store.load_index(s), contact, contact_phone)
        stray = sorted(
            account.residents - {resident_ref(linked.site.id, r.id) for r in linked.site.residents}
        )
        if stray:
            raise AccountError(f"the account's residents {stray} do not live at {linked.site.id}")
        await link_contact(s, account.id, linked)
        return linked.ref

    try:
        ref = asyncio.run(_with_sessions(run))
    except AccountError as exc:
        fail(str(exc), 2)
    typer.echo(f"linked {username} to contact {ref}")


@users_app.command("passwd")
def passwd(
    username: Annotated[str, typer.Option("--username", help="the account")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="read the password from standard input")
    ] = False,
) -> None:
    """Set a new password and sign the account out everywhere (every token revoked)."""
    from gateway.auth import revoke_all

    try:
        password = _read_password(password_stdin)

        async def run(s: Sessions) -> int:
            account = await users.set_password(s, username, password)
            if account is None:
                raise AccountError(f"no account {username!r}")
            return await revoke_all(s, account.id, now=time.time())

        revoked = asyncio.run(_with_sessions(run))
    except AccountError as exc:
        fail(str(exc), 2)
    typer.echo(f"password of {username} changed; {revoked} session(s) and token(s) revoked")


@users_app.command("list")
def list_accounts() -> None:
    """List accounts: user name, role, scope or residents, active, linked contacts."""
    from gateway.family_link import linked_contacts

    async def run(s: Sessions) -> list[tuple[users.Account, list[str]]]:
        out = []
        for a in await users.list_users(s):
            links = await linked_contacts(s, a.id) if a.role is Role.FAMILY else []
            out.append((a, [f"{site}/{contact}" for site, contact in links]))
        return out

    for a, links in asyncio.run(_with_sessions(run)):
        where = a.scope_path or ",".join(sorted(a.residents)) or "-"
        state = "active" if a.active else "disabled"
        contact = f"  contact {','.join(links)}" if links else ""
        typer.echo(f"{a.username:<20} {a.role.value:<10} {state:<8} {where}{contact}")
