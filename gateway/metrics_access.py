"""Who may read `/metrics`: a scraper holding the metrics bearer token (Prometheus's
`authorization: {credentials: ...}`), or a signed-in member of staff.

The token is `ELDERCARE_METRICS_TOKEN` (or `_FILE`) when configured; otherwise one
is made on first use in `<run_dir>/metrics.token` (0600), which the local tools
(`eldercare services status`, the benchmarks and evaluations) read from the same run
directory, so the figures stay private without any setup.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from eldercare.settings import Settings

TOKEN_FILE = "metrics.token"


def token_file(run_dir: Path) -> Path:
    return run_dir / TOKEN_FILE


def run_dir_token(run_dir: Path) -> str:
    """The run directory's metrics token, made (0600) if there is none yet."""
    path = token_file(run_dir)
    try:
        text = path.read_text().strip()
        if text:
            return text
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return path.read_text().strip()
    with os.fdopen(fd, "w") as out:
        out.write(token + "\n")
    return token


def metrics_token(settings: Settings) -> str:
    return settings.metrics_token or run_dir_token(settings.run_dir)


def scrape_headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token_matches(header: str, token: str) -> bool:
    """Whether an `Authorization` header carries `token` (constant-time)."""
    scheme, _, value = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip(), token)
