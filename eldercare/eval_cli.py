"""`eldercare eval ...`: evaluation commands that print figures (heavy; not part of the tests)."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Evaluate detectors and the platform against ground truth.", no_args_is_help=True
)
