"""`eldercare bench worker-memory`: where a detector worker's memory per home goes after
an hour of readings.

One process, no NATS: the bench homes (`bench_support.bench_registry`) are applied to a
fresh SQLite store and read back the way a detector worker reads them
(`cluster.partition_registry.PartitionRegistry`, every partition held), then one
`DetectorRuntime` in `wall` mode on a fake clock is fed `hours` of **simulated event
time** at a simulated home's rate (`benchmarks.scale`: 1,505 readings a day, the stream
mix of `bench_load.PATTERN`), its 1 s timer tick run after every simulated second
(`tick_s`: coarser, for a simulated month of a few homes, when the baselines are full).
Nothing waits on the wall clock: an hour of 2,000 homes takes a minute or two.

Figures, per 1,000 homes held: the bytes (tracemalloc) the registry read holds and the
detector state holds (after the first round of every home's mix, and after the whole
run; readings come off the cluster's wire encoding, as a worker gets them), and an
account by type of the objects the detector state holds (every object reachable from
the runtime's sites that did not exist before the runtime was made: the registry's
models, classes and interned constants are not counted; each object's `sys.getsizeof`).
The role's import baseline is measured in a fresh interpreter importing what
`eldercare run --role detectors` imports.
"""

from __future__ import annotations

import asyncio
import gc
import json
import subprocess
import sys
import tempfile
import tracemalloc
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from types import ModuleType
from typing import Any

from benchmarks.detectors import MIX, ROOMS, START, CountingSink
from benchmarks.support import bench_registry, machine, site_id
from eldercare.domain import Reading

READINGS_PER_HOME_PER_DAY = 1505  # a simulated home's day (benchmarks.scale)
# What `eldercare run --role detectors` imports before it builds the role.
ROLE_IMPORTS = (
    "eldercare_app.cli",
    "eldercare_app.run_lease",
    "cluster.jetstream",
    "eldercare_app.cluster_roles",
)


@dataclass
class WorkerMemoryResult:
    homes: int
    simulated_hours: float
    tick_s: float  # simulated seconds between two timer ticks
    readings: int
    transitions: int
    import_baseline_mb: float  # RSS of a fresh interpreter after the role's imports
    registry_mb_per_1k: float  # held by reading the held sites (tracemalloc)
    state_first_round_mb_per_1k: float  # held by the detector state: every home's mix once
    state_after_run_mb_per_1k: float  # held by the detector state after the whole run
    objects_mb_per_1k: float  # the account by type below, summed
    by_type_kb_per_home: dict[str, float]  # type name → KB a home, largest first
    count_per_home: dict[str, float]  # type name → objects a home
    by_part_kb_per_home: dict[str, float]  # detector or site part → KB a home
    top_lines_kb_per_home: dict[str, float]  # allocating line → KB a home (--lines)
    machine: dict[str, Any] = field(default_factory=machine)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _traced() -> int:
    return tracemalloc.get_traced_memory()[0]


def _top_lines(snapshot: tracemalloc.Snapshot, homes: int) -> dict[str, float]:
    """The project's allocating lines still holding the most, KB a home."""
    stats = snapshot.filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
    out: dict[str, float] = {}
    for stat in stats.statistics("lineno")[:25]:
        frame = stat.traceback[0]
        where = "/".join(frame.filename.rsplit("/", 2)[-2:])
        out[f"{where}:{frame.lineno}"] = round(stat.size / 1000 / homes, 3)
    return out


