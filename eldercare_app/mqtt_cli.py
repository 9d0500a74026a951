"""`eldercare mqtt ...`: broker accounts and the ACL, made from the registry.

By default the files are the local Mosquitto's (`<run_dir>/services/mosquitto/`),
which is told to reload them; `--password-file`/`--acl-file`/`--platform-secret`
point at a deployment's files instead (e.g. a volume mounted into the broker
container, reloaded with `docker compose kill -s HUP mosquitto`).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from eldercare.cli_errors import fail
from eldercare.db import create_engine, session_factory
from eldercare.registry_apply import RegistryError, load_registry_file
from eldercare.registry_model import RegistryDocument
from eldercare.registry_store import init_store, load_document
from eldercare.settings import load_settings, read_env_file
from eldercare_app.local_services import LocalServices
from eldercare_app.mqtt_accounts import (
    PLATFORM_USER,
    BrokerFiles,
    MqttAuthError,
    issue_credentials,
    reload_broker,
    write_acl,
)

app = typer.Typer(
    help="MQTT broker accounts (one per site, one for the platform) and their ACL.",
    no_args_is_help=True,
)

RegistryOption = Annotated[
    Path | None,
    typer.Option("--registry", help="read sites from this YAML file instead of the store"),
]
DatabaseOption = Annotated[
    str | None, typer.Option("--database-url", help="registry store; default: settings")
]
PasswordFileOption = Annotated[
    Path | None, typer.Option("--password-file", help="Mosquitto password_file to maintain")
]
AclFileOption = Annotated[Path | None, typer.Option("--acl-file", help="Mosquitto acl_file")]
PlatformUserOption = Annotated[
    str, typer.Option("--platform-user", help="the platform's user name on this broker")
]
SecretOption = Annotated[
    Path | None,
    typer.Option("--platform-secret", help="file holding the platform's password (0600)"),
]


def _registry(registry: Path | None, database_url: str | None) -> RegistryDocument:
    if registry is not None:
        return load_registry_file(registry)
    url = database_url or load_settings().database_url

    async def read() -> RegistryDocument:
        engine = create_engine(url)
        try:
            await init_store(engine)
            return await load_document(session_factory(engine))
        finally:
            await engine.dispose()

    return asyncio.run(read())


def _files(
    password_file: Path | None, acl_file: Path | None, secret: Path | None
) -> tuple[BrokerFiles, bool]:
    """The files to maintain, and whether they are the local broker's."""
    local = LocalServices(load_settings().run_dir).mosquitto.broker_files
    if password_file is None and acl_file is None and secret is None:
        return local, True
    folder = (password_file or acl_file or secret or Path(".")).parent
    given = BrokerFiles(
        password_file or folder / local.password_file.name,
        acl_file or folder / local.acl_file.name,
        secret or folder / local.platform_secret.name,
    )
    return given, False


@app.command("credentials")
def credentials_command(
    site: Annotated[
        list[str] | None, typer.Option("--site", help="only this site (repeatable)")
    ] = None,
    platform: Annotated[bool, typer.Option("--platform", help="only the platform")] = False,
    rotate: Annotated[
        bool, typer.Option("--rotate", help="replace existing passwords of the chosen accounts")
    ] = False,
    registry: RegistryOption = None,
    database_url: DatabaseOption = None,
    password_file: PasswordFileOption = None,
    acl_file: AclFileOption = None,
    platform_secret: SecretOption = None,
    platform_user: PlatformUserOption = PLATFORM_USER,
) -> None:
    """Create missing accounts (or rotate passwords) and print each new secret ONCE.

    The broker keeps only PBKDF2-SHA512 hashes; copy a site's password into its
    gateway now, it is not stored anywhere else. Accounts of sites gone from the
    registry are removed, and the ACL is rewritten."""
    try:
        doc = _registry(registry, database_url)
        files, local = _files(password_file, acl_file, platform_secret)
        only = [*(site or []), *([platform_user] if platform else [])] or None
        issued = issue_credentials(
            files, doc, only=only, rotate=rotate, platform_user=platform_user
        )
    except (RegistryError, MqttAuthError) as exc:
        fail(str(exc))
    for secret in issued:
        verb = "rotated" if secret.rotated else "created"
        typer.echo(f"{verb:<8} {secret.user:<32} {secret.password}")
    if not issued:
        typer.echo("no new accounts (use --rotate to replace passwords)")
    if local:
        _after_local_change(platform_changed=any(s.user == platform_user for s in issued))


@app.command("acl")
def acl_command(
    reload: Annotated[
        bool, typer.Option("--reload", help="tell the local Mosquitto to reread its files")
    ] = False,
    show: Annotated[bool, typer.Option("--print", help="print the ACL too")] = False,
    registry: RegistryOption = None,
    database_url: DatabaseOption = None,
    acl_file: AclFileOption = None,
    platform_user: PlatformUserOption = PLATFORM_USER,
) -> None:
    """Regenerate the ACL from the registry."""
    try:
        doc = _registry(registry, database_url)
    except RegistryError as exc:
        fail(str(exc))
    files, local = _files(None, acl_file, None)
    acl = write_acl(files, doc, platform_user)
    typer.echo(f"{files.acl_file}: platform + {len(acl.sites)} site account(s)")
    for site_id, why in acl.skipped.items():
        typer.secho(f"skipped {site_id}: {why}", fg="yellow", err=True)
    if show:
        typer.echo(acl.text, nl=False)
    if reload and local:
        done = reload_broker(files)
        typer.echo("local broker reloaded" if done else "local broker not running")


def _after_local_change(platform_changed: bool) -> None:
    services = LocalServices(load_settings().run_dir)
    if platform_changed and read_env_file(services.run_dir):
        services.write_env()  # the services env carries the platform's password
    reload_broker(services.mosquitto.broker_files)


def refresh_local_acl(database_url: str | None = None) -> bool:
    """After a registry change: rewrite the local broker's ACL from the store and reload
    it, if the local broker has accounts in this run directory. Returns whether it did."""
    mosquitto = LocalServices(load_settings().run_dir).mosquitto
    files = mosquitto.broker_files
    if not (mosquitto.running() and files.password_file.exists()):
        return False
    write_acl(files, _registry(None, database_url))
    reload_broker(files)
    return True
