"""Each stage package names its public API in `__all__`; every name resolves (loaded
on first use), is the object its home module defines, and nothing else leaks."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

STAGES = ["ingest", "detectors", "alerts", "device_sim", "dashboards"]


@pytest.mark.parametrize("name", STAGES)
def test_every_exported_name_resolves_to_its_home_module(name: str) -> None:
    package = importlib.import_module(name)
    exported = package.__all__
    assert exported == sorted(exported) and len(set(exported)) == len(exported)
    for attr in exported:
        home = importlib.import_module(package._EXPORTED_FROM[attr])
        assert getattr(package, attr) is getattr(home, attr), f"{name}.{attr}"
    assert set(package._EXPORTED_FROM) == set(exported)
    # A submodule of the same name would shadow the export once it is imported.
    submodules = {m.name for m in pkgutil.iter_modules(package.__path__)}
    assert not submodules & set(exported)
    with pytest.raises(AttributeError, match="no attribute 'not_a_public_name'"):
        _ = package.not_a_public_name


def test_a_submodule_is_still_imported_by_name() -> None:
    from alerts import decisions

    assert decisions.__name__ == "alerts.decisions"
