"""The demo population for `make demo`: 50 homes and a care home, live, with incidents.

`prepare_demo` builds the simulation and writes its registry (apply it before the
platform starts) and ground truth; `run_demo` then publishes in real time until
`stop` is set. The incident mix (about three an hour across the population) keeps
the operator console alive without flooding it.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from device_sim.accounts import read_site_passwords
from device_sim.cli import broker_from, demo_config
from device_sim.clock import Pacer
from device_sim.population import write_registry
from device_sim.publisher import MqttPublisher
from device_sim.runner import RunStats, run
from device_sim.simulation import Simulation
from device_sim.truth import write_truth
from eldercare.settings import Settings


def prepare_demo(
    settings: Settings, seed: int = 7, start: float | None = None
) -> tuple[Simulation, Path, Path]:
    """Build the demo simulation; write `<run_dir>/sim/demo-registry.yaml` and truth."""
    sim = Simulation(demo_config(time.time() if start is None else start, seed))
    out = settings.run_dir / "sim"
    registry_path, truth_path = out / "demo-registry.yaml", out / "demo-truth.jsonl"
    write_registry(sim.sites, registry_path)
    write_truth(sim.truth, truth_path)
    return sim, registry_path, truth_path


def run_demo(
    settings: Settings,
    stop: threading.Event | None = None,
    simulation: Simulation | None = None,
    speed: float = 1.0,
    issued_dir: Path | None = None,
) -> RunStats:
    """Publish the demo population to the configured broker until `stop` is set.

    The demo is live (`speed` 1): devices announce themselves with the plain
    availability strings real devices send, timed by when the broker gets them. Sites
    with a password file in `issued_dir` log in with their own account."""
    sim = simulation if simulation is not None else prepare_demo(settings)[0]
    if (speed == 1) != sim.cfg.live:
        raise ValueError("a live simulation runs at speed 1 (SimConfig.live), and only then")
    broker = broker_from(settings)
    if issued_dir is not None:
        broker.site_passwords = read_site_passwords(issued_dir, [s.id for s in sim.sites])
    publisher = MqttPublisher(broker, qos=1)
    try:
        return run(sim, publisher, Pacer(speed, sim.start), stop=stop)
    finally:
        publisher.close()
