"""A detector worker's process stays lean: the role's module does not import the gateway,
its web framework or the alert pipeline (~60 MB of a ~160 MB worker, per worker)."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("fastapi", "uvicorn", "gateway.app", "alerts.pipeline", "ingest.service")


def test_the_cluster_roles_module_imports_no_web_or_pipeline_code() -> None:
    code = (
        "import sys\n"
        "import eldercare_app.cli, eldercare_app.cluster_roles\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
