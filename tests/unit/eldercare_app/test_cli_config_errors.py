"""A wrong ELDERCARE_* value or option is named in one clear line, not a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow  # starts the `eldercare` command
def test_bad_setting_is_named_without_a_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "ELDERCARE_RUN_DIR": str(tmp_path), "ELDERCARE_MQTT_PORT": "abc"}
    proc = subprocess.run(
        [sys.executable, "-m", "eldercare_app.cli", "services", "env"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert "configuration error: ELDERCARE_MQTT_PORT" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow  # starts the `eldercare` command
def test_an_unknown_role_is_refused_alone_before_anything_is_set_up(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    env = {**os.environ, "ELDERCARE_RUN_DIR": str(run_dir)}
    proc = subprocess.run(
        [sys.executable, "-m", "eldercare_app.cli", "run", "--role", "bogus"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    # The error line only: no log lines of a set-up (migrations, imports) before it.
    assert proc.stderr.splitlines() == [
        "error: --role must be one of ingest, detectors, pipeline, gateway"
    ]
    assert proc.stdout == ""
    assert not run_dir.exists()
