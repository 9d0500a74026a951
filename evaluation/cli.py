"""`eldercare eval ...`: evaluation commands that print figures (heavy; not part of the tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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
        Path,
        typer.Option(
            "--kasteren",
            help="van Kasteren 2008 directory (or its kasterenSenseData.txt)",
            exists=True,
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set", help="detector setting for the whole replay, rule.key=value (repeatable)"
        ),
    ] = None,
) -> None:
    """Home detectors on a real flat: false alarms per home-day, recall and delay of incidents."""
    from detectors.settings import DetectorSettingsError
    from evaluation.kasteren import evaluate, format_table, parse_overrides, report_json

    def progress(msg: str) -> None:
        typer.echo(msg, err=True)

    try:
        report = evaluate(kasteren, progress=progress, overrides=parse_overrides(set_ or []))
    except (ValueError, DetectorSettingsError) as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc
    typer.echo(report_json(report) if as_json else format_table(report))


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
        where = workdir or Path(tempfile.mkdtemp(prefix="eldercare-eval-"))
        result = evaluate_scenarios(
            cfg, where, progress=lambda m: typer.echo(m, err=True), tolerance_s=tolerance_s
        )
    except (ScenarioError, EvaluationError) as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(1) from exc
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
