"""`eldercare GROUP ...` imports only that group's package: every command would otherwise
pay for importing them all (about a second of CPU on a loaded 2-core machine)."""

from __future__ import annotations

import json
import subprocess
import sys

LEAVES = ("benchmarks", "evaluation")  # packages nothing but their own group imports
PROBE = """
import json, sys
argv, leaves = json.loads(sys.argv[1]), set(json.loads(sys.argv[2]))
sys.argv = ["eldercare", *argv]
from eldercare_app import cli
try:
    cli.main()
except SystemExit:
    pass
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules} & leaves)))
"""


def _leaves_imported(*argv: str) -> tuple[list[str], str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(argv), json.dumps(LEAVES)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    *shown, last = done.stdout.strip().splitlines()
    return json.loads(last), "\n".join(shown)


def test_a_group_s_command_imports_no_other_group() -> None:
    imported, shown = _leaves_imported("registry", "--help")
    assert imported == []
    assert "apply" in shown


def test_the_top_level_help_still_lists_every_group() -> None:
    imported, shown = _leaves_imported("--help")
    assert imported == sorted(LEAVES)
    for group in ("eval", "bench", "sim", "registry", "alerts", "run", "services"):
        assert f" {group} " in shown
