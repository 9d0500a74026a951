"""Publish-to-alert latency under background load (`eldercare bench latency`).

Against the project's local broker and InfluxDB (configured, else started in a
temporary run directory), with `eldercare run` in its own process:

1. a registry of N homes (`bench_support.bench_registry`: SOS button, fall radar,
   PIRs, bed, door; an operator contact notified through Apprise `json://` at a
   real HTTP receiver in this process) and an admin account are written to a
   fresh SQLite store, the platform started on it and a fresh InfluxDB database;
2. a separate process publishes native readings of those homes at the stated
   rate (QoS 1), and after a warm-up this process, as a device, publishes K SOS
   presses and K fall-radar `fall` verdicts, one at a time, each at a home that
   has no open alert of that kind (sample i uses home i), so each is a new alert;
3. for each, from the device's publish (wall time, also the payload's `ts`) to
   (a) the alert stored: the row's `created_at`, the wall time the platform
   stored it; (b) the `raised` change on the gateway's live stream (SSE,
   authenticated with a bearer token); (c) the first notification at the
   webhook. p50/p95/p99 of each; the background rate achieved; drops as
   published (broker-acknowledged) minus readings counted in InfluxDB.
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
    percentiles_ms,
    prepare_store,
    site_id,
    stored_at,
)
from eldercare_app.local_services import free_port
from eldercare_app.webhook_receiver import WebhookReceiver

# What a notification of each kind says (the contact's language is English).
NOTIFICATION_TEXT = {"sos": "SOS call", "fall": "Fall"}
SAMPLE_TIMEOUT_S = 15.0
DRAIN_STALL_S = 20.0  # no new points in InfluxDB for this long: the platform is done
GIVE_UP_AFTER_MISSES = 4  # samples in a row with no stream event or notification in time
# The load's measurements and a field every point of each has (docs/influx-schema.md).
LOAD_MEASUREMENTS = {"heartbeat": "seq", "motion": "motion", "presence": "present"}


@dataclass
class Sample:
    kind: str
    site: str
    published_at: float
    stream_at: float | None = None
    notified_at: float | None = None
    stored_at: float | None = None

    def delay(self, at: float | None) -> float | None:
        return None if at is None else at - self.published_at


@dataclass
class LatencyResult:
    homes: int
    target_rate: float
    samples_per_kind: int
    latency_ms: dict[str, dict[str, Any]]
    background: dict[str, Any]
    platform: dict[str, Any]
    machine_before: dict[str, Any]
    machine_after: dict[str, Any]
    missing: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "homes": self.homes,
            "target_rate_msgs_per_s": self.target_rate,
            "samples_per_kind": self.samples_per_kind,
            "latency_ms": self.latency_ms,
            "missing": self.missing,
            "background": self.background,
            "platform": self.platform,
            "machine_before": self.machine_before,
            "machine_after": self.machine_after,
        }


def _device_client(endpoints: Endpoints) -> Any:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-device-{os.getpid()}")
    if endpoints.mqtt_username:
        client.username_pw_set(endpoints.mqtt_username, endpoints.mqtt_password)
    client.connect(endpoints.mqtt_host, endpoints.mqtt_port)
    client.loop_start()
    return client


def _influx_count(url: str, db: str, prefix: str) -> int:
    total = 0
    for measurement, field_name in LOAD_MEASUREMENTS.items():
        q = f'SELECT count("{field_name}") FROM "{measurement}" WHERE site =~ /^{prefix}/'
        for result in influx_query(url, q, db).get("results", []):
            for series in result.get("series", []) or []:
                for row in series.get("values", []):
                    total += int(row[1])
    return total


def _wait_complete(
    sample: Sample, stream: StreamReader, hook: WebhookReceiver, deadline: float
) -> None:
    text = NOTIFICATION_TEXT[sample.kind]
    while time.time() < deadline:
        if sample.stream_at is None:
            sample.stream_at = stream.first(sample.site, sample.kind)
        if sample.notified_at is None:
            arrival = hook.first(sample.site, sample.published_at, text)
            sample.notified_at = arrival.at if arrival else None
        if sample.stream_at is not None and sample.notified_at is not None:
            return
        time.sleep(0.002)


def run_latency_bench(
    homes: int = 1000,
    rate: float = 5000.0,
    samples: int = 100,
    *,
    gap_s: float = 0.3,
    warmup_s: float = 10.0,
    profile: Path | None = None,
    use_configured: bool = False,
) -> LatencyResult:
    if samples > homes:
        raise ValueError("--samples must not exceed --homes (one new alert per home and kind)")
    before = machine()
    with tempfile.TemporaryDirectory(prefix="eldercare-bench-latency-") as tmp:
        work = Path(tmp)
        with (
            bench_services(work, use_configured=use_configured) as endpoints,
            WebhookReceiver() as hook,
        ):
            prefix = f"lat{os.getpid()}h"
            influx_db = f"bench_latency_{os.getpid()}_{int(time.time())}"
            influx_query(endpoints.influx_url, f'CREATE DATABASE "{influx_db}"')
            db_path = work / "eldercare.db"
            user = ("bench-admin", "bench password 1")
            prepare_s = prepare_store(
                f"sqlite+aiosqlite:///{db_path}", bench_registry(homes, prefix, hook.url), user
            )
            platform = PlatformProcess(
                work,
                endpoints,
                influx_db,
                f"sqlite+aiosqlite:///{db_path}",
                free_port(),
                profile=profile,
            )
            try:
                result = _measure(
                    platform, endpoints, hook, prefix, homes, rate, samples, gap_s, warmup_s, user
                )
                result["platform"]["registry_apply_s"] = round(prepare_s, 1)
                for s in result["samples"]:
                    s.stored_at = stored_at(db_path, s.site, s.kind)
            finally:
                platform.stop()
                influx_query(endpoints.influx_url, f'DROP DATABASE "{influx_db}"')
    all_samples: list[Sample] = result["samples"]
    latency: dict[str, dict[str, Any]] = {}
    missing: dict[str, int] = {}
    for kind in ("sos", "fall"):
        of_kind = [s for s in all_samples if s.kind == kind]
        for what in ("stored", "stream", "notified"):
            delays = [s.delay(getattr(s, f"{what}_at")) for s in of_kind]
            found = [d for d in delays if d is not None]
            # Samples never taken (given up) count as missing too.
            missing[f"{kind}_{what}"] = samples - len(found)
            latency[f"{kind}_{what}"] = percentiles_ms(found, samples - len(found))
    return LatencyResult(
        homes=homes,
        target_rate=rate,
        samples_per_kind=samples,
        latency_ms=latency,
        background=result["background"],
        platform=result["platform"],
        machine_before=before,
        machine_after=machine(),
        missing=missing,
    )


def _measure(
    platform: PlatformProcess,
    endpoints: Endpoints,
    hook: WebhookReceiver,
    prefix: str,
    homes: int,
    rate: float,
    samples: int,
    gap_s: float,
    warmup_s: float,
    user: tuple[str, str],
) -> dict[str, Any]:
    t_boot = time.monotonic()
    platform.start()
    boot_s = time.monotonic() - t_boot
    proc = platform.psutil_process()
    token = login(platform.base_url, user)
    collected: list[Sample] = []
    lags: list[float] = []
    with StreamReader(platform.base_url, token) as stream:
        load = LoadProcess(endpoints, prefix, homes, rate, duration_s=24 * 3600)
        load.start()
        device = _device_client(endpoints)
        try:
            time.sleep(warmup_s)  # the background reaches its steady state first
            m0 = platform.metrics()
            cpu0 = sum(proc.cpu_times()[:2])
            t0 = time.time()
            misses_in_a_row = 0
            for i in range(samples):
                if misses_in_a_row >= GIVE_UP_AFTER_MISSES:
                    break  # the platform is not keeping up; the figures so far say so
                site = site_id(prefix, i)
                for kind, topic, body in (
                    ("sos", f"eldercare/{site}/{site}-sos/sos", {"pressed": True}),
                    ("fall", f"eldercare/{site}/{site}-radar/fall", {"status": "fall"}),
                ):
                    published = time.time()
                    payload = json.dumps({"ts": published, **body})
                    device.publish(topic, payload, qos=1)
                    sample = Sample(kind, site, published)
                    collected.append(sample)
                    _wait_complete(sample, stream, hook, published + SAMPLE_TIMEOUT_S)
                    complete = sample.stream_at is not None and sample.notified_at is not None
                    misses_in_a_row = 0 if complete else misses_in_a_row + 1
                    lags.append(platform.metrics().get("eldercare_ingest_lag_seconds", -1.0))
                    time.sleep(gap_s)
            t1 = time.time()
            m1 = platform.metrics()
            cpu1 = sum(proc.cpu_times()[:2])
            rss = proc.memory_info().rss
        finally:
            load.stop()
            device.loop_stop()
            device.disconnect()
        background = load.result()
    # Let the platform work off what the broker holds (for as long as it makes progress),
    # then count what reached InfluxDB: anything acknowledged but not written is a drop.
    expected = background["acked"]
    written = 0
    t_stop = time.time()
    last_change = time.time()
    while written < expected and time.time() - last_change < DRAIN_STALL_S:
        time.sleep(1)
        now_written = _influx_count(endpoints.influx_url, platform.influx_db, prefix)
        if now_written != written:
            written, last_change = now_written, time.time()
    drain_s = last_change - t_stop
    window = t1 - t0
    m_end = platform.metrics()
    counters = {
        name: int(m_end.get(f"eldercare_ingest_{name}_total", 0))
        for name in ("received", "decoded", "readings", "written", "quarantined", "duplicates")
    }
    received = m1.get("eldercare_ingest_received_total", 0) - m0.get(
        "eldercare_ingest_received_total", 0
    )
    return {
        "samples": collected,
        "background": {
            "published": background["published"],
            "acked_by_broker": background["acked"],
            "publisher_rate_msgs_per_s": background["rate"],
            "ingest_rate_during_samples_msgs_per_s": round(received / window, 1),
            "readings_in_influx": written,
            "drops": max(0, background["acked"] - written),
            "drain_after_load_s": round(drain_s, 1),
            "ingest_counters": counters,
            "ingest_lag_s": {
                "max": round(max(lags), 3) if lags else None,
                "last": round(lags[-1], 3) if lags else None,
            },
        },
        "platform": {
            "boot_s": round(boot_s, 1),
            "cpu_percent_of_one_core": round((cpu1 - cpu0) / window * 100, 1),
            "rss_mb": round(rss / 2**20, 1),
            "gc_pause_max_ms": round(m_end.get("eldercare_gc_pause_max_seconds", 0.0) * 1000, 1),
            "gc_seconds_total": round(m_end.get("eldercare_gc_pause_seconds_total", 0.0), 2),
        },
    }


def render(result: LatencyResult) -> list[str]:
    lines = [
        f"homes {result.homes}, background target {result.target_rate:g} msg/s, "
        f"{result.samples_per_kind} samples per kind",
        f"{'publish →':<22}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}{'n':>6}",
    ]
    for key, p in result.latency_ms.items():
        lines.append(
            f"{key:<22}{_f(p['p50'])}{_f(p['p95'])}{_f(p['p99'])}{_f(p['max'])}{p['n']:>6}"
        )
    missing = {k: v for k, v in result.missing.items() if v}
    if missing:
        lines.append(
            f"missing (no arrival within {SAMPLE_TIMEOUT_S:g} s, or not sampled after "
            f"{GIVE_UP_AFTER_MISSES} misses in a row): {missing}"
        )
    b = result.background
    lines.append(
        f"background: published {b['published']}, broker acked {b['acked_by_broker']}, "
        f"publisher {b['publisher_rate_msgs_per_s']} msg/s, ingest "
        f"{b['ingest_rate_during_samples_msgs_per_s']} msg/s during samples"
    )
    lines.append(
        f"in InfluxDB {b['readings_in_influx']}, drops {b['drops']}, "
        f"ingest lag max {b['ingest_lag_s']['max']} s, backlog worked off "
        f"{b['drain_after_load_s']} s after the load stopped"
    )
    p = result.platform
    lines.append(
        f"platform: CPU {p['cpu_percent_of_one_core']} % of a core, RSS {p['rss_mb']} MB, "
        f"boot {p['boot_s']} s, registry apply {p.get('registry_apply_s')} s, "
        f"longest GC pause {p.get('gc_pause_max_ms')} ms ({p.get('gc_seconds_total')} s in GC)"
    )
    m0, m1 = result.machine_before, result.machine_after
    lines.append(
        f"machine: {m0['nproc']} cores, {m0['cpu_model']}, {m0['date']}, load average "
        f"{m0['loadavg_1_5_15']} before, {m1['loadavg_1_5_15']} after"
    )
    return lines


def _f(value: float | None) -> str:
    """None: the percentile falls on a sample that did not arrive within the wait."""
    return f"{'>' + str(round(SAMPLE_TIMEOUT_S * 1000)):>9}" if value is None else f"{value:>9.1f}"
