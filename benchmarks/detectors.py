"""`eldercare bench detectors`: readings per second through `DetectorRuntime`, in-process.

No broker, no InfluxDB, no event loop of a platform: the generated population of
the platform benchmarks (`bench_support.bench_registry`), one `DetectorRuntime` in
`wall` clock mode on a fake clock, and the reading mix of `bench_load` (6 heartbeats,
3 motion, 1 presence in every 10 readings of a home), fed in batches the way ingest
hands them over. Event time runs like a live system's: readings are stamped at the
simulated wall time of their "publish", the 1 s timer tick runs on that clock a
little later (`tick_delay_s`), so readings routinely arrive behind their site's clock
as they do live.

Two phases: the first builds every site's detectors and gives each home one round of
its mix (RSS growth over it, per 1,000 homes); the second times `handle_readings` and
`tick` for `readings` readings. In between, a separate runtime of up to 2,000 homes is
given the same first round under tracemalloc: the bytes the detector state holds. At
the end every site's snapshot is saved to a fresh SQLite store, as on stop, timing the
save and the longest stretch it holds the event loop.
"""

from __future__ import annotations

import asyncio
import gc
import resource
import tempfile
import time
import tracemalloc
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from benchmarks.support import bench_registry, machine, site_id
from eldercare.domain import Reading, Stream, Transition

# (device, stream, fields) of reading k % 10 of a home, as `bench_load.PATTERN`.
MIX: list[tuple[str, Stream, dict[str, bool]]] = [
    ("gw", Stream.HEARTBEAT, {}),
    ("pir-bed", Stream.MOTION, {"motion": True}),
    ("radar", Stream.HEARTBEAT, {}),
    ("sos", Stream.HEARTBEAT, {}),
    ("pir-liv", Stream.MOTION, {"motion": True}),
    ("radar", Stream.PRESENCE, {"present": True}),
    ("bed", Stream.HEARTBEAT, {}),
    ("pir-bath", Stream.MOTION, {"motion": False}),
    ("door", Stream.HEARTBEAT, {}),
    ("pir-liv", Stream.HEARTBEAT, {}),
]
ROOMS = {
    "gw": "living",
    "pir-bed": "bedroom",
    "radar": "bedroom",
    "sos": "bedroom",
    "pir-liv": "living",
    "bed": "bedroom",
    "pir-bath": "bathroom",
    "door": "entrance",
}
START = 1_767_225_600.0  # 2026-01-01 00:00 UTC


class CountingSink:
    """A transition sink that only counts (the benches measure detection alone)."""

    def __init__(self) -> None:
        self.transitions = 0

    async def handle_transitions(self, transitions: Sequence[Transition]) -> None:
        self.transitions += len(transitions)


