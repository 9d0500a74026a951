"""The device simulator: simulated homes and their residents publishing as real devices
would, with the ground truth of what happened (see device_sim/README.md). The names
below are the package's public API; the rest is internal."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from device_sim.population import write_registry
    from device_sim.publisher import BrokerConfig, MqttPublisher
    from device_sim.runner import RunStats, run
    from device_sim.scenarios import ScenarioError, parse_specs
    from device_sim.simulation import SimConfig, Simulation
    from device_sim.truth import MatchReport, match_alerts, read_truth, write_truth

__all__ = [
    "BrokerConfig",
    "MatchReport",
    "MqttPublisher",
    "RunStats",
    "ScenarioError",
    "SimConfig",
    "Simulation",
    "match_alerts",
    "parse_specs",
    "read_truth",
    "run",
    "write_registry",
    "write_truth",
]

# Loaded on first use: importing one module of the package does not import them all.
_EXPORTED_FROM = {
    "SimConfig": "device_sim.simulation",
    "Simulation": "device_sim.simulation",
    "RunStats": "device_sim.runner",
    "run": "device_sim.runner",
    "BrokerConfig": "device_sim.publisher",
    "MqttPublisher": "device_sim.publisher",
    "ScenarioError": "device_sim.scenarios",
    "parse_specs": "device_sim.scenarios",
    "MatchReport": "device_sim.truth",
    "match_alerts": "device_sim.truth",
    "read_truth": "device_sim.truth",
    "write_truth": "device_sim.truth",
    "write_registry": "device_sim.population",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTED_FROM.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
