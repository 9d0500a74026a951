"""The simulator's scenarios through ingest's decoding and the detector runtime, in one
process: no broker, no InfluxDB, no alert store.

`eldercare eval scenarios --in-process`. The whole-platform evaluation
(`platform_scenarios.py`) is the real test of the platform, but on a busy machine its
outcome varies run to run (the broker and ingest lag behind the publisher, sites fall
behind the event-clock watermark, readings are left out as `too_old`): it cannot show
whether a detector change raised or lowered recall or false alarms. This one feeds the
same messages (the simulator's, impairments included) through ingest's own decoding,
registry resolution and stamping (`IngestService.prepare_batch`) into a
`DetectorRuntime` on the event clock, in delivery order and fixed batches, so the same
seed always gives the same transitions. Raises are scored as transitions (a raise after
a clear counts again, as a reactivated alert does), with `device_sim.truth.match_alerts`.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from detectors.runtime import DetectorRuntime
from device_sim.simulation import SimConfig, Simulation
from device_sim.truth import MatchReport, match_alerts
from eldercare.domain import Transition, TransitionAction
from eldercare.registry_index import RegistryIndex
from eldercare.settings import Settings
from ingest.mqtt_session import InboundMessage
from ingest.service import IngestService

BATCH = 500  # messages decoded and handed to the detectors at a time


@dataclass
class InProcessResult:
    report: MatchReport
    messages: int
    readings: int
    raises: int
    quarantined: int
    unregistered: int


class _Collector:
    def __init__(self) -> None:
        self.transitions: list[Transition] = []

    async def handle_transitions(self, transitions: Sequence[Transition]) -> None:
        self.transitions.extend(transitions)


def evaluate_in_process(cfg: SimConfig, tolerance_s: float = 300.0) -> InProcessResult:
    sim = Simulation(cfg)
    index = RegistryIndex(sim.registry(), version=1)
    sink = _Collector()
    runtime = DetectorRuntime(lambda: index, sink, clock_mode="event")
    with tempfile.TemporaryDirectory(prefix="eldercare-eval-") as run_dir:
        settings = Settings(clock_mode="event", run_dir=Path(run_dir))
        ingest = IngestService(settings, lambda: index, runtime)
        messages, readings = asyncio.run(_feed(sim, ingest, runtime))
    raises = [
        {"site": t.site_id, "resident": t.resident_id, "kind": t.kind.value, "raised_at": t.ts}
        for t in sink.transitions
        if t.action == TransitionAction.RAISE
    ]
    report = match_alerts(sim.truth, raises, home_days=sim.home_days, tolerance_s=tolerance_s)
    return InProcessResult(
        report, messages, readings, len(raises), ingest.quarantined, ingest.unregistered_count
    )


async def _feed(
    sim: Simulation, ingest: IngestService, runtime: DetectorRuntime
) -> tuple[int, int]:
    batch: list[InboundMessage] = []
    messages = readings = 0

    async def hand_on() -> int:
        decoded, _lines = ingest.prepare_batch(batch)
        batch.clear()
        await runtime.handle_readings(decoded)
        return len(decoded)

    for out in sim.messages():
        if out.message is None:
            continue  # connect / cut / restore: nothing reaches ingest
        m = out.message
        batch.append(InboundMessage(m.topic, m.payload, 1, 0, m.retain, out.deliver_at, 0))
        messages += 1
        if len(batch) >= BATCH:
            readings += await hand_on()
    if batch:
        readings += await hand_on()
    await runtime.advance_to(sim.end)
    return messages, readings


def format_in_process(result: InProcessResult) -> str:
    r = result.report
    lines = [f"{'kind':<20} {'expected':>8} {'detected':>8} {'late':>5} {'recall':>7} {'false':>6}"]
    for kind, k in sorted(r.per_kind.items()):
        recall = "-" if k.expected == 0 else f"{k.recall:.2f}"
        lines.append(
            f"{kind:<20} {k.expected:>8} {k.detected:>8} {k.late:>5} {recall:>7} "
            f"{k.false_alarms:>6}"
        )
    lines += [
        "",
        f"false alarms: {r.false_alarms} over {r.home_days:.1f} site-days "
        f"= {r.false_alarms_per_home_day:.3f} per site-day "
        f"(and {r.during_outage} raised during injected site outages)",
        f"in process: {result.messages} messages, {result.readings} readings, "
        f"{result.raises} raises; quarantined {result.quarantined}, "
        f"unregistered {result.unregistered}",
    ]
    return "\n".join(lines)