@dataclass
class DetectorBenchResult:
    homes: int
    readings: int
    rate: float  # simulated readings per second of event time
    batch: int
    seconds: float
    readings_per_s: float
    us_per_reading: float
    cpu_seconds: float  # this process's CPU time: less noisy than wall time on a shared box
    readings_per_cpu_s: float
    build_s: float
    transitions: int
    tracemalloc_mb_per_1k_homes: float
    rss_mb_per_1k_homes: float
    peak_rss_mb: float
    snapshot_save_s: float  # every site's snapshot to SQLite, as on stop
    snapshot_longest_stall_ms: float  # longest the event loop was held meanwhile
    machine: dict[str, Any] = field(default_factory=machine)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _readings(homes: int, start_k: int, count: int, t0: float, rate: float) -> list[Reading]:
    """Readings `start_k .. start_k + count` of the cycle through the homes: reading k goes
    to home k % homes, and is its (k // homes)-th, stamped t0 + k / rate."""
    out = []
    for k in range(start_k, start_k + count):
        home = k % homes
        dev, stream, fields = MIX[(k // homes) % len(MIX)]
        sid = site_id("bh", home)
        out.append(
            Reading(
                site_id=sid,
                device_id=f"{sid}-{dev}",
                stream=stream,
                ts=t0 + k / rate,
                fields=fields,
                room_id=ROOMS[dev],
                resident_id="r" if dev in ("sos", "bed") else None,
            )
        )
    return out


async def _traced_bytes(index: Any, homes: int, rate: float, batch: int) -> int:
    """Bytes a second runtime holds (tracemalloc) after the first round of `homes` homes,
    measured apart so that tracemalloc's own bookkeeping stays out of the RSS figure."""
    from detectors.runtime import DetectorRuntime
    from eldercare.clock import FakeClock

    runtime = DetectorRuntime(
        lambda: index, CountingSink(), clock_mode="wall", clock=FakeClock(START)
    )
    todo = _readings(homes, 0, homes * len(MIX), START, rate)  # one round of each home
    gc.collect()
    tracemalloc.start()
    for i in range(0, len(todo), batch):
        await runtime.handle_readings(todo[i : i + batch])
    del todo
    gc.collect()
    traced, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del runtime
    gc.collect()
    return traced


async def _snapshot_stall(runtime: Any) -> tuple[float, float]:
    """(seconds to save every site's snapshot to a fresh SQLite store, longest stall of the
    event loop meanwhile): what the once-a-minute save costs the readings waiting."""
    from detectors.snapshot_store import SnapshotStore
    from eldercare.db import create_all, create_engine

    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp}/snapshots.db")
        try:
            await create_all(engine)
            runtime.snapshot_store = SnapshotStore(engine)
            longest = 0.0
            done = False

            async def watch() -> None:
                nonlocal longest
                while not done:
                    t = time.perf_counter()
                    await asyncio.sleep(0.005)
                    longest = max(longest, time.perf_counter() - t - 0.005)

            watcher = asyncio.create_task(watch())
            await asyncio.sleep(0.02)
            t0 = time.perf_counter()
            await runtime.save_snapshots(only_dirty=False)
            seconds = time.perf_counter() - t0
            done = True
            await watcher
        finally:
            runtime.snapshot_store = None
            await engine.dispose()
    return seconds, longest


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 1e6


async def _run(
    homes: int, readings: int, rate: float, batch: int, tick_delay_s: float
) -> DetectorBenchResult:
    from detectors.runtime import DetectorRuntime
    from eldercare.clock import FakeClock
    from eldercare.registry_index import RegistryIndex

    index = RegistryIndex(bench_registry(homes, "bh", None), version=1)
    sink = CountingSink()
    clock = FakeClock(START)
    runtime = DetectorRuntime(lambda: index, sink, clock_mode="wall", clock=clock)
    gc.collect()
    rss0 = _rss_mb()
    # Phase 1: build every site and give each home one round of its mix.
    t_build = time.perf_counter()
    k = 0
    warm = homes * len(MIX)
    next_tick = START + 1.0
    while k < warm:
        chunk = _readings(homes, k, min(batch, warm - k), START, rate)
        await runtime.handle_readings(chunk)
        k += len(chunk)
        while chunk[-1].ts >= next_tick:
            clock.set(next_tick + tick_delay_s)
            await runtime.tick()
            next_tick += 1.0
    build_s = time.perf_counter() - t_build
    del chunk
    gc.collect()
    rss1 = _rss_mb()
    traced_homes = min(homes, 2000)
    traced = await _traced_bytes(index, traced_homes, rate, batch)
    # Phase 2: timed, untraced. Readings are made up front so only detectors are timed.
    todo = _readings(homes, k, readings, START, rate)
    gc.collect()
    t0 = time.perf_counter()
    c0 = time.process_time()
    for i in range(0, len(todo), batch):
        chunk = todo[i : i + batch]
        await runtime.handle_readings(chunk)
        while chunk[-1].ts >= next_tick:
            clock.set(next_tick + tick_delay_s)
            await runtime.tick()
            next_tick += 1.0
    seconds = time.perf_counter() - t0
    cpu_s = time.process_time() - c0
    del todo, chunk  # the readings made up front are not the platform's to collect
    gc.collect()
    save_s, stall_s = await _snapshot_stall(runtime)
    per_1k = 1000 / homes
    return DetectorBenchResult(
        homes=homes,
        readings=readings,
        rate=rate,
        batch=batch,
        seconds=round(seconds, 3),
        readings_per_s=round(readings / seconds),
        us_per_reading=round(seconds / readings * 1e6, 1),
        cpu_seconds=round(cpu_s, 3),
        readings_per_cpu_s=round(readings / cpu_s),
        build_s=round(build_s, 2),
        transitions=sink.transitions,
        tracemalloc_mb_per_1k_homes=round(traced / 1e6 * 1000 / traced_homes, 2),
        rss_mb_per_1k_homes=round((rss1 - rss0) * per_1k, 2),
        peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        snapshot_save_s=round(save_s, 2),
        snapshot_longest_stall_ms=round(stall_s * 1000, 1),
    )


def run_detector_bench(
    homes: int,
    readings: int,
    *,
    rate: float = 5000.0,
    batch: int = 200,
    tick_delay_s: float = 0.05,
) -> DetectorBenchResult:
    return asyncio.run(_run(homes, readings, rate, batch, tick_delay_s))


def render(r: DetectorBenchResult) -> list[str]:
    return [
        f"homes                    {r.homes}",
        f"readings                 {r.readings} (event time {r.rate:g}/s, batches of {r.batch})",
        f"throughput               {r.readings_per_s} readings/s, {r.us_per_reading} µs/reading "
        f"(wall); {r.readings_per_cpu_s} readings per CPU second",
        f"transitions              {r.transitions}",
        f"build + first round      {r.build_s} s",
        f"detector memory          {r.tracemalloc_mb_per_1k_homes} MB / 1,000 homes (tracemalloc), "
        f"{r.rss_mb_per_1k_homes} MB / 1,000 homes (RSS growth)",
        f"peak RSS                 {r.peak_rss_mb} MB",
        f"snapshots of every site  {r.snapshot_save_s} s to SQLite, event loop held at most "
        f"{r.snapshot_longest_stall_ms} ms at a time",
        f"machine                  {r.machine['nproc']} cores, {r.machine['cpu_model']}, "
        f"{r.machine['date']}, load {r.machine['loadavg_1_5_15']}",
    ]