def import_baseline_mb(modules: Sequence[str] = ROLE_IMPORTS) -> float:
    """RSS (MB) of a fresh interpreter once it has imported `modules`."""
    code = (
        "import importlib, resource, sys\n"
        f"for m in {list(modules)!r}: importlib.import_module(m)\n"
        "print(int(open('/proc/self/statm').read().split()[1]) * resource.getpagesize())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return round(int(out.stdout.strip().splitlines()[-1]) / 1e6, 1)


def _readings(homes: int, start_k: int, count: int, period_s: float) -> list[Reading]:
    """Readings `start_k ..` of the cycle through the homes: reading k goes to home
    k % homes, as its (k // homes)-th of the mix, at START + k * period_s / homes; each
    through the readings stream's encoding and back, as a detector worker gets it."""
    from cluster.wire import reading_bytes, reading_from

    out = []
    for k in range(start_k, start_k + count):
        home = k % homes
        dev, stream, fields = MIX[(k // homes) % len(MIX)]
        sid = site_id("bh", home)
        reading = Reading(
            site_id=sid,
            device_id=f"{sid}-{dev}",
            stream=stream,
            ts=START + k * period_s / homes,
            fields=fields,
            room_id=ROOMS[dev],
            resident_id="r" if dev in ("sos", "bed") else None,
        )
        out.append(reading_from(reading_bytes(reading)))
    return out


@dataclass
class _Account:
    """Bytes and counts of the objects reached, by type name and by part of a site."""

    seen: set[int]
    size: Counter[str] = field(default_factory=Counter)
    count: Counter[str] = field(default_factory=Counter)
    part: Counter[str] = field(default_factory=Counter)

    def walk(self, part: str, root: object) -> None:
        todo = [root]
        while todo:
            obj = todo.pop()
            if id(obj) in self.seen or isinstance(obj, type | ModuleType):
                continue
            self.seen.add(id(obj))
            name = type(obj).__qualname__
            size = sys.getsizeof(obj)
            self.size[name] += size
            self.count[name] += 1
            self.part[part] += size
            todo.extend(gc.get_referents(obj))


def _account(runtime: Any, existing: set[int]) -> _Account:
    """The objects a runtime's sites hold that are not in `existing` (ids of objects alive
    before), each counted once: by part, in site order (a part's share is what it reaches
    that no earlier part did), then what the runtime holds besides."""
    account = _Account(existing | {id(runtime), id(runtime.host)})
    for site in runtime.sites.values():
        account.seen.add(id(site.site))  # the registry's
        for name, det in site.detectors.items():
            account.walk(name, det)
        for attr in ("recent", "emergency_keys", "open"):
            account.walk(f"site: {attr}", getattr(site, attr))
        account.walk("site: the rest", site)
    account.walk("runtime", runtime.host)
    account.walk("runtime", runtime)
    return account


def _alive() -> list[object]:
    """Every object alive now (gc-tracked ones and what they refer to), kept alive by the
    list so that no object made later can take the id of one of them."""
    gc.collect()
    alive: list[object] = []
    for obj in gc.get_objects():
        alive.append(obj)
        alive.extend(gc.get_referents(obj))
    return alive


async def _run(homes: int, hours: float, top_frames: int, tick_s: float) -> WorkerMemoryResult:
    from cluster.partition_registry import PartitionRegistry
    from detectors.runtime import DetectorRuntime
    from eldercare.clock import FakeClock
    from eldercare.db import create_all, create_engine, session_factory
    from eldercare.registry_apply import apply_document

    period_s = 86400.0 / READINGS_PER_HOME_PER_DAY  # between two readings of a home
    total = int(hours * 3600 / period_s * homes)
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp}/registry.db")
        try:
            await create_all(engine)
            sessions = session_factory(engine)
            await apply_document(sessions, bench_registry(homes, "bh", None))
            registry = PartitionRegistry(sessions, partitions=64)
            gc.collect()
            tracemalloc.start()
            for partition in range(64):
                await registry.hold(partition)
        finally:
            await engine.dispose()
    gc.collect()
    registry_bytes = _traced()
    alive = _alive()
    base = _traced()
    sink = CountingSink()
    clock = FakeClock(START)
    runtime = DetectorRuntime(registry.current, sink, clock_mode="wall", clock=clock)
    next_tick = START + tick_s
    first_round = homes * len(MIX)
    first_bytes = 0
    batch = 200
    k = 0
    while k < total:
        chunk = _readings(homes, k, min(batch, total - k), period_s)
        while next_tick <= chunk[0].ts:  # every tick due by then, in order
            clock.set(next_tick + 0.05)
            await runtime.tick()
            next_tick += tick_s
        await runtime.handle_readings(chunk)
        k += len(chunk)
        del chunk  # not counted as state (200 readings: ~10 KB a home at 20 homes)
        if k >= first_round and not first_bytes:
            gc.collect()
            first_bytes = _traced() - base
    gc.collect()
    state_bytes = _traced() - base
    lines = _top_lines(tracemalloc.take_snapshot(), homes) if top_frames else {}
    tracemalloc.stop()
    account = _account(runtime, {id(o) for o in alive})
    size, count = account.size, account.count
    per_1k = 1000 / homes
    return WorkerMemoryResult(
        homes=homes,
        simulated_hours=hours,
        tick_s=tick_s,
        readings=total,
        transitions=sink.transitions,
        import_baseline_mb=import_baseline_mb(),
        registry_mb_per_1k=round(registry_bytes / 1e6 * per_1k, 2),
        state_first_round_mb_per_1k=round(first_bytes / 1e6 * per_1k, 2),
        state_after_run_mb_per_1k=round(state_bytes / 1e6 * per_1k, 2),
        objects_mb_per_1k=round(sum(size.values()) / 1e6 * per_1k, 2),
        by_type_kb_per_home={
            name: round(b / 1000 / homes, 3) for name, b in size.most_common() if b / homes >= 20
        },
        count_per_home={
            name: round(count[name] / homes, 1) for name, b in size.most_common() if b / homes >= 20
        },
        by_part_kb_per_home={
            name: round(b / 1000 / homes, 3) for name, b in account.part.most_common()
        },
        top_lines_kb_per_home=lines,
    )


def run_worker_memory_bench(
    homes: int, hours: float, lines: bool = False, tick_s: float = 1.0
) -> WorkerMemoryResult:
    """`lines`: also the allocating lines holding the most (slower); `tick_s`: simulated
    seconds between two timer ticks."""
    return asyncio.run(_run(homes, hours, 1 if lines else 0, tick_s))


def render(r: WorkerMemoryResult) -> list[str]:
    lines = [
        f"homes held               {r.homes}",
        f"readings                 {r.readings} over {r.simulated_hours:g} h of simulated event "
        f"time; {r.transitions} transitions; a tick every {r.tick_s:g} s",
        f"role import baseline     {r.import_baseline_mb} MB RSS (fresh interpreter)",
        f"registry (held sites)    {r.registry_mb_per_1k} MB / 1,000 homes (tracemalloc)",
        f"detector state           {r.state_first_round_mb_per_1k} MB / 1,000 homes after one "
        f"round of the mix, {r.state_after_run_mb_per_1k} after the run (tracemalloc)",
        f"  objects by type        {r.objects_mb_per_1k} MB / 1,000 homes in all:",
    ]
    lines.append("  by part:")
    for name, kb in r.by_part_kb_per_home.items():
        lines.append(f"    {name:<34} {kb:>8.3f} KB / home")
    lines.append("  by type:")
    for name, kb in r.by_type_kb_per_home.items():
        lines.append(f"    {name:<34} {kb:>8.3f} KB / home  ({r.count_per_home[name]:g} a home)")
    lines.append(
        f"machine                  {r.machine['nproc']} cores, {r.machine['cpu_model']}, "
        f"{r.machine['date']}, load {r.machine['loadavg_1_5_15']}"
    )
    return lines


if __name__ == "__main__":  # pragma: no cover - the CLI is `eldercare bench worker-memory`
    print(json.dumps(run_worker_memory_bench(int(sys.argv[1]), float(sys.argv[2]), True).to_json()))
