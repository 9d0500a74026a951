"""`eldercare bench ...`: benchmarks that print figures (run by `make bench`)."""

from __future__ import annotations

import typer

from eldercare.cli_errors import fail

app = typer.Typer(help="Benchmarks of this machine and the platform.", no_args_is_help=True)


@app.command("codecs")
def bench_codecs() -> None:
    """Microseconds per message of `ingest.codecs.decode`, per codec."""
    from benchmarks.codecs import main as run_codec_bench

    run_codec_bench()


@app.command("ingest")
def bench_ingest(
    messages: int = typer.Option(100_000, "--messages", help="QoS 1 messages to publish"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
    profile: str | None = typer.Option(
        None, "--profile", help="write a pyinstrument profile of the ingest process here"
    ),
    configured: bool = typer.Option(
        False, "--configured-services", help="use the configured broker and InfluxDB"
    ),
) -> None:
    """Sustained msg/s MQTT → InfluxDB with zero loss, against a bare subscriber's rate."""
    import json
    from pathlib import Path

    from benchmarks.ingest_throughput import run_ingest_bench

    result = run_ingest_bench(messages, Path(profile) if profile else None, configured)
    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=2))
        return
    typer.echo(f"messages                 {result.messages}")
    typer.echo(f"publisher                {result.publisher_msgs_per_s} msg/s")
    typer.echo(f"bare paho subscriber     {result.bare_subscriber_msgs_per_s} msg/s (ceiling)")
    typer.echo(
        f"ingest → InfluxDB        {result.ingest_msgs_per_s} msg/s "
        f"({result.ingest_vs_bare:.0%} of the bare subscriber)"
    )
    typer.echo(
        f"InfluxDB count/distinct  {result.influx_count}/{result.influx_distinct} "
        f"zero loss: {result.zero_loss}"
    )
    typer.echo(f"ingest CPU               {result.ingest_cpu_us_per_msg} µs/msg")
    typer.echo(f"machine                  {result.nproc} cores, {result.cpu_model}, {result.date}")
    if not result.zero_loss:
        raise typer.Exit(1)


@app.command("detectors")
def bench_detectors(
    homes: int = typer.Option(1000, "--homes", min=1, help="generated homes"),
    readings: int = typer.Option(200_000, "--readings", min=1, help="readings timed"),
    rate: float = typer.Option(
        5000.0, "--rate", min=1.0, help="readings per second of simulated event time"
    ),
    batch: int = typer.Option(200, "--batch", min=1, help="readings per handle_readings call"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """Readings per second through the detector runtime alone, in-process; its memory."""
    import json

    from benchmarks.detectors import render, run_detector_bench

    result = run_detector_bench(homes, readings, rate=rate, batch=batch)
    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=2))
    else:
        for line in render(result):
            typer.echo(line)


@app.command("worker-memory")
def bench_worker_memory(
    homes: int = typer.Option(2000, "--homes", min=1, help="homes the worker holds"),
    hours: float = typer.Option(
        1.0, "--hours", min=0.01, help="hours of simulated event time of readings"
    ),
    lines: bool = typer.Option(False, "--lines", help="also the allocating lines (slower)"),
    tick_s: float = typer.Option(
        1.0, "--tick-s", min=0.01, help="simulated seconds between timer ticks (a month: 60)"
    ),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """A detector worker's memory per 1,000 homes held after an hour of readings, and where
    it goes (registry, detector state by part and by type; the role's import baseline)."""
    import json

    from benchmarks.worker_memory import render, run_worker_memory_bench

    result = run_worker_memory_bench(homes, hours, lines, tick_s)
    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=2))
    else:
        for line in render(result):
            typer.echo(line)


@app.command("latency")
def bench_latency(
    homes: int = typer.Option(1000, "--homes", min=1, help="registered homes"),
    rate: float = typer.Option(5000.0, "--rate", min=0.0, help="background messages per second"),
    samples: int = typer.Option(100, "--samples", min=1, help="SOS presses and falls, each"),
    warmup: float = typer.Option(10.0, "--warmup", min=0.0, help="seconds of load before sampling"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
    profile: str | None = typer.Option(
        None, "--profile", help="write a pyinstrument profile of the platform process here"
    ),
    configured: bool = typer.Option(
        False, "--configured-services", help="use the configured broker and InfluxDB"
    ),
) -> None:
    """Device publish → alert stored / on the live stream / first notification, under load."""
    import json
    from pathlib import Path

    from benchmarks.latency import render, run_latency_bench

    if samples > homes:
        fail("--samples must not exceed --homes (one new alert per home)", 2)
    result = run_latency_bench(
        homes,
        rate,
        samples,
        warmup_s=warmup,
        profile=Path(profile) if profile else None,
        use_configured=configured,
    )
    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
    else:
        for line in render(result):
            typer.echo(line)


@app.command("scale")
def bench_scale(
    max_homes: int = typer.Option(30_000, "--max-homes", min=1, help="largest home count"),
    step: int = typer.Option(10_000, "--step", min=0, help="homes added per step (0: one step)"),
    start: int | None = typer.Option(None, "--start", min=1, help="first home count (--step)"),
    window: float = typer.Option(90.0, "--window", min=1.0, help="seconds measured per step"),
    warmup: float = typer.Option(20.0, "--warmup", min=0.0, help="seconds of load before that"),
    keep_going: bool = typer.Option(False, "--keep-going", help="step on past a failed count"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
    configured: bool = typer.Option(
        False, "--configured-services", help="use the configured broker and InfluxDB"
    ),
) -> None:
    """Homes one platform process follows in real time; CPU and memory per 1,000 homes."""
    import json

    from benchmarks.scale import home_counts, render, run_scale_bench

    counts = home_counts(start or step or max_homes, step, max_homes)
    result = run_scale_bench(
        counts,
        warmup_s=warmup,
        window_s=window,
        keep_going=keep_going,
        use_configured=configured,
    )
    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=2))
    else:
        for line in render(result):
            typer.echo(line)


