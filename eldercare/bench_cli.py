"""`eldercare bench ...`: benchmarks that print figures (run by `make bench`)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Benchmarks of this machine and the platform.", no_args_is_help=True)


@app.command("codecs")
def bench_codecs() -> None:
    """Microseconds per message of `ingest.codecs.decode`, per codec."""
    from ingest.codecs.bench import main as run_codec_bench

    run_codec_bench()
