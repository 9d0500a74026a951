"""`RegistryIndex.merged`: a cluster worker's index over the partitions it reads one by one."""

from __future__ import annotations

from eldercare.registry_index import PlannedAbsence, RegistryIndex
from eldercare.registry_model import RegistryDocument, Site
from tests.helpers.detectors import home_site


def site(i: int) -> Site:
    return home_site(site_id=f"home-{i}", device_suffix=f"-{i}")


def test_merged_index_answers_as_one_built_from_all_the_sites() -> None:
    sites = [site(i) for i in range(4)]
    absence = PlannedAbsence("res-1", "home-2", "2026-01-02T10:00", 1.0, "", "op", 0.0)
    declared = {("home-2", "res-1"): absence}
    whole = RegistryIndex(RegistryDocument(sites=sites), 7, declared)
    parts = [
        RegistryIndex(RegistryDocument(sites=sites[:1]), 7),
        RegistryIndex(RegistryDocument(sites=sites[1:]), 7),
    ]
    merged = RegistryIndex.merged(parts, 7, declared)
    assert merged.version == 7
    assert list(merged.sites) == list(whole.sites)
    assert [s.id for s in merged.document.sites] == [s.id for s in sites]
    assert len(merged) == len(whole)
    for s in sites:
        assert merged.sites[s.id] is parts[0 if s.id == "home-0" else 1].sites[s.id]
        for d in s.devices:
            found = merged.device(d.id)
            assert found is not None and found.site_id == s.id
            assert merged.resolve_native(s.id, d.id) == whole.resolve_native(s.id, d.id)
    assert merged.planned_absences == whole.planned_absences
    assert merged.detector_site("home-2") == whole.detector_site("home-2")
    assert merged.detector_site("home-2") != merged.sites["home-2"], "absence laid over"
    assert merged.device("nowhere") is None


def test_a_worker_index_resolves_its_devices_only_when_asked() -> None:
    """A detector worker's index (`devices_now=False`) holds no resolved device until one
    is asked for (its readings name their site), then answers as an eager one."""
    sites = [site(i) for i in range(3)]
    whole = RegistryIndex(RegistryDocument(sites=sites), 3)
    parts = [
        RegistryIndex(RegistryDocument(sites=sites[:2]), 3, devices_now=False),
        RegistryIndex(RegistryDocument(sites=sites[2:]), 3, devices_now=False),
    ]
    merged = RegistryIndex.merged(parts, 3, devices_now=False)
    assert merged._resolved is None and all(p._resolved is None for p in parts)
    assert whole._resolved is not None
    assert len(merged) == len(whole)
    for s in sites:
        for d in s.devices:
            assert merged.resolve_native(s.id, d.id) == whole.resolve_native(s.id, d.id)
            assert merged.resolve_native("elsewhere", d.id) is None
