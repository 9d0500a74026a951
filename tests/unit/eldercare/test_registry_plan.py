"""The registry's plan step on its own: what the store holds and what is wanted in,
every create, update and delete out, with no database (the load and write steps
are tested on real SQLite and PostgreSQL in test_registry_store.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from eldercare.registry_apply import (
    Plan,
    RegistryError,
    StoredRegistry,
    load_registry_file,
    plan_changes,
)
from eldercare.registry_model import RegistryDocument, Site
from eldercare.registry_store import SITE_CHILDREN

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "registry.yaml"
EMPTY = StoredRegistry(
    sites={},
    children={k: {} for k in SITE_CHILDREN},
    devices_with_wanted_ids=[],
    bindings=[],
    org_units={},
)


def _wanted(doc: RegistryDocument) -> list[tuple[int, Site]]:
    return list(enumerate(doc.sites))


def _as_stored(plan: Plan, wanted: list[tuple[int, Site]]) -> StoredRegistry:
    """The store after `plan` was written on an empty one, as `load_stored` reads it
    for an apply of `wanted`."""
    wanted_ids = {d.id for _, site in wanted for d in site.devices}
    children = {
        kind: {
            (r["id"] if kind == "devices" else (r["site_id"], r["id"])): dict(r)
            for r in plan.inserts[kind]
        }
        for kind in SITE_CHILDREN
    }
    device_site = {r["id"]: r["site_id"] for r in plan.inserts["devices"]}
    return StoredRegistry(
        sites={r["id"]: dict(r) for r in plan.inserts["sites"]},
        children=children,
        devices_with_wanted_ids=[dict(r) for r in plan.inserts["devices"] if r["id"] in wanted_ids],
        bindings=[(b["key"], b["device_id"], device_site[b["device_id"]]) for b in plan.bindings],
        org_units={r["path"]: dict(r) for r in plan.inserts["org_units"]},
    )


def test_an_empty_store_gets_everything_created_in_order() -> None:
    doc = load_registry_file(EXAMPLE)
    plan = plan_changes(EMPTY, _wanted(doc), set(), "example")
    counts = plan.result.counts()
    assert counts["sites"] == {"created": len(doc.sites), "updated": 0, "deleted": 0}
    devices = sum(len(s.devices) for s in doc.sites)
    assert counts["devices"]["created"] == devices
    assert [r["position"] for r in plan.inserts["sites"]] == list(range(len(doc.sites)))
    assert plan.bindings, "the example's vendor devices are bound"
    assert not any(plan.updates.values()) and not any(plan.deletes.values())


def test_planning_what_is_stored_again_changes_nothing() -> None:
    doc = load_registry_file(EXAMPLE)
    stored = _as_stored(plan_changes(EMPTY, _wanted(doc), set(), "example"), _wanted(doc))
    again = plan_changes(stored, _wanted(doc), set(), "example", renumber_sites=True)
    assert again.result.total == 0


def test_a_changed_name_is_one_update_and_a_missing_site_is_deleted_only_with_prune() -> None:
    doc = load_registry_file(EXAMPLE)
    first, *rest = doc.sites
    created = plan_changes(EMPTY, _wanted(doc), set(), "example")
    renamed = first.model_copy(update={"name": first.name + "（新）"})
    stored = _as_stored(created, [(0, renamed)])
    plan = plan_changes(stored, [(0, renamed)], set(), "one site")
    assert plan.result.changes["sites"].updated == [first.id]
    assert plan.result.total == 1
    pruned = plan_changes(stored, [(0, first)], set(), "prune", prune=True)
    assert sorted(pruned.result.changes["sites"].deleted) == sorted(s.id for s in rest)
    assert {r["site_id"] for r in pruned.deletes["devices"]} == {s.id for s in rest if s.devices}


def test_a_device_id_another_site_holds_refuses_the_plan() -> None:
    doc = load_registry_file(EXAMPLE)
    owner = next(s for s in doc.sites if s.devices)
    device = owner.devices[0]
    other = next(s for s in doc.sites if s.id != owner.id)
    thief = other.model_copy(update={"devices": [*other.devices, device.model_copy()]})
    stored = _as_stored(plan_changes(EMPTY, _wanted(doc), set(), "example"), [(1, thief)])
    with pytest.raises(RegistryError) as refused:
        plan_changes(stored, [(1, thief)], set(), "thief.yaml")
    assert f"already used by site {owner.id!r}" in str(refused.value)
    assert "thief.yaml" in str(refused.value)
