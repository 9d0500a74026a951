"""The simulated population and its registry file."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import yaml

from device_sim.population import PopulationConfig, build_population, write_registry
from device_sim.resident import Profile
from device_sim.routine import Calendar
from eldercare.domain import DeviceKind, SiteKind
from eldercare.registry_index import RegistryIndex
from eldercare.registry_model import RegistryDocument


def _sites(**kw: object):  # type: ignore[no-untyped-def]
    cfg = PopulationConfig(**{"homes": 30, "institutions": 1, "seed": 4, **kw})  # type: ignore[arg-type]
    return build_population(cfg, Calendar(date(2026, 11, 2), "Asia/Shanghai"))


def test_registry_yaml_validates_and_round_trips(tmp_path: Path) -> None:
    sites = _sites(fmt="mixed", apprise=("json://127.0.0.1:9/notify/{site}/{contact}",))
    path = tmp_path / "registry.yaml"
    written = write_registry(sites, path)
    loaded = RegistryDocument.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    assert loaded == written
    assert len(loaded.sites) == 31
    index = RegistryIndex(loaded)
    assert len(index) == sum(len(s.devices) for s in sites)
    text = path.read_text(encoding="utf-8")
    assert "滨州市/滨城区/" in text  # readable Chinese, not \u escapes


def test_homes_have_the_sensors_the_rules_need() -> None:
    for site in _sites():
        if site.kind is not SiteKind.HOME:
            continue
        reg = site.to_registry()
        kinds = {d.kind for d in reg.devices}
        assert {DeviceKind.MOTION, DeviceKind.DOOR, DeviceKind.BED, DeviceKind.FALL_RADAR,
                DeviceKind.SOS_BUTTON, DeviceKind.GATEWAY} <= kinds  # fmt: skip
        assert [d.room for d in reg.devices if d.outer_door] == ["entrance"]
        assert {d.room for d in reg.devices if d.kind is DeviceKind.MOTION} == {
            r.id for r in reg.rooms
        }
        assert reg.organisation.startswith("滨州市/滨城区/")
        assert len(reg.org_path) == 4
        assert reg.latitude is not None and abs(reg.latitude - 37.38) < 0.1
        assert reg.longitude is not None and abs(reg.longitude - 117.97) < 0.1
        (resident,) = reg.residents
        assert 2 <= len(resident.name) <= 3
        assert reg.contacts and all(c.residents == [resident.id] for c in reg.contacts)


def test_institution_has_floors_rooms_and_beds() -> None:
    inst = next(s for s in _sites() if s.kind is SiteKind.INSTITUTION)
    reg = inst.to_registry()
    floors = {r.floor for r in reg.rooms}
    assert floors == {"1F", "2F", "3F"}
    assert len(reg.beds) == 48
    assert reg.org_path[:2] == ("滨州市", "滨城区") and len(reg.org_path) == 3
    for resident in reg.residents:
        assert resident.bed is not None
        bed = next(b for b in reg.beds if b.id == resident.bed)
        assert resident.room == bed.room
    profiles = {r.profile for r in inst.residents}
    assert Profile.BED_BOUND in profiles
    bed_devices = [d for d in reg.devices if d.kind is DeviceKind.BED]
    assert all(d.bed and d.resident for d in bed_devices)


def test_formats_and_contacts() -> None:
    native = _sites(fmt="native")
    assert all(d.z2m_name is None for s in native for d in s.devices)
    z2m = [s for s in _sites(fmt="z2m") if s.kind is SiteKind.HOME]
    for site in z2m:
        reg = site.to_registry()
        bound = {d.kind for d in reg.devices if d.vendor and d.vendor.z2m}
        assert bound == {DeviceKind.MOTION, DeviceKind.DOOR, DeviceKind.BED,
                         DeviceKind.FALL_RADAR, DeviceKind.SOS_BUTTON,
                         DeviceKind.SMOKE_ALARM, DeviceKind.GAS_ALARM,
                         DeviceKind.WATER_LEAK, DeviceKind.CLIMATE}  # fmt: skip
        gw = next(d for d in reg.devices if d.kind is DeviceKind.GATEWAY)
        assert gw.vendor is None  # the site heartbeat is always native
    mixed = _sites(fmt="mixed", homes=60, institutions=0)
    share = sum(s.fmt == "z2m" for s in mixed) / len(mixed)
    assert 0.1 < share < 0.5
    contacts = [c for s in mixed for c in s.contacts]
    assert {c.language for c in contacts} == {"zh-CN", "en"}
    assert sum(c.language == "zh-CN" for c in contacts) > 0.75 * len(contacts)
    assert all(c.apprise == [] for c in contacts)  # no URLs unless given


def test_same_seed_same_population_other_seed_other_people() -> None:
    a = [s.to_registry() for s in _sites()]
    b = [s.to_registry() for s in _sites()]
    c = [s.to_registry() for s in _sites(seed=5)]
    assert a == b
    assert [s.residents for s in a] != [s.residents for s in c]
