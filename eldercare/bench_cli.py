"""`eldercare bench ...`: benchmarks that print figures (run by `make bench`)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Benchmarks of this machine and the platform.", no_args_is_help=True)
