"""One site floods; how soon do the other sites' SOS reach the console
(`eldercare bench flood`)?

Against the local broker and InfluxDB (started in a temporary run directory unless
`--configured-services`), with `eldercare run` in its own process and per-site
limits on:

1. a registry of `homes` bench homes (`bench_support.bench_registry`); home 0 is the
   flooding one, the others each take one SOS press;
2. before: a few SOS presses at other homes, one at a time, each timed from the
   device's publish to its `raised` change on the gateway's live stream (SSE);
   the platform's resident memory;
3. during: `python -m benchmarks.load` publishes home 0's (valid) readings at
   the target rate for `duration_s` (QoS 1, its own process); meanwhile an SOS at
   another home every second, timed the same way; memory sampled every second;
4. after: once the flood has been worked off, a few more SOS presses, and memory.

Printed: the flood rate reached, messages the platform throttled, SOS latency
before/during/after (p50, max, missed), memory before/peak/after, and the goals
(other sites' SOS within 2 s during the flood; memory back within 20 %).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.support import (
    Endpoints,
    LoadProcess,
    PlatformProcess,
    StreamReader,
    bench_registry,
    bench_services,
    influx_query,
    login,
    machine,
    prepare_store,
    site_id,
    stored_at,
)
from eldercare_app.local_services import free_port

SOS_TIMEOUT_S = 15.0
GOAL_SOS_S = 2.0
GOAL_MEMORY_RATIO = 1.2
SETTLE_STALL_S = 5.0  # the platform received nothing new for this long: flood worked off


@dataclass
class FloodResult:
    target_rate: float
    duration_s: float
    fairness: bool
    homes: int
    flood: dict[str, Any]
    sos_s: dict[str, list[float | None]]  # phase -> latency of each press (None: missed)
    stored_s: dict[str, list[float | None]]  # the same, publish -> alert stored
    memory_mb: dict[str, float]
    throttled: int
    machine: dict[str, Any] = field(default_factory=dict)

    def goals(self) -> dict[str, bool]:
        during = self.sos_s["during"]
        return {
            "sos_within_2s_during_flood": bool(during)
            and all(s is not None and s <= GOAL_SOS_S for s in during),
            "memory_back_within_20pct": self.memory_mb["after"]
            <= self.memory_mb["before"] * GOAL_MEMORY_RATIO,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "target_rate": self.target_rate,
            "duration_s": self.duration_s,
            "fairness": self.fairness,
            "homes": self.homes,
            "flood": self.flood,
            "throttled": self.throttled,
            "sos_s": self.sos_s,
            "stored_s": self.stored_s,
            "memory_mb": self.memory_mb,
            "goals": self.goals(),
            "machine": self.machine,
        }


def _device_client(endpoints: Endpoints) -> Any:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"flood-sos-{os.getpid()}")
    if endpoints.mqtt_username:
        client.username_pw_set(endpoints.mqtt_username, endpoints.mqtt_password)
    client.connect(endpoints.mqtt_host, endpoints.mqtt_port)
    client.loop_start()
    return client


def _press(device: Any, stream: StreamReader, site: str, pressed: dict[str, float]) -> float | None:
    """Seconds from an SOS publish to its `raised` on the live stream (None: not in time)."""
    published = pressed[site] = time.time()
    body = json.dumps({"ts": published, "pressed": True})
    device.publish(f"eldercare/{site}/{site}-sos/sos", body, qos=1)
    deadline = published + SOS_TIMEOUT_S
    while time.time() < deadline:
        seen = stream.first(site, "sos")
        if seen is not None:
            return round(seen - published, 3)
        time.sleep(0.005)
    return None


def _rss_mb(proc: Any) -> float:
    return round(float(proc.memory_info().rss) / 2**20, 1)


def run_flood_bench(
    rate: float = 50_000.0,
    duration_s: float = 10.0,
    homes: int = 30,
    *,
    use_configured: bool = False,
    fairness: bool = True,
) -> FloodResult:
    """`fairness=False` runs the same without per-site limits and the emergency lane,
    for comparison."""
    presses = {"before": 3, "during": max(1, int(duration_s)), "after": 3}
    if homes < 1 + sum(presses.values()):
        raise ValueError(f"--homes must be at least {1 + sum(presses.values())}")
    before_machine = machine()
    with tempfile.TemporaryDirectory(prefix="eldercare-bench-flood-") as tmp:
        work = Path(tmp)
        with bench_services(work, use_configured=use_configured) as endpoints:
            prefix = f"fl{os.getpid()}h"
            influx_db = f"bench_flood_{os.getpid()}_{int(time.time())}"
            influx_query(endpoints.influx_url, f'CREATE DATABASE "{influx_db}"')
            db_path = work / "eldercare.db"
            user = ("bench-admin", "bench password 1")
            prepare_store(
                f"sqlite+aiosqlite:///{db_path}", bench_registry(homes, prefix, None), user
            )
            platform = PlatformProcess(
                work,
                endpoints,
                influx_db,
                f"sqlite+aiosqlite:///{db_path}",
                free_port(),
                site_limits=fairness,
                emergency_lane=fairness,
            )
            try:
                result, pressed = _measure(
                    platform, endpoints, prefix, rate, duration_s, homes, presses, user,
                    before_machine,
                )  # fmt: skip
                for phase, sites in pressed.items():
                    result.stored_s[phase] = [
                        None
                        if (at := stored_at(db_path, site, "sos")) is None
                        else round(at - published, 3)
                        for site, published in sites.items()
                    ]
                return result
            finally:
                platform.stop()
                influx_query(endpoints.influx_url, f'DROP DATABASE "{influx_db}"')


def _measure(
    platform: PlatformProcess,
    endpoints: Endpoints,
    prefix: str,
    rate: float,
    duration_s: float,
    homes: int,
    presses: dict[str, int],
    user: tuple[str, str],
    before_machine: dict[str, Any],
) -> tuple[FloodResult, dict[str, dict[str, float]]]:
    platform.start()
    proc = platform.psutil_process()
    token = login(platform.base_url, user)
    others = iter(site_id(prefix, i) for i in range(1, homes))
    sos: dict[str, list[float | None]] = {phase: [] for phase in presses}
    pressed: dict[str, dict[str, float]] = {phase: {} for phase in presses}
    memory: dict[str, float] = {}
    device = _device_client(endpoints)
    try:
        with StreamReader(platform.base_url, token) as stream:
            for _ in range(presses["before"]):
                sos["before"].append(_press(device, stream, next(others), pressed["before"]))
            memory["before"] = _rss_mb(proc)

            # The flood: home 0's readings, as fast as the target, from its own process.
            flood = LoadProcess(endpoints, prefix, 1, rate, duration_s)
            flood.start()
            peak = memory["before"]
            started = time.monotonic()
            for _ in range(presses["during"]):
                sos["during"].append(_press(device, stream, next(others), pressed["during"]))
                peak = max(peak, _rss_mb(proc))
                # One press a second, on the flood's clock (a press may take a while).
                wait = started + len(sos["during"]) - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
            published = flood.result(timeout_s=duration_s + 120)
            memory["peak"] = max(peak, _rss_mb(proc))

            # Wait until the platform has worked off what the broker still held.
            received, moved = -1.0, time.monotonic()
            while time.monotonic() - moved < SETTLE_STALL_S:
                now = platform.metrics().get("eldercare_ingest_received_total", 0.0)
                if now != received:
                    received, moved = now, time.monotonic()
                memory["peak"] = max(memory["peak"], _rss_mb(proc))
                time.sleep(0.5)
            for _ in range(presses["after"]):
                sos["after"].append(_press(device, stream, next(others), pressed["after"]))
            memory["after"] = _rss_mb(proc)
            metrics = platform.metrics()
    finally:
        device.loop_stop()
        device.disconnect()
    throttled = int(
        sum(v for k, v in metrics.items() if k.startswith("eldercare_ingest_throttled_total"))
    )
    result = FloodResult(
        target_rate=rate,
        duration_s=duration_s,
        fairness=platform.site_limits,
        homes=homes,
        flood={
            "published": published["published"],
            "acked_by_broker": published["acked"],
            "rate_reached_msgs_per_s": published["rate"],
        },
        sos_s=sos,
        stored_s={},
        memory_mb=memory,
        throttled=throttled,
        machine={"before": before_machine, "after": machine()},
    )
    return result, pressed


def render(result: FloodResult) -> list[str]:
    def row(phase: str, which: dict[str, list[float | None]]) -> str:
        values = which.get(phase, [])
        got = sorted(v for v in values if v is not None)
        missed = len(values) - len(got)
        p50 = f"{got[len(got) // 2]:.2f} s" if got else "-"
        worst = f"{got[-1]:.2f} s" if got else "-"
        return f"  {phase:<7} p50 {p50:>8}  max {worst:>8}  missed {missed} of {len(values)}"

    goals = result.goals()
    flood = result.flood
    return [
        f"flood: home 0 of {result.homes}, target {result.target_rate:,.0f} msg/s for "
        f"{result.duration_s:g} s; reached {flood['rate_reached_msgs_per_s']:,.0f} msg/s "
        f"({flood['published']:,} published, {flood['acked_by_broker']:,} acknowledged)",
        f"throttled by the platform: {result.throttled:,} messages"
        + ("" if result.fairness else " (per-site limits and emergency lane OFF)"),
        "other homes' SOS, publish -> live stream:",
        row("before", result.sos_s),
        row("during", result.sos_s),
        row("after", result.sos_s),
        "the same, publish -> alert stored:",
        row("before", result.stored_s),
        row("during", result.stored_s),
        row("after", result.stored_s),
        "platform memory (RSS): "
        f"before {result.memory_mb['before']:.0f} MB, peak {result.memory_mb['peak']:.0f} MB, "
        f"after {result.memory_mb['after']:.0f} MB",
        f"goal: other sites' SOS within {GOAL_SOS_S:g} s during the flood: "
        + ("met" if goals["sos_within_2s_during_flood"] else "NOT met"),
        "goal: memory back within 20 % after: "
        + ("met" if goals["memory_back_within_20pct"] else "NOT met"),
    ]
