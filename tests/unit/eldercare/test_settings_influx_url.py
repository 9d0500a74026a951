"""Start-up refuses an InfluxDB URL it could never write to, naming the setting."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from eldercare.settings import Settings


@pytest.mark.parametrize(
    "url", ["127.0.0.1:8086", "localhost", "ftp://h:1", "http://", "http://h:x"]
)
def test_malformed_influx_url_is_refused(url: str, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="influx_url"):
        Settings(run_dir=tmp_path, influx_url=url)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8086", "https://influx.example.org/"])
def test_well_formed_influx_url_is_kept(url: str, tmp_path: Path) -> None:
    assert Settings(run_dir=tmp_path, influx_url=url).influx_url == url


@pytest.mark.slow  # starts the `eldercare` command
def test_run_refuses_to_start_with_a_url_without_scheme(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "ELDERCARE_RUN_DIR": str(tmp_path),
        "ELDERCARE_INFLUX_URL": "127.0.0.1:8086",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "eldercare_app.cli", "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert "configuration error: ELDERCARE_INFLUX_URL" in proc.stderr
    assert "http://" in proc.stderr
    assert "Traceback" not in proc.stderr
