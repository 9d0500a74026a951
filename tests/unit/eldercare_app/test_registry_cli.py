"""`eldercare registry ...` against real SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from typer.testing import CliRunner

from eldercare.db import Base, create_engine
from eldercare.registry_apply import load_registry_file, parse_registry
from eldercare.registry_store import REGISTRY_TABLES
from eldercare_app.registry_cli import app

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "registry.yaml"
_RUN_DIR = Path(tempfile.mkdtemp(prefix="registry-cli-run-"))


def _drop_registry_tables(url: str) -> None:
    async def drop() -> None:
        engine = create_engine(url)
        async with engine.begin() as conn:
            await conn.run_sync(lambda c: Base.metadata.drop_all(c, tables=REGISTRY_TABLES))
        await engine.dispose()

    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, drop()).result()


@pytest.fixture(scope="module")
def registry_cli_pg_url(pg_database: Callable[[str], str]) -> str:
    """A database of this module's own on the session's PostgreSQL server."""
    return pg_database("registry_cli")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/cli.db"
    url: str = request.getfixturevalue("registry_cli_pg_url")
    _drop_registry_tables(url)  # the module's database is shared by its tests
    return url


def run(url: str, *args: str) -> tuple[int, str, str]:
    # A run directory of its own: never the checkout's .run, where a demo may be running.
    env = {"ELDERCARE_DATABASE_URL": url, "ELDERCARE_RUN_DIR": str(_RUN_DIR)}
    result = CliRunner().invoke(app, list(args), env=env)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_apply_reapply_export_and_tables(database_url: str, tmp_path: Path) -> None:
    code, out, _ = run(database_url, "apply", str(EXAMPLE))
    assert code == 0
    assert "104 change(s) applied; registry version 1" in out
    assert "sites      created    4  updated    0  deleted    0" in out
    assert "devices    created   46" in out

    code, out, _ = run(database_url, "apply", str(EXAMPLE))
    assert (code, out.strip()) == (0, f"{EXAMPLE}: no changes; registry version 1")

    code, out, _ = run(database_url, "export")
    assert code == 0 and out.startswith("# eldercare registry export, version 1\n")
    assert parse_registry(out, "export") == load_registry_file(EXAMPLE)
    exported = tmp_path / "exported.yaml"
    assert run(database_url, "export", "-o", str(exported))[0] == 0
    code, out, _ = run(database_url, "apply", str(exported))
    assert "no changes" in out

    code, out, _ = run(database_url, "sites")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == [
        "SITE",
        "KIND",
        "NAME",
        "ORGANISATION",
        "ROOMS",
        "BEDS",
        "RESID.",
        "DEVICES",
        "CONT.",
    ]
    assert lines[4].split() == [
        "inst-xingfu",
        "institution",
        "幸福养老院",
        "滨州市/滨城区/幸福养老院",
        "8",
        "6",
        "5",
        "18",
        "4",
    ]

    code, out, _ = run(database_url, "show")
    assert code == 0
    assert out.startswith("registry version 1: 4 sites, 9 residents, 46 devices")
    assert "黄河社区  (2 sites)" in out


def test_dry_run_and_prune(database_url: str, tmp_path: Path) -> None:
    assert run(database_url, "apply", str(EXAMPLE))[0] == 0
    text = EXAMPLE.read_text(encoding="utf-8")
    one_site = tmp_path / "one.yaml"
    one_site.write_text(text[: text.index("  - id: hh-5-1-102")], encoding="utf-8")

    code, out, _ = run(database_url, "apply", str(one_site), "--prune", "--dry-run")
    assert code == 0
    assert "planned (dry run, nothing written); registry version 1" in out
    assert "- site inst-xingfu" in out
    assert "registry version 1: 4 sites" in run(database_url, "show")[1]

    code, out, _ = run(database_url, "apply", str(one_site), "--prune")
    assert code == 0
    assert "sites      created    0  updated    0  deleted    3" in out
    assert "registry version 2: 1 sites" in run(database_url, "show")[1]


def test_invalid_file_exits_non_zero_and_changes_nothing(database_url: str, tmp_path: Path) -> None:
    assert run(database_url, "apply", str(EXAMPLE))[0] == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        EXAMPLE.read_text(encoding="utf-8").replace("kind: sos_button", "kind: panic_button", 1),
        encoding="utf-8",
    )
    code, out, err = run(database_url, "apply", str(bad))
    assert code == 1 and out == ""
    assert f"{bad}:" in err and "sites[hh-3-2-401].devices[hh401-sos].kind" in err
    assert "nothing was changed" in err
    assert "registry version 1: 4 sites" in run(database_url, "show")[1]


@pytest.mark.slow  # two `eldercare` processes
def test_wired_into_the_eldercare_command(tmp_path: Path) -> None:
    env = {**os.environ, "ELDERCARE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/sub.db"}
    cmd = [sys.executable, "-m", "eldercare_app.cli", "registry"]
    applied = subprocess.run(
        [*cmd, "apply", str(EXAMPLE)], env=env, capture_output=True, text=True, timeout=60
    )
    assert applied.returncode == 0, applied.stderr
    listed = subprocess.run(
        [*cmd, "sites"], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert listed.returncode == 0, listed.stderr
    assert "hh-3-2-401" in listed.stdout and "inst-xingfu" in listed.stdout


def test_unreachable_database_is_a_clear_error() -> None:
    code, out, err = run("postgresql+asyncpg://nobody:secret@127.0.0.1:1/none", "sites")
    assert code == 2 and out == ""
    assert err.startswith("error: database postgresql+asyncpg://nobody:***@127.0.0.1:1/none:")
    assert "secret" not in err
