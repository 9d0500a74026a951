"""The detector catalogue and its runtime (see docs/detectors.md).

- `base.Detector`: the protocol every detector follows;
- `catalogue.CATALOGUE`: every rule, its settings model and the sites it applies to;
- `detector_host.DetectorHost`: feeds readings to each site's detectors and collects
  their transitions, with no I/O (`site_detectors.SiteDetectors` is one site's);
- `runtime.DetectorRuntime`: the async side: timers in `wall` or `event` clock mode,
  snapshots persisted, transitions handed on.

The names below are the package's public API; the rest is internal."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from detectors.base import Detector
    from detectors.catalogue import CATALOGUE, registry_problems
    from detectors.detector_host import DetectorHost
    from detectors.runtime import DetectorRuntime
    from detectors.settings import DetectorSettingsError
    from detectors.site_detectors import SiteDetectors
    from detectors.snapshot_store import DetectorSnapshot, SiteStates, SnapshotStore

__all__ = [
    "CATALOGUE",
    "Detector",
    "DetectorHost",
    "DetectorRuntime",
    "DetectorSettingsError",
    "DetectorSnapshot",
    "SiteDetectors",
    "SiteStates",
    "SnapshotStore",
    "registry_problems",
]

# Loaded on first use: importing one module of the package does not import them all.
_EXPORTED_FROM = {
    "Detector": "detectors.base",
    "CATALOGUE": "detectors.catalogue",
    "registry_problems": "detectors.catalogue",
    "DetectorHost": "detectors.detector_host",
    "DetectorRuntime": "detectors.runtime",
    "DetectorSettingsError": "detectors.settings",
    "SiteDetectors": "detectors.site_detectors",
    "DetectorSnapshot": "detectors.snapshot_store",
    "SiteStates": "detectors.snapshot_store",
    "SnapshotStore": "detectors.snapshot_store",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTED_FROM.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
