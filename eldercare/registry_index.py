"""Fast lookups over a registry snapshot, for the hot path of ingest.

Built once from a `RegistryDocument` and swapped whole when the registry
changes, so readers never see a half-applied registry.
"""

from __future__ import annotations

from dataclasses import dataclass

from eldercare.registry_model import Device, RegistryDocument, Site, vendor_keys


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


class RegistryIndex:
    def __init__(self, document: RegistryDocument, version: int = 0) -> None:
        self.document = document
        self.version = version
        self.sites: dict[str, Site] = {s.id: s for s in document.sites}
        self._by_device: dict[str, ResolvedDevice] = {}
        self._by_vendor: dict[tuple[str, ...], ResolvedDevice] = {}
        for site in document.sites:
            for device in site.devices:
                resolved = ResolvedDevice(site, device)
                self._by_device[device.id] = resolved
                for key in vendor_keys(device):
                    self._by_vendor[key] = resolved

    @classmethod
    def empty(cls) -> RegistryIndex:
        return cls(RegistryDocument())

    def resolve_native(self, site_id: str, device_id: str) -> ResolvedDevice | None:
        """A native topic names both; a device speaking for another site is not resolved."""
        resolved = self._by_device.get(device_id)
        if resolved is None or resolved.site_id != site_id:
            return None
        return resolved

    def resolve_vendor(self, key: tuple[str, ...]) -> ResolvedDevice | None:
        return self._by_vendor.get(key)

    def device(self, device_id: str) -> ResolvedDevice | None:
        return self._by_device.get(device_id)

    def __len__(self) -> int:
        return len(self._by_device)
