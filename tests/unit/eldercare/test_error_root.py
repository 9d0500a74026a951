"""Every exception class the project defines derives from the one root, `EldercareError`."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

from eldercare.errors import EldercareError

PACKAGES = [
    "eldercare",
    "ingest",
    "detectors",
    "alerts",
    "gateway",
    "device_sim",
    "dashboards",
    "field_service",
    "eldercare_app",
    "benchmarks",
    "evaluation",
]


def _modules() -> list[str]:
    names: list[str] = []
    for package in PACKAGES:
        root = importlib.import_module(package)
        names.append(package)
        for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
            if not info.name.startswith("eldercare.migrations"):  # Alembic scripts
                names.append(info.name)
    return names


def _public_exceptions() -> list[type[BaseException]]:
    found: list[type[BaseException]] = []
    for name in _modules():
        module = importlib.import_module(name)
        for attr, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == name
                and not attr.startswith("_")
            ):
                found.append(value)
    return found


def test_the_walk_finds_the_projects_exceptions() -> None:
    names = {cls.__qualname__ for cls in _public_exceptions()}
    assert {"RegistryError", "TopicError", "AlertStateError", "ServiceError"} <= names


@pytest.mark.parametrize("cls", _public_exceptions(), ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_derives_from_the_root(cls: type[BaseException]) -> None:
    assert issubclass(cls, EldercareError)
