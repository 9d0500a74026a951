"""Every dashboard the platform ships, built in one place."""

from __future__ import annotations

from grafana_foundation_sdk.models.dashboard import Dashboard

from dashboards import coverage, institution, operations, resident, site_map
from dashboards.floors import institutions
from eldercare.registry_model import RegistryDocument


def build_all(registry: RegistryDocument | None = None) -> list[Dashboard]:
    """Operations, Resident, Map, Coverage, and Institution: one per institution of the
    registry (with its floors), or the generic one when there is no registry."""
    boards = [operations.build(), resident.build(), site_map.build(), coverage.build()]
    places = institutions(registry) if registry is not None else []
    if places:
        boards += [institution.build(inst) for inst in places]
    else:
        boards.append(institution.build())
    return boards
