"""`eldercare eval ...`: evaluation commands that print figures (heavy; not part of the tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from eldercare.cli_errors import fail

app = typer.Typer(
    help="Evaluate detectors and the platform against ground truth.", no_args_is_help=True
)


@app.command("wearable-fall")
def wearable_fall(
    sisfall: Annotated[
        Path,
        typer.Option(
            "--sisfall", help="SisFall directory (or its sisfall_adxl345_50hz.npz)", exists=True
        ),
    ],
    folds: Annotated[int, typer.Option(min=2, max=38, help="folds over subjects")] = 5,
    batch_s: Annotated[
        float, typer.Option("--batch-s", min=0.02, max=60, help="seconds of samples per reading")
    ] = 1.0,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Wearable fall detector on SisFall, subject-wise (tuned and tested on different people)."""
    from evaluation.sisfall import evaluate, format_table, report_json

    def progress(msg: str) -> None:
        typer.echo(msg, err=True)

    report = evaluate(sisfall, folds=folds, batch_s=batch_s, progress=progress)
    typer.echo(report_json(report) if as_json else format_table(report))


@app.command("home")
def home(
    kasteren: Annotated[
        Path | None,
        typer.Option(
            "--kasteren",
            help="van Kasteren 2008 directory (or its kasterenSenseData.txt)",
            exists=True,
        ),
    ] = None,
    kasteren2010: Annotated[
        Path | None,
        typer.Option(
            "--kasteren2010",
            help="van Kasteren 2010 house B directory (or its houseB_sensors.tsv)",
            exists=True,
        ),
    ] = None,
    aras: Annotated[
        Path | None,
        typer.Option("--aras", help="ARAS directory with HouseA.mat and HouseB.mat", exists=True),
    ] = None,
    datasets: Annotated[
        Path | None,
        typer.Option(
            "--datasets",
            help="directory holding kasteren2008/, kasteren2010_houseB/ and aras/: every home",
            exists=True,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set", help="detector setting for the whole replay, rule.key=value (repeatable)"
        ),
    ] = None,
) -> None:
    """Home detectors on real homes: false alarms per home-day, recall and delay of incidents.

    `--kasteren` alone gives the 2008 flat's report as before (with the declared-trips
    what-if); any other home gives one report per home and all homes together."""
    from detectors.settings import DetectorSettingsError
    from evaluation.kasteren import evaluate, format_table, parse_overrides, report_json

    def progress(msg: str) -> None:
        typer.echo(msg, err=True)

    if datasets is not None:
        from evaluation.real_homes.loaders import ARAS_DIR, KASTEREN_2008_DIR, KASTEREN_2010_DIR

        kasteren = kasteren or datasets / KASTEREN_2008_DIR
        kasteren2010 = kasteren2010 or datasets / KASTEREN_2010_DIR
        aras = aras or datasets / ARAS_DIR
    if kasteren is None and kasteren2010 is None and aras is None:
        fail("name a home (--kasteren, --kasteren2010, --aras or --datasets)", 2)
    try:
        overrides = parse_overrides(set_ or [])
        if kasteren is not None and kasteren2010 is None and aras is None:
            report = evaluate(kasteren, progress=progress, overrides=overrides)
            typer.echo(report_json(report) if as_json else format_table(report))
            return
        from evaluation.real_homes.evaluate import evaluate_home, format_homes, together
        from evaluation.real_homes.loaders import load_homes

        homes = load_homes(kasteren=kasteren, kasteren2010=kasteren2010, aras=aras)
        reports = [evaluate_home(h, overrides, progress) for h in homes]
    except (ValueError, OSError, DetectorSettingsError) as exc:
        fail(str(exc), 2)
    if as_json:
        doc = {"homes": reports, "together": together(reports), "overrides": overrides}
        typer.echo(report_json(doc))
    else:
        typer.echo(format_homes(reports))


@app.command("export-home")
def export_home(
    datasets: Annotated[
        Path,
        typer.Option(
            "--datasets",
            help="directory holding kasteren2008/, kasteren2010_houseB/ and aras/",
            exists=True,
            file_okay=False,
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="one folder per home is written here")],
    only: Annotated[
        list[str] | None,
        typer.Option("--home", help="only this home (its key, e.g. arasb; repeatable)"),
    ] = None,
) -> None:
    """Real homes as `eval replay` takes them: <out>/<home>/registry.yaml and recording.jsonl
    (their recorded life as native MQTT messages, no injected incidents)."""
    from evaluation.real_homes.export import export_home as write_home
    from evaluation.real_homes.loaders import load_all_homes

    homes = load_all_homes(datasets)
    known = [h.key for h in homes]
    unknown = sorted(set(only or []) - set(known))
    if unknown:
        fail(f"no home {', '.join(unknown)} (known: {', '.join(known)})", 2)
    for h in homes:
        if only and h.key not in only:
            continue
        done = write_home(h, out / h.key)
        typer.echo(f"{h.key}: {done.messages} messages -> {done.recording}, {done.registry}")


