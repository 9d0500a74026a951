"""How many homes one platform process follows in real time (`eldercare bench scale`).

For each home count N (stepping up), against the project's own broker and
InfluxDB started in a temporary run directory:

1. a fresh store with a registry of N homes (`bench_support.bench_registry`) and a
   fresh InfluxDB database; `eldercare run` started on them in its own process;
2. a separate process publishes native readings for all N homes in real time at
   the per-home rate of a simulated home: device_sim's population over one
   simulated day sends 1,505 messages per home per day = 0.0174 msg/s (heartbeats
   of every device at 0.95 × its report interval, PIR motion while the resident
   is active, bed, door, presence, vitals, battery); each home gets one message
   every 57 s (stream mix in `bench_load.PATTERN`);
3. after a warm-up, for a window, the platform's `ingest_lag_seconds` (wall time
   minus event time of its newest reading), resident memory and CPU time are
   sampled every second. N is sustained when ingest keeps up with the publisher
   (≥ 97 % of the rate over the window), the lag stays under `MAX_LAG_S` and does
   not grow (least-squares slope over the window under `MAX_LAG_SLOPE`).

Stepping stops at the first N not sustained. Memory per 1,000 homes is given both
as the whole RSS divided by N/1000 and as the marginal RSS between the smallest
and the largest sustained N.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.support import (
    Endpoints,
    LoadProcess,
    PlatformProcess,
    bench_registry,
    bench_services,
    influx_query,
    machine,
    prepare_store,
)
from eldercare_app.local_services import free_port

# device_sim, 20 homes x 1 simulated day (seed 1): 30,096 messages = 1,505 / home / day.
MSGS_PER_HOME_PER_S = 1505 / 86400
MAX_LAG_S = 5.0
MAX_LAG_SLOPE = 0.02  # s of lag gained per s of wall time
MIN_KEEP_UP = 0.97


@dataclass
class Step:
    homes: int
    rate_msgs_per_s: float
    registry_apply_s: float
    boot_s: float
    publisher_msgs_per_s: float
    ingest_msgs_per_s: float
    lag_p50_s: float
    lag_max_s: float
    lag_slope: float
    cpu_percent_of_one_core: float
    rss_mb: float
    rss_mb_per_1000_homes: float
    cpu_percent_per_1000_homes: float
    loadavg_1_5_15: list[float]
    sustained: bool
    why_not: str = ""
    # Seconds since the platform was up at which the lag was over 1 s (stalls show a period).
    lag_over_1s_at: list[int] = field(default_factory=list)


@dataclass
class ScaleResult:
    msgs_per_home_per_s: float
    window_s: float
    steps: list[Step] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=dict)

    @property
    def max_sustained(self) -> int:
        return max((s.homes for s in self.steps if s.sustained), default=0)

    def marginal_rss_mb_per_1000(self) -> float | None:
        ok = [s for s in self.steps if s.sustained]
        if len(ok) < 2:
            return None
        lo, hi = ok[0], ok[-1]
        return round((hi.rss_mb - lo.rss_mb) / ((hi.homes - lo.homes) / 1000), 2)

    def to_json(self) -> dict[str, Any]:
        return {
            "msgs_per_home_per_s": round(self.msgs_per_home_per_s, 5),
            "window_s": self.window_s,
            "max_sustained_homes": self.max_sustained,
            "marginal_rss_mb_per_1000_homes": self.marginal_rss_mb_per_1000(),
            "steps": [vars(s) for s in self.steps],
            "machine": self.machine,
        }


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (t, y)."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mt = sum(t for t, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    if var == 0:
        return 0.0
    return sum((t - mt) * (y - my) for t, y in points) / var


def run_step(
    work: Path,
    endpoints: Endpoints,
    homes: int,
    *,
    per_home_rate: float,
    warmup_s: float,
    window_s: float,
) -> Step:
    step_dir = work / f"homes-{homes}"
    step_dir.mkdir()
    prefix = f"sc{os.getpid()}n{homes}h"
    influx_db = f"bench_scale_{os.getpid()}_{homes}"
    influx_query(endpoints.influx_url, f'CREATE DATABASE "{influx_db}"')
    database_url = f"sqlite+aiosqlite:///{step_dir}/eldercare.db"
    apply_s = prepare_store(
        database_url, bench_registry(homes, prefix, None), ("bench-admin", "bench password 1")
    )
    platform = PlatformProcess(step_dir, endpoints, influx_db, database_url, free_port())
    rate = homes * per_home_rate
    try:
        t_boot = time.monotonic()
        platform.start()
        boot_s = time.monotonic() - t_boot
        t_up = time.time()
        proc = platform.psutil_process()
        load = LoadProcess(endpoints, prefix, homes, rate, duration_s=warmup_s + window_s + 5)
        load.start()
        try:
            time.sleep(warmup_s)
            m0 = platform.metrics()
            cpu0, t0 = sum(proc.cpu_times()[:2]), time.time()
            lags: list[tuple[float, float]] = []
            unanswered = 0  # /metrics reads that failed or lacked the lag: not "no lag"
            rss: list[int] = []
            while time.time() - t0 < window_s:
                time.sleep(0.5)
                lag = platform.metrics().get("eldercare_ingest_lag_seconds")
                if lag is None:
                    unanswered += 1
                else:
                    lags.append((time.time(), lag))
                rss.append(proc.memory_info().rss)
            m1 = platform.metrics()
            cpu1, t1 = sum(proc.cpu_times()[:2]), time.time()
        finally:
            load.stop()
        published = load.result()
    finally:
        platform.stop()
        influx_query(endpoints.influx_url, f'DROP DATABASE "{influx_db}"')
    counted = [m.get("eldercare_ingest_received_total") for m in (m0, m1)]
    if counted[0] is None or counted[1] is None:
        unanswered += 1
        ingest_rate = 0.0  # unknown: judged not sustained below
    else:
        ingest_rate = (counted[1] - counted[0]) / (t1 - t0)
    lag_values = sorted(y for _, y in lags)
    lag_slope = slope(lags)
    cpu_pct = (cpu1 - cpu0) / (t1 - t0) * 100
    rss_mb = max(rss) / 2**20
    why: list[str] = []
    if unanswered:
        why.append(f"/metrics unanswered {unanswered} times")
    if ingest_rate < MIN_KEEP_UP * rate:
        why.append(f"ingest {ingest_rate:.0f} msg/s < {MIN_KEEP_UP:.0%} of {rate:.0f}")
    if lag_values and lag_values[-1] > MAX_LAG_S:
        why.append(f"lag {lag_values[-1]:.1f} s > {MAX_LAG_S:g} s")
    if lag_slope > MAX_LAG_SLOPE:
        why.append(f"lag grows {lag_slope:.3f} s/s")
    return Step(
        homes=homes,
        rate_msgs_per_s=round(rate, 3),
        registry_apply_s=round(apply_s, 1),
        boot_s=round(boot_s, 1),
        publisher_msgs_per_s=published["rate"],
        ingest_msgs_per_s=round(ingest_rate, 1),
        lag_p50_s=round(lag_values[len(lag_values) // 2], 3) if lag_values else 0.0,
        lag_max_s=round(lag_values[-1], 3) if lag_values else 0.0,
        lag_slope=round(lag_slope, 4),
        cpu_percent_of_one_core=round(cpu_pct, 1),
        rss_mb=round(rss_mb, 1),
        rss_mb_per_1000_homes=round(rss_mb / (homes / 1000), 2),
        cpu_percent_per_1000_homes=round(cpu_pct / (homes / 1000), 2),
        loadavg_1_5_15=[round(x, 2) for x in os.getloadavg()],
        sustained=not why,
        why_not="; ".join(why),
        lag_over_1s_at=[round(t - t_up) for t, lag in lags if lag > 1.0],
    )


def home_counts(start: int, step: int, max_homes: int) -> list[int]:
    counts = list(range(start, max_homes + 1, step)) if step > 0 else [start]
    return counts or [max_homes]


def run_scale_bench(
    counts: list[int],
    *,
    per_home_rate: float = MSGS_PER_HOME_PER_S,
    warmup_s: float = 20.0,
    window_s: float = 90.0,
    keep_going: bool = False,
    use_configured: bool = False,
) -> ScaleResult:
    result = ScaleResult(per_home_rate, window_s, machine=machine())
    with tempfile.TemporaryDirectory(prefix="eldercare-bench-scale-") as tmp:
        work = Path(tmp)
        with bench_services(work, use_configured=use_configured) as endpoints:
            for homes in counts:
                step = run_step(
                    work,
                    endpoints,
                    homes,
                    per_home_rate=per_home_rate,
                    warmup_s=warmup_s,
                    window_s=window_s,
                )
                result.steps.append(step)
                print(f"scale: {vars(step)}", file=sys.stderr, flush=True)
                if not step.sustained and not keep_going:
                    break
    return result


def render(result: ScaleResult) -> list[str]:
    lines = [
        f"per home {result.msgs_per_home_per_s:.4f} msg/s (device_sim), window "
        f"{result.window_s:g} s per step",
        f"{'homes':>7}{'msg/s':>8}{'ingest':>8}{'lag p50':>9}{'lag max':>9}{'slope':>8}"
        f"{'CPU %':>7}{'RSS MB':>8}{'MB/1k':>7}{'CPU%/1k':>8}{'apply s':>8}{'load1':>7}  verdict",
    ]
    for s in result.steps:
        verdict = "real time" if s.sustained else f"NOT sustained: {s.why_not}"
        lines.append(
            f"{s.homes:>7}{s.rate_msgs_per_s:>8.0f}{s.ingest_msgs_per_s:>8.0f}"
            f"{s.lag_p50_s:>9.2f}{s.lag_max_s:>9.2f}{s.lag_slope:>8.3f}"
            f"{s.cpu_percent_of_one_core:>7.0f}{s.rss_mb:>8.0f}{s.rss_mb_per_1000_homes:>7.1f}"
            f"{s.cpu_percent_per_1000_homes:>8.2f}{s.registry_apply_s:>8.0f}"
            f"{s.loadavg_1_5_15[0]:>7.2f}  {verdict}"
        )
    lines.append(f"max homes in real time: {result.max_sustained}")
    marginal = result.marginal_rss_mb_per_1000()
    if marginal is not None:
        lines.append(f"marginal RSS: {marginal} MB per 1,000 homes")
    m = result.machine
    lines.append(f"machine: {m['nproc']} cores, {m['cpu_model']}, {m['date']}")
    return lines
