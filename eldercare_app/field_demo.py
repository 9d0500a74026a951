"""The field service in `make demo`: responders for the simulated district, visit
categories, and the accounts the simulated people (field agents) sign in with.

One grid worker (网格员) per street, on duty, based at the middle of the street's
homes; a district volunteer off duty; a nurse per care home. Residents living with
dementia are visited weekly, frail and bed-bound ones monthly.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

from eldercare.cli_errors import fail

CATEGORIES = [
    ("dementia", "week", "dementia", "认知障碍老人", "Living with dementia"),
    ("frail", "month", "frail", "体弱老人", "Frail"),
    ("bed_bound", "month", "bed_bound", "失能老人", "Bed-bound"),
]


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "eldercare_app.cli", *args]


def _call(args: list[str], env: dict[str, str], stdin: str | None = None) -> None:
    proc = subprocess.run(args, env=env, input=stdin, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        fail(f"demo: {' '.join(args[3:6])} failed")


def responders_for(sites: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """(username, name, kind, area, lat, lon, on duty) for the population's streets and homes."""
    streets: dict[str, list[tuple[float, float]]] = defaultdict(list)
    out: list[dict[str, Any]] = []
    for s in sites:
        path = s["organisation"].split("/")
        if s.get("kind") == "institution":
            out.append({"username": f"nurse-{s['id']}", "name": f"{s['name']}护理员",
                        "kind": "nurse", "area": s["organisation"],
                        "lat": s.get("latitude") or 0.0, "lon": s.get("longitude") or 0.0,
                        "on_duty": True})  # fmt: skip
        elif len(path) >= 3 and s.get("latitude") is not None:
            streets["/".join(path[:3])].append((s["latitude"], s["longitude"]))
    for i, (street, points) in enumerate(sorted(streets.items()), start=1):
        lat = sum(p[0] for p in points) / len(points)
        lon = sum(p[1] for p in points) / len(points)
        out.append({"username": f"grid-{i}", "name": f"{street.split('/')[-1]}网格员",
                    "kind": "grid_worker", "area": street, "lat": lat, "lon": lon,
                    "on_duty": True})  # fmt: skip
    if streets:
        district = "/".join(next(iter(streets)).split("/")[:2])
        all_points = [p for ps in streets.values() for p in ps]
        lat = sum(p[0] for p in all_points) / len(all_points)
        lon = sum(p[1] for p in all_points) / len(all_points)
        out.append({"username": "volunteer-1", "name": "志愿者 小赵", "kind": "volunteer",
                    "area": district, "lat": lat, "lon": lon, "on_duty": False})  # fmt: skip
    return out


def prepare_field(
    env: dict[str, str], registry: Path, demo_dir: Path, city: str, resident: str
) -> Path:
    """Create responders, visit categories and the agents' own accounts (kept, 0600, in
    `<demo>/field-accounts.json` so a second run signs in with the same passwords).
    The simulated family member is `resident`'s (`site_id/resident_id`: ids are unique
    only within a site); the operator stand-in works `city`."""
    site_id, _, resident_id = resident.partition("/")
    path = demo_dir / "field-accounts.json"
    known: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    passwords: dict[str, str] = known.get("passwords", {})
    sites = (yaml.safe_load(registry.read_text()) or {}).get("sites", [])
    people = responders_for(sites)

    def password(user: str) -> str | None:
        """A new password for a new account; None when the account exists (kept one)."""
        return None if user in passwords else passwords.setdefault(user, secrets.token_urlsafe(12))

    for r in people:
        args = ["field", "responders", "add", "--username", r["username"], "--name", r["name"],
                "--kind", r["kind"], "--area", r["area"],
                "--on-duty" if r["on_duty"] else "--off-duty"]  # fmt: skip
        new = password(r["username"])
        _call(
            _cli(*args, *(["--password-stdin"] if new else [])), env, (new + "\n") if new else None
        )
    for cid, period, flag, zh, en in CATEGORIES:
        _call(_cli("field", "categories", "set", cid, "--period", period, "--flag", flag,
                   "--name-zh", zh, "--name-en", en), env)  # fmt: skip
    for user, role, extra in (
        ("operator-sim", "operator", ["--scope", city, "--name", "模拟值班员"]),
        ("family-sim", "family", ["--residents", resident]),
    ):
        new = password(user)
        if new:
            _call(_cli("users", "add", "--username", user, "--role", role, *extra,
                       "--password-stdin"), env, new + "\n")  # fmt: skip
    doc = {
        "passwords": passwords,
        "responders": [{**r, "password": passwords[r["username"]]} for r in people],
        "operator": {"username": "operator-sim", "password": passwords["operator-sim"]},
        "family": {
            "username": "family-sim",
            "password": passwords["family-sim"],
            "site_id": site_id,
            "resident_id": resident_id,
        },
    }
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=1))
    path.chmod(0o600)
    return path
