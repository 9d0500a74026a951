"""`eldercare sim`: simulated homes and institutions publishing over MQTT like real devices.

It first writes the registry YAML of its population (apply it with `eldercare
registry apply`) and the ground truth of the incidents it injects, then publishes:
in real time (`--speed 1`, the default), faster (`--speed X`), or as fast as the
broker takes it in event-time order (`--fast`, for the platform's `event` clock).
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from dataclasses import replace
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from device_sim.accounts import ISSUED_DIR_FINDER, IssuedDirFinder, wait_site_passwords
from device_sim.clock import Pacer
from device_sim.device import Impairments
from device_sim.population import write_registry
from device_sim.publisher import BrokerConfig, MqttPublisher, PublishError
from device_sim.runner import RunStats, run
from device_sim.scenarios import ScenarioError, ScenarioRequest, parse_specs
from device_sim.simulation import TIMEZONE, SimConfig, Simulation
from device_sim.truth import write_truth
from eldercare.cli_errors import fail
from eldercare.logs import configure_logging
from eldercare.settings import Settings, load_settings

app = typer.Typer(
    help="Simulate homes and institutions: residents, devices and incidents over MQTT.",
    pretty_exceptions_enable=False,
)


SITE_ACCOUNT_WAIT_S = 15.0


class Format(StrEnum):
    NATIVE = "native"
    Z2M = "z2m"
    MIXED = "mixed"


class Preset(StrEnum):
    DEMO = "demo"


def default_start(days: float, speed: float, now: float | None = None) -> float:
    """Real time starts now; faster runs end before now, so no reading is in the future."""
    now = time.time() if now is None else now
    if speed == 1:
        return now
    today = datetime.fromtimestamp(now, ZoneInfo(TIMEZONE)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    return (today - timedelta(days=math.ceil(days))).timestamp()


def broker_from(settings: Settings) -> BrokerConfig:
    return BrokerConfig(
        host=settings.mqtt_host,
        port=settings.mqtt_port,
        username=settings.mqtt_username,
        password=settings.mqtt_password,
        tls=settings.mqtt_tls,
        ca_file=str(settings.mqtt_ca_file) if settings.mqtt_ca_file else None,
    )


def demo_config(start: float, seed: int = 7) -> SimConfig:
    """The `make demo` population: 50 homes and a care home, live, a few incidents an hour."""
    return SimConfig(
        live=True,
        homes=50,
        institutions=1,
        days=7.0,
        seed=seed,
        start=start,
        fmt="mixed",
        incidents_per_hour=3.0,
        wearable_share=0.3,
        vitals_share=0.4,
        lead_s=600.0,
        # Something to see in the first minutes, then the random mix.
        scenarios=(
            ScenarioRequest("sos", start + 180.0),
            ScenarioRequest("low_battery", start + 300.0),
        ),
    )


def _report(stats: RunStats, done: bool) -> None:
    simulated_days = stats.simulated_s / 86400
    prefix = "published" if done else "publishing:"
    typer.echo(
        f"{prefix} {stats.messages} messages in {stats.wall_s:.1f} s "
        f"({stats.rate:.0f} msg/s), {simulated_days:.2f} simulated days",
        err=not done,
    )


@app.callback(invoke_without_command=True)
def sim(
    ctx: typer.Context,
    homes: Annotated[int, typer.Option(min=0, help="number of homes")] = 10,
    institutions: Annotated[int, typer.Option(min=0, help="number of care institutions")] = 0,
    days: Annotated[float, typer.Option(min=0.01, help="simulated days")] = 1.0,
    speed: Annotated[
        float, typer.Option(min=0.0, help="1 = real time, X = X times faster, 0 = flat out")
    ] = 1.0,
    fast: Annotated[bool, typer.Option("--fast", help="same as --speed 0")] = False,
    seed: Annotated[int, typer.Option(help="same seed, same population and messages")] = 1,
    scenarios: Annotated[
        str,
        typer.Option(help="incidents: name, name:count, name@ISO-time, or all; comma-separated"),
    ] = "",
    incidents_per_hour: Annotated[
        float, typer.Option(min=0.0, help="extra random incidents per simulated hour")
    ] = 0.0,
    truth: Annotated[Path, typer.Option(help="ground-truth JSONL to write")] = Path(
        ".run/sim/truth.jsonl"
    ),
    registry_out: Annotated[Path, typer.Option(help="registry YAML to write")] = Path(
        ".run/sim/registry.yaml"
    ),
    start: Annotated[
        str | None,
        typer.Option(help="event time of the start, ISO 8601 (default: now, or days ago)"),
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", help="device payload format")] = Format.NATIVE,
    qos: Annotated[int, typer.Option(min=0, max=1, help="MQTT QoS of every publish")] = 1,
    impairments: Annotated[
        bool, typer.Option(help="duplicates, late and out-of-order delivery, dropouts")
    ] = True,
    wearable_share: Annotated[float, typer.Option(min=0.0, max=1.0)] = 0.2,
    vitals_share: Annotated[float, typer.Option(min=0.0, max=1.0)] = 0.3,
    apprise: Annotated[
        list[str] | None,
        typer.Option(help="Apprise URL template for every contact ({site} {contact} {resident})"),
    ] = None,
    preset: Annotated[
        Preset | None, typer.Option(help="demo: 50 homes + 1 institution, live, incidents")
    ] = None,
    registry_only: Annotated[
        bool, typer.Option("--registry-only", help="write the registry and truth; publish nothing")
    ] = False,
    mqtt_host: Annotated[str | None, typer.Option(help="broker host (default: settings)")] = None,
    mqtt_port: Annotated[int | None, typer.Option(help="broker port (default: settings)")] = None,
    site_credentials: Annotated[
        Path | None,
        typer.Option(
            help="folder of <site id> password files: each site logs in with its own account "
            "(default: the local broker's issued/ folder, when it enforces accounts)"
        ),
    ] = None,
) -> None:
    """Run the simulator (see `eldercare sim --help`)."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    if fast:
        speed = 0.0
    try:
        requests = tuple(parse_specs(scenarios))
        if start is not None:
            moment = datetime.fromisoformat(start)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=ZoneInfo(TIMEZONE))
            start_ts = moment.timestamp()
        else:
            start_ts = default_start(days, speed)
        if preset is Preset.DEMO:
            cfg = demo_config(start_ts if start else time.time(), seed)
            cfg = replace(
                cfg,
                scenarios=cfg.scenarios + requests,
                live=speed == 1 and start is None,
                apprise=tuple(apprise or ()) or cfg.apprise,
            )
        else:
            cfg = SimConfig(
                homes=homes,
                institutions=institutions,
                days=days,
                seed=seed,
                start=start_ts,
                fmt=fmt.value,
                scenarios=requests,
                incidents_per_hour=incidents_per_hour,
                impairments=Impairments() if impairments else Impairments.none(),
                wearable_share=wearable_share,
                vitals_share=vitals_share,
                apprise=tuple(apprise or ()),
                live=speed == 1 and start is None,
            )
        simulation = Simulation(cfg)
    except (ScenarioError, ValueError) as exc:
        fail(str(exc), 2)
    doc = write_registry(simulation.sites, registry_out)
    n_truth = write_truth(simulation.truth, truth)
    devices = sum(len(s.devices) for s in doc.sites)
    typer.echo(f"registry: {registry_out} ({len(doc.sites)} sites, {devices} devices)")
    typer.echo(f"truth:    {truth} ({n_truth} incidents)")
    if registry_only:
        return
    broker = broker_from(settings)
    broker.host = mqtt_host or broker.host
    broker.port = mqtt_port or broker.port
    find_issued: IssuedDirFinder | None = ctx.meta.get(ISSUED_DIR_FINDER)
    if site_credentials is None and find_issued is not None:
        site_credentials = find_issued(settings, broker.host, broker.port)
    folder = site_credentials
    if folder is not None:
        ids = [s.id for s in simulation.sites]
        # The platform issues accounts when it sees the registry: give it a moment.
        broker.site_passwords = wait_site_passwords(folder, ids, SITE_ACCOUNT_WAIT_S)
        typer.echo(
            f"accounts: {len(broker.site_passwords)} of {len(ids)} sites log in with their "
            f"own account ({folder}); the others with {broker.username or 'no account'}"
        )
    pace = "as fast as possible" if speed == 0 else f"speed x{speed:g}"
    typer.echo(f"broker:   {broker.host}:{broker.port}, qos {qos}, {pace}")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    publisher = MqttPublisher(broker, qos=qos)
    try:
        stats = run(
            simulation,
            publisher,
            Pacer(speed, simulation.start),
            stop=stop,
            progress=lambda s: _report(s, done=False),
        )
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise typer.Exit(130) from None
    except PublishError as exc:
        fail(str(exc))
    finally:
        with contextlib.suppress(PublishError, OSError):
            publisher.close()
    _report(stats, done=True)
    if stats.impairments:
        typer.echo("impairments: " + ", ".join(f"{k} {v}" for k, v in stats.impairments.items()))
