"""Alert views completed with the registry's names, for display."""

from __future__ import annotations

from eldercare.registry_index import RegistryIndex
from gateway.ports import AlertOut


def enrich(alert: AlertOut, index: RegistryIndex) -> AlertOut:
    site = index.sites.get(alert.site_id)
    if site is None:
        return alert
    resident = site.resident(alert.resident_id)
    room_id = alert.room_id or (resident.room if resident else None)
    room = site.room(room_id)
    return alert.model_copy(
        update={
            "site_name": site.name,
            "site_address": site.address,
            "resident_name": resident.name if resident else None,
            "room_id": room_id,
            "room_name": (room.name or room.id) if room else None,
        }
    )
