"""Grafana dashboards built as code from the registry (`eldercare dashboards`). The
names below are the package's public API; the rest is internal."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dashboards.build import BuildOutput, dashboard_docs, write_build
    from dashboards.catalogue import build_all

__all__ = [
    "BuildOutput",
    "build_all",
    "dashboard_docs",
    "write_build",
]

# Loaded on first use: importing one module of the package does not import them all.
_EXPORTED_FROM = {
    "BuildOutput": "dashboards.build",
    "dashboard_docs": "dashboards.build",
    "write_build": "dashboards.build",
    "build_all": "dashboards.catalogue",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTED_FROM.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
