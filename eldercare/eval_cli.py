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
    from detectors.eval_sisfall import evaluate, format_table, report_json

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
    from detectors.eval_kasteren import evaluate, format_table, parse_overrides, report_json
    from detectors.settings import DetectorSettingsError

    def progress(msg: str) -> None:
        typer.echo(msg, err=True)

    try:
        report = evaluate(kasteren, progress=progress, overrides=parse_overrides(set_ or []))
    except (ValueError, DetectorSettingsError) as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc
    typer.echo(report_json(report) if as_json else format_table(report))