@app.command("replay")
def replay(
    recording: Annotated[
        Path, typer.Argument(help="JSON lines: topic, payload, ts (docs/replay.md)", exists=True)
    ],
    registry: Annotated[
        Path, typer.Option("--registry", help="registry YAML binding the devices", exists=True)
    ],
    truth: Annotated[
        Path | None,
        typer.Option(
            "--truth", help="incidents: JSON lines as `eldercare sim` writes", exists=True
        ),
    ] = None,
    workdir: Annotated[Path | None, typer.Option(help="where services, store and logs go")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Any recording through the whole platform on the event clock: every raise, false
    alarms per home-day, recall with a truth file. Fails on quarantined or unregistered."""
    import json
    import tempfile

    from evaluation.platform_scenarios import EvaluationError
    from evaluation.replay import RecordingError, format_replay, replay_recording

    where = workdir or Path(tempfile.mkdtemp(prefix="eldercare-replay-"))
    try:
        report = replay_recording(
            recording, registry, where, truth, progress=lambda m: typer.echo(m, err=True)
        )
    except (RecordingError, EvaluationError) as exc:
        fail(str(exc), 2)
    text = json.dumps(report, ensure_ascii=False, indent=2) if as_json else format_replay(report)
    typer.echo(text)
    if not report["ok"]:
        raise typer.Exit(1)


@app.command("scenarios")
def scenarios(
    homes: Annotated[int, typer.Option(min=1, help="simulated homes")] = 20,
    institutions: Annotated[int, typer.Option(min=0, help="simulated care institutions")] = 0,
    days: Annotated[float, typer.Option(min=0.5, help="simulated days")] = 3.0,
    seed: Annotated[int, typer.Option(help="simulation seed")] = 1,
    scenario_specs: Annotated[
        str, typer.Option("--scenarios", help="as `eldercare sim --scenarios`")
    ] = "all,all",
    fmt: Annotated[str, typer.Option("--format", help="native, z2m or mixed")] = "mixed",
    impairments: Annotated[bool, typer.Option(help="simulate unreliable delivery")] = True,
    tolerance_s: Annotated[float, typer.Option(help="seconds past `due` still on time")] = 300.0,
    workdir: Annotated[
        Path | None, typer.Option(help="where services, store, truth and logs go")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    in_process: Annotated[
        bool,
        typer.Option(
            "--in-process",
            help="ingest's decoding and the detectors in this process, no broker or store: "
            "the same seed gives the same result (evaluation/scenarios_in_process.py)",
        ),
    ] = False,
) -> None:
    """The whole platform against simulated incidents: recall, delay, false alarms per site-day."""
    import json
    import tempfile

    from device_sim.cli import default_start
    from device_sim.device import Impairments
    from device_sim.scenarios import ScenarioError, parse_specs
    from device_sim.simulation import SimConfig
    from evaluation.platform_scenarios import EvaluationError, evaluate_scenarios, format_report

    try:
        cfg = SimConfig(
            homes=homes,
            institutions=institutions,
            days=days,
            seed=seed,
            start=default_start(days, speed=0),
            fmt=fmt,
            scenarios=tuple(parse_specs(scenario_specs)),
            impairments=Impairments() if impairments else Impairments.none(),
        )
        if in_process:
            from evaluation.scenarios_in_process import evaluate_in_process, format_in_process

            quick = evaluate_in_process(cfg, tolerance_s=tolerance_s)
            if as_json:
                typer.echo(json.dumps(quick.report.as_dict(), ensure_ascii=False, indent=2))
            else:
                typer.echo(format_in_process(quick))
            return
        where = workdir or Path(tempfile.mkdtemp(prefix="eldercare-eval-"))
        result = evaluate_scenarios(
            cfg, where, progress=lambda m: typer.echo(m, err=True), tolerance_s=tolerance_s
        )
    except (ScenarioError, EvaluationError) as exc:
        fail(str(exc))
    if as_json:
        doc = result.report.as_dict()
        doc["run"] = {
            "messages": result.stats.messages,
            "publish_s": round(result.stats.wall_s, 1),
            "alerts": result.alerts,
            "raises": result.raises,
            "workdir": str(result.workdir),
        }
        typer.echo(json.dumps(doc, ensure_ascii=False, indent=2))
    else:
        typer.echo(format_report(result))
