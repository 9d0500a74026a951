"""Fast lookups over a registry snapshot, for the hot path of ingest.

Built once from a `RegistryDocument` and swapped whole when the registry
changes, so readers never see a half-applied registry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from eldercare.registry_model import Device, RegistryDocument, Site, vendor_keys

# The detector setting a declared absence sets for its resident.
PLANNED_ABSENCE_SETTING = ("not_returned", "planned_absence_until")


@dataclass(frozen=True, slots=True)
class PlannedAbsence:
    """A declared absence of one resident: away until `until` (site-local
    YYYY-MM-DDTHH:MM; `until_ts` the same instant, epoch seconds), said by `declared_by`
    at `declared_at` (epoch seconds)."""

    resident_id: str
    site_id: str
    until: str
    until_ts: float
    note: str
    declared_by: str
    declared_at: float


@dataclass(frozen=True, slots=True)
class ResolvedDevice:
    site: Site
    device: Device

    @property
    def site_id(self) -> str:
        return self.site.id

    @property
    def device_id(self) -> str:
        return self.device.id

    @property
    def room_id(self) -> str | None:
        if self.device.room is not None:
            return self.device.room
        if self.device.bed is not None:
            bed = next((b for b in self.site.beds if b.id == self.device.bed), None)
            return bed.room if bed else None
        return None

    @property
    def resident_id(self) -> str | None:
        if self.device.resident is not None:
            return self.device.resident
        # A home with one resident: every device there watches that resident.
        if len(self.site.residents) == 1:
            return self.site.residents[0].id
        return None


_Resolved = tuple[dict[str, "ResolvedDevice"], dict[tuple[str, ...], "ResolvedDevice"]]


class RegistryIndex:
    def __init__(
        self,
        document: RegistryDocument,
        version: int = 0,
        planned_absences: Mapping[tuple[str, str], PlannedAbsence] | None = None,
        *,
        devices_now: bool = True,
    ) -> None:
        """`devices_now`: resolve every device now (ingest: not on its first message), else
        when first asked (a detector worker never asks: its readings name their site)."""
        self.document = document
        self.version = version
        self.sites: dict[str, Site] = {s.id: s for s in document.sites}
        self._resolved: _Resolved | None = None
        if devices_now:
            self._devices()
        self._declare(planned_absences)

    def _devices(self) -> _Resolved:
        """(device id → device, vendor key → device), built once."""
        resolved = self._resolved
        if resolved is None:
            by_device: dict[str, ResolvedDevice] = {}
            by_vendor: dict[tuple[str, ...], ResolvedDevice] = {}
            for site in self.document.sites:
                for device in site.devices:
                    one = ResolvedDevice(site, device)
                    by_device[device.id] = one
                    for key in vendor_keys(device):
                        by_vendor[key] = one
            resolved = self._resolved = (by_device, by_vendor)
        return resolved

    def _declare(self, planned_absences: Mapping[tuple[str, str], PlannedAbsence] | None) -> None:
        # Declared absences by (site, resident) (live state, not part of the registry
        # document); resident ids are unique only within a site.
        self.planned_absences: dict[tuple[str, str], PlannedAbsence] = dict(planned_absences or {})
        self._absences_by_site: dict[str, list[PlannedAbsence]] = {}
        for p in self.planned_absences.values():
            self._absences_by_site.setdefault(p.site_id, []).append(p)
        self._detector_sites: dict[str, Site] = {}

    @classmethod
    def empty(cls) -> RegistryIndex:
        return cls(RegistryDocument())

    @classmethod
    def merged(
        cls,
        parts: Sequence[RegistryIndex],
        version: int,
        planned_absences: Mapping[tuple[str, str], PlannedAbsence] | None = None,
        *,
        devices_now: bool = True,
    ) -> RegistryIndex:
        """One index over indexes of disjoint sites (a cluster worker's partitions, each
        read on its own), their sites and resolved devices shared, not built again: a
        worker taking partitions one by one would otherwise resolve every device it holds
        at each one (`devices_now` False: the devices are resolved when first asked)."""
        index = cls.__new__(cls)
        # Each part was a valid document; disjoint sites keep the whole one valid.
        index.document = RegistryDocument.model_construct(
            sites=[s for part in parts for s in part.document.sites]
        )
        index.version = version
        index.sites = {}
        for part in parts:
            index.sites.update(part.sites)
        index._resolved = None
        if devices_now:
            by_device: dict[str, ResolvedDevice] = {}
            by_vendor: dict[tuple[str, ...], ResolvedDevice] = {}
            for part in parts:
                part_devices, part_vendors = part._devices()
                by_device.update(part_devices)
                by_vendor.update(part_vendors)
            index._resolved = (by_device, by_vendor)
        index._declare(planned_absences)
        return index

    def detector_site(self, site_id: str) -> Site | None:
        """The site as its detectors see it: the registry entry with its residents'
        declared absences laid over their overrides (the document itself, which the API
        edits and exports, never holds them). The same object for the life of the index,
        so the runtime rebuilds a site's detectors only when this really changed."""
        site = self.sites.get(site_id)
        if site is None:
            return None
        declared = self._absences_by_site.get(site_id)
        if not declared:
            return site
        cached = self._detector_sites.get(site_id)
        if cached is None:
            rule, key = PLANNED_ABSENCE_SETTING
            until = {p.resident_id: p.until for p in declared}
            residents = [
                r.model_copy(
                    update={
                        "detectors": {
                            **r.detectors,
                            rule: {**r.detectors.get(rule, {}), key: until[r.id]},
                        }
                    }
                )
                if r.id in until
                else r
                for r in site.residents
            ]
            cached = site.model_copy(update={"residents": residents})
            self._detector_sites[site_id] = cached
        return cached

    def resolve_native(self, site_id: str, device_id: str) -> ResolvedDevice | None:
        """A native topic names both; a device speaking for another site is not resolved."""
        resolved = self._devices()[0].get(device_id)
        if resolved is None or resolved.site_id != site_id:
            return None
        return resolved

    def resolve_vendor(self, key: tuple[str, ...]) -> ResolvedDevice | None:
        return self._devices()[1].get(key)

    def device(self, device_id: str) -> ResolvedDevice | None:
        return self._devices()[0].get(device_id)

    def __len__(self) -> int:
        return len(self._devices()[0])