@app.command("safety")
def bench_safety(
    lock_s: float = typer.Option(45.0, "--lock-s", min=0.0, help="seconds the store is locked"),
    read_only_s: float = typer.Option(
        40.0, "--read-only-s", min=0.0, help="seconds the store file is read-only"
    ),
    hang_s: float = typer.Option(60.0, "--hang-s", min=0.0, help="seconds InfluxDB is stopped"),
    settle_s: float = typer.Option(
        60.0, "--settle-s", min=0.0, help="seconds to wait for held alerts after a release"
    ),
    only: list[str] | None = typer.Option(
        None,
        "--only",
        help="lock, read-only, influx-hung or second-press (repeatable; default: all)",
    ),
) -> None:
    """Issue 14's figures: SOS with the alert store locked or read-only, with InfluxDB hung,
    and a second press after an acknowledgement (JSON lines)."""
    import json

    from benchmarks.safety import SCENARIOS, run

    chosen = tuple(only or SCENARIOS)
    unknown = sorted(set(chosen) - set(SCENARIOS))
    if unknown:
        fail(f"--only: unknown scenario {', '.join(unknown)}", 2)
    for row in run(lock_s, read_only_s, hang_s, settle_s, chosen):
        typer.echo(json.dumps(row, ensure_ascii=False))


@app.command("flood")
def bench_flood(
    rate: float = typer.Option(50_000.0, "--rate", min=1.0, help="flood messages per second"),
    duration: float = typer.Option(10.0, "--duration", min=1.0, help="seconds of flood"),
    homes: int = typer.Option(30, "--homes", min=17, help="registered homes (home 0 floods)"),
    without_fairness: bool = typer.Option(
        False, "--without-fairness", help="per-site limits and emergency lane off (to compare)"
    ),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
    configured: bool = typer.Option(
        False, "--configured-services", help="use the configured broker and InfluxDB"
    ),
) -> None:
    """One home floods: other homes' SOS latency and the platform's memory, before,
    during and after."""
    import json

    from benchmarks.flood import render, run_flood_bench

    result = run_flood_bench(
        rate, duration, homes, use_configured=configured, fairness=not without_fairness
    )
    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=2))
    else:
        for line in render(result):
            typer.echo(line)


@app.command("cluster")
def bench_cluster(
    homes: int = typer.Option(5_000, "--homes", min=1, help="simulated homes, in real time"),
    workers: str = typer.Option("1,2,4", "--workers", help="detector worker counts, in turn"),
    window: float = typer.Option(20.0, "--window", min=1.0, help="seconds measured per count"),
    samples: int = typer.Option(10, "--samples", min=1, help="SOS presses per count"),
    partitions: int = typer.Option(64, "--partitions", min=1, help="site partitions"),
    lease_ttl: float = typer.Option(
        5.0, "--lease-ttl", min=1.0, help="lease TTL, s (longer on a shared machine)"
    ),
    faults: bool = typer.Option(True, "--faults/--no-faults", help="the faults after the steps"),
    fault: list[str] = typer.Option(
        [], "--fault", help="only this fault (repeatable): detector, pipeline, nats-node"
    ),
    nats_stops: int = typer.Option(
        1, "--nats-stops", min=1, help="how many times the NATS node fault runs, in turn"
    ),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """Each role in its own process on a three-node NATS cluster: per detector worker the
    homes, CPU and RSS; lag and console p99 for SOS; and the faults (kill -9 of a detector
    worker and of the active pipeline, one NATS node stopped), an SOS and a fall in each."""
    import json

    from benchmarks.cluster import FAULTS, render, run_cluster_bench

    unknown = sorted(set(fault) - set(FAULTS))
    if unknown:
        fail(f"--fault: unknown fault {', '.join(unknown)}; one of {', '.join(FAULTS)}", 2)
    chosen = tuple(f for f in FAULTS if f in fault) if fault else FAULTS
    counts = [int(w) for w in workers.split(",") if w.strip()]
    result = run_cluster_bench(
        homes, counts, window, samples, partitions, lease_ttl, chosen if faults else (), nats_stops
    )
    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=2))
    else:
        for line in render(result):
            typer.echo(line)
