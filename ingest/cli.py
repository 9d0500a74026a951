"""`eldercare ingest run` (standalone ingest) and `eldercare devices …` (what ingest saw).

Standalone ingest is MQTT → InfluxDB without detectors (a `NullReadingSink`): the
way to run ingest apart from the rest when a deployment scales parts out. It
reads the registry from the relational store, reloads it when its version
changes, and serves its counters at `http://<http_host>:<http_port>/metrics`
(what `eldercare services status` shows).
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from eldercare.logs import configure_logging, get_logger
from eldercare.settings import Settings, load_settings

if TYPE_CHECKING:
    from ingest.service import IngestService

log = get_logger("ingest.cli")

ingest_app = typer.Typer(
    help="Ingest: MQTT → InfluxDB (standalone). 数据接入", no_args_is_help=True
)
devices_app = typer.Typer(
    help="Devices seen by ingest: unregistered ones, quarantined messages. 设备接入情况",
    no_args_is_help=True,
)

REGISTRY_POLL_S = 5.0


@ingest_app.command("run")
def run(
    metrics_port: Annotated[
        int | None, typer.Option(help="port of the /metrics endpoint (default: http_port)")
    ] = None,
) -> None:
    """Run ingest alone: MQTT → InfluxDB (or spool), until SIGTERM / Ctrl-C."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    asyncio.run(run_standalone(settings, metrics_port=metrics_port))


async def run_standalone(
    settings: Settings,
    *,
    metrics_port: int | None = None,
    stop: asyncio.Event | None = None,
    registry_poll_s: float = REGISTRY_POLL_S,
    on_ready: Callable[[int | None], object] | None = None,
) -> None:
    """Standalone ingest until `stop` is set (by default: until SIGTERM or SIGINT).

    `on_ready`, when given, is called once ingest is subscribed to the broker (a message
    published from then on is received), with the port /metrics is served on (None if
    it could not be bound; `metrics_port=0` lets the system pick a free one)."""
    from eldercare.db import create_engine, session_factory
    from eldercare.metrics import serve_metrics
    from eldercare.registry_store import init_store
    from eldercare.registry_watch import RegistryWatcher
    from eldercare.stage_contracts import NullReadingSink
    from ingest.service import IngestService

    engine = create_engine(settings.database_url)
    await init_store(engine)
    registry = RegistryWatcher(session_factory(engine), poll_s=registry_poll_s)
    await registry.start()
    service = IngestService(settings, registry.current, NullReadingSink())

    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)

    server = None
    port = metrics_port if metrics_port is not None else settings.http_port
    try:
        server = await serve_metrics(settings.http_host, port)
    except OSError as exc:
        log.warning("metrics endpoint not served", extra={"port": port, "error": str(exc)})

    await service.start()
    reporting = None
    if on_ready is not None:
        served = server.sockets[0].getsockname()[1] if server is not None else None
        reporting = asyncio.create_task(_report_ready(service, on_ready, served))
    try:
        await stop.wait()
    finally:
        if reporting is not None:
            reporting.cancel()
        await service.stop()
        await registry.stop()
        if server is not None:
            server.close()
        await engine.dispose()


async def _report_ready(
    service: IngestService, on_ready: Callable[[int | None], object], port: int | None
) -> None:
    await service.ready.wait()
    on_ready(port)


# -- devices -------------------------------------------------------------------


@devices_app.command("unregistered")
def unregistered(
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Devices sending data that are not in the registry (register them). 未登记设备"""
    settings = load_settings()
    devices = asyncio.run(_load_unregistered(settings))
    if as_json:
        typer.echo(json.dumps([d.to_json() for d in devices], ensure_ascii=False, indent=2))
        return
    if not devices:
        typer.echo("没有未登记设备 / no unregistered devices")
        return
    typer.echo("未登记设备 / unregistered devices:")
    typer.echo(f"{'identity':<40} {'count':>8} {'first seen':<20} {'last seen':<20} topic")
    for d in devices:
        typer.echo(
            f"{d.identity:<40} {d.count:>8} {_iso(d.first_seen):<20} {_iso(d.last_seen):<20} "
            f"{d.topic}"
        )
        typer.echo(f"    sample: {d.sample_payload[:160]}")


async def _load_unregistered(settings: Settings):  # type: ignore[no-untyped-def]
    from eldercare.db import create_engine, session_factory
    from ingest.unregistered import init_unregistered_store, list_unregistered

    engine = create_engine(settings.database_url)
    try:
        await init_unregistered_store(engine)
        return await list_unregistered(session_factory(engine))
    finally:
        await engine.dispose()


@devices_app.command("quarantine")
def quarantine(
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    cause: Annotated[str | None, typer.Option(help="only this cause, e.g. bad_json")] = None,
    limit: Annotated[int, typer.Option(help="newest entries to show")] = 20,
) -> None:
    """Messages ingest refused, with the cause. 隔离的消息"""
    from ingest.quarantine import read_quarantine

    settings = load_settings()
    entries = list(read_quarantine(settings.run_dir / "quarantine", cause))
    counts = Counter(e.cause for e in entries)
    newest = entries[-limit:] if limit > 0 else []
    if as_json:
        doc = {"counts": dict(counts), "entries": [e.to_json() for e in newest]}
        typer.echo(json.dumps(doc, ensure_ascii=False, indent=2))
        return
    if not entries:
        typer.echo("没有隔离的消息 / no quarantined messages")
        return
    typer.echo("隔离的消息（按原因）/ quarantined messages by cause:")
    for name, n in counts.most_common():
        typer.echo(f"  {name:<20} {n}")
    typer.echo(f"最近 / newest {len(newest)}:")
    for e in newest:
        payload = e.to_json().get("payload", "<binary, base64 in --json>")
        typer.echo(f"  {_iso(e.received_at)} {e.cause:<18} {e.topic[:60]}  {e.detail[:80]}")
        typer.echo(f"      {str(payload)[:120]!r}")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")
