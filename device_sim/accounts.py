"""Which MQTT account each simulated site logs in with.

A real home's gateway logs in with its site's own account (user name = site id),
whose ACL lets it publish only under its own topics (`eldercare_app.mqtt_accounts`). When
the platform manages the project's local broker (`eldercare run`, `make demo`), it
creates those accounts as it sees the registry and leaves each new password in
`<broker dir>/issued/<site id>`; the simulator reads them there, as an installer
would copy them into each gateway. Sites without a password file log in with the
configured account (the platform's, or none).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path

from eldercare.settings import Settings

# The folder of issued site passwords depends on how the broker was set up, which the
# simulator does not know: the `eldercare` command puts a finder in the click context's
# `meta` under this key (eldercare_app.cli: the local broker's), and `eldercare sim`
# uses it when no `--site-credentials` folder is given.
ISSUED_DIR_FINDER = "device_sim.issued_dir_finder"

IssuedDirFinder = Callable[[Settings, str, int], Path | None]


def read_site_passwords(folder: Path, site_ids: Iterable[str]) -> dict[str, str]:
    """Passwords of the given sites from a folder of `<site id>` files; sites without a
    (non-empty) file are left out."""
    out: dict[str, str] = {}
    for site_id in site_ids:
        try:
            password = (folder / site_id).read_text().strip()
        except (FileNotFoundError, NotADirectoryError):
            continue
        if password:
            out[site_id] = password
    return out


def wait_site_passwords(
    folder: Path,
    site_ids: list[str],
    wait_s: float,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> dict[str, str]:
    """`read_site_passwords`, waiting up to `wait_s` for every site's file: the platform
    creates the accounts shortly after it sees the registry (and then reloads the broker,
    hence the short pause once all are there)."""
    deadline = monotonic() + wait_s
    while True:
        found = read_site_passwords(folder, site_ids)
        if len(found) == len(site_ids):
            sleep(1.0)
            return found
        if monotonic() >= deadline:
            return found
        sleep(0.5)
