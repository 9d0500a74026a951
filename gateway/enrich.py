"""Alert views completed with the registry's names, for display."""

from __future__ import annotations

from eldercare.registry_index import RegistryIndex
from eldercare.registry_model import Site
from gateway.evidence_text import phrases
from gateway.ports import AlertOut, EvidenceOut


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
            "evidence": [_evidence(e, site) for e in alert.evidence],
        }
    )


def _evidence(e: EvidenceOut, site: Site) -> EvidenceOut:
    room = site.room(e.room_id)
    device = site.device(e.device_id) if e.device_id else None
    return e.model_copy(
        update={
            "room_name": (room.name or room.id) if room else None,
            "device_kind": device.kind.value if device else None,
            # Structured evidence is rendered as it is; older stored evidence, which has
            # only its English summary, is read back into phrases.
            "phrases": e.phrases or phrases(e.summary),
        }
    )
