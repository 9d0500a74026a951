"""A simulated site (a home or an institution): its rooms, residents and devices.

`SimSite` is the simulator's own richer view; `to_registry()` turns it into the
registry model the platform applies, so the platform knows exactly the devices
the simulator publishes for.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from device_sim.device import SimDevice
from device_sim.resident import ResidentSpec
from device_sim.routine import Calendar, Routine
from eldercare.domain import DeviceKind, SiteKind
from eldercare.registry_model import (
    Bed,
    Contact,
    Device,
    Resident,
    Room,
    Site,
    VendorBinding,
    Z2MBinding,
)

Z2M_BASE_TOPIC = "zigbee2mqtt"


@dataclass(frozen=True, slots=True)
class Outage:
    """Devices of a site silent during [start, end): one device, or all (device_id None)."""

    start: float
    end: float
    device_id: str | None = None
    # Live runs also cut the site's connection without a goodbye, so the broker
    # publishes the gateway's Last Will, as a real power cut would.
    cut_connection: bool = False


@dataclass(frozen=True, slots=True)
class VitalsOverride:
    device_id: str
    start: float
    end: float
    heart_rate: float
    breathing_rate: float


@dataclass(slots=True)
class SimSite:
    id: str
    kind: SiteKind
    name: str
    organisation: str
    address: str
    latitude: float
    longitude: float
    rooms: list[Room]
    residents: list[ResidentSpec]
    devices: list[SimDevice]
    beds: list[Bed] = field(default_factory=list)
    contacts: list[Contact] = field(default_factory=list)
    timezone: str = "Asia/Shanghai"
    fmt: str = "native"  # native | z2m (z2m homes still have a native gateway/wearable/vitals)
    routines: dict[str, Routine] = field(default_factory=dict)
    outages: list[Outage] = field(default_factory=list)
    vitals_overrides: list[VitalsOverride] = field(default_factory=list)
    # Incident facts (SOS presses, fall reports, accelerometer bursts), see sensors.Fact.
    extra_facts: list[object] = field(default_factory=list)
    # Spans whose indoor temperature a scenario scripts (its climate readings are in
    # extra_facts); the climate sensors' ordinary reports are left out there.
    scripted_climate: list[tuple[float, float]] = field(default_factory=list)

    def attach_routines(self, seed: int, calendar: Calendar) -> None:
        self.routines = {r.id: Routine(r, seed, calendar) for r in self.residents}

    @property
    def gateway(self) -> SimDevice:
        return next(d for d in self.devices if d.kind is DeviceKind.GATEWAY)

    def device(self, device_id: str) -> SimDevice:
        return next(d for d in self.devices if d.id == device_id)

    def devices_of(self, kind: DeviceKind) -> list[SimDevice]:
        return [d for d in self.devices if d.kind is kind]

    def resident_device(self, resident_id: str, kind: DeviceKind) -> SimDevice | None:
        return next((d for d in self.devices if d.kind is kind and d.resident == resident_id), None)

    def room_device(self, room_id: str, kind: DeviceKind) -> SimDevice | None:
        return next((d for d in self.devices if d.kind is kind and d.room == room_id), None)

    @property
    def outer_door(self) -> SimDevice | None:
        return next((d for d in self.devices if d.outer_door), None)

    def to_registry(self) -> Site:
        residents = [
            Resident(
                id=r.id,
                name=r.name,
                birth_year=r.birth_year,
                sex=r.sex,
                room=r.places.get("bedroom"),
                bed=r.bed_id,
                flags=list(r.flags),
            )
            for r in self.residents
        ]
        devices = [
            Device(
                id=d.id,
                kind=d.kind,
                room=d.room,
                bed=d.bed,
                resident=d.resident,
                outer_door=d.outer_door,
                room_door=d.room_door,
                report_interval_s=d.report_interval_s,
                vendor=VendorBinding(
                    z2m=Z2MBinding(base_topic=Z2M_BASE_TOPIC, friendly_name=d.z2m_name)
                )
                if d.z2m_name is not None
                else None,
            )
            for d in self.devices
        ]
        return Site(
            id=self.id,
            kind=self.kind,
            name=self.name,
            organisation=self.organisation,
            address=self.address,
            latitude=self.latitude,
            longitude=self.longitude,
            timezone=self.timezone,
            rooms=self.rooms,
            beds=self.beds,
            residents=residents,
            devices=devices,
            contacts=self.contacts,
        )
