"""A wrong ELDERCARE_* value is named in one clear line, not a traceback."""

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
