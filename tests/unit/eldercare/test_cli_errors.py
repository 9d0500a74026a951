"""One error style for every command: `error: …` on stderr, a non-zero status."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from eldercare.cli_errors import fail

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = [
    "eldercare",
    "ingest",
    "detectors",
    "alerts",
    "device_sim",
    "dashboards",
    "gateway",
    "field_service",
    "eldercare_app",
    "benchmarks",
    "evaluation",
]


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.command()
    def apply(code: int = 1) -> None:
        fail("sites.yaml: line 3: unknown key 'nmae'\nnothing was changed", code)

    return app


@pytest.mark.parametrize("code", [1, 2])
def test_a_command_that_fails_says_error_on_stderr_and_exits_non_zero(code: int) -> None:
    result = CliRunner().invoke(_app(), ["--code", str(code)])
    assert result.exit_code == code
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: sites.yaml: line 3: unknown key 'nmae'",
        "nothing was changed",
    ]


def test_a_failure_cannot_exit_zero() -> None:
    with pytest.raises(ValueError, match="non-zero"):
        fail("nothing", 0)


def test_no_command_prints_its_own_error_line() -> None:
    """Every command goes through `fail`: no other `error:` printing, no BadParameter."""
    own = re.compile(r"""secho\(\s*f?["']error:|BadParameter\(|echo\(\s*f?["']error:""")
    found = [
        f"{path.relative_to(ROOT)}"
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if own.search(path.read_text(encoding="utf-8")) and path.name != "cli_errors.py"
    ]
    assert found == []
