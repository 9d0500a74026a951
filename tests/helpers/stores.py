"""The platform's SQLite store made unwritable from outside, as another process would."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from eldercare.settings import Settings


def db_path(settings: Settings) -> Path:
    return Path(settings.database_url.split("///", 1)[1].split("?", 1)[0])


@contextmanager
def write_locked(path: Path) -> Iterator[Callable[[], None]]:
    """Another process holds the SQLite file write-locked (`BEGIN IMMEDIATE`) until the
    returned function is called (or the block ends)."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys\n"
            f"c = sqlite3.connect({str(path)!r}, isolation_level=None)\n"
            "c.execute('BEGIN IMMEDIATE')\n"
            "print('locked', flush=True)\n"
            "sys.stdin.readline()\n"
            "c.execute('ROLLBACK')\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"

    def release() -> None:
        if holder.poll() is None:
            assert holder.stdin is not None
            holder.stdin.write("\n")
            holder.stdin.close()
            holder.wait(10)

    try:
        yield release
    finally:
        release()
