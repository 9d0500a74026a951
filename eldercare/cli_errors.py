"""How every command refuses: one line `error: …` on stderr (more lines may follow
with details) and a non-zero exit status, never a traceback.

Exit status 1 for a failure of what was asked, 2 for a usage or configuration
problem (the command could not start). A check that ran and found problems prints
its report and exits 1 on its own: that is a verdict, not an error.
"""

from __future__ import annotations

from typing import NoReturn

import typer


def fail(message: str, code: int = 1) -> NoReturn:
    """Print `error: message` to stderr and exit with `code` (non-zero)."""
    if code == 0:
        raise ValueError("a failure exits non-zero")
    typer.secho(f"error: {message}", fg="red", err=True)
    raise SystemExit(code)
