"""The roles `eldercare run --role` runs (docs/cluster.md), by name.

A module of their own, free of imports, so the command refuses an unknown role before
it imports a role's stages or sets anything up (settings, logging, migrations): the
error then comes alone.
"""

from __future__ import annotations

from typing import Literal

Role = Literal["ingest", "detectors", "pipeline", "gateway"]
ROLES: tuple[Role, ...] = ("ingest", "detectors", "pipeline", "gateway")
