"""End-to-end scenario evaluation: the simulator against the whole running platform.

1. start private local services (broker, InfluxDB) and a private SQLite store in a
   work directory, so nothing of a developer's own setup is touched;
2. write and apply the simulated population's registry;
3. start `eldercare run --clock event` as a child process and wait until ingest is
   subscribed;
4. publish the simulation as fast as the platform takes it (QoS 1, each site with
   its own broker account, holding back while the platform's backlog at the broker
   exceeds MAX_BACKLOG), then wait until ingest has acknowledged every message (it
   acknowledges only after the readings are recorded and handed to the detectors);
5. stop the platform (it drains downstream first), read every alert with
   `eldercare alerts list --json`, and score them with `match_alerts`.

Only subprocesses and HTTP are used to reach the platform: the simulator stays a
client, as real devices and operators are.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from device_sim.accounts import wait_site_passwords
from device_sim.clock import Pacer
from device_sim.population import write_registry
from device_sim.publisher import BrokerConfig, MqttPublisher
from device_sim.runner import RunStats, run
from device_sim.simulation import SimConfig, Simulation
from device_sim.truth import MatchReport, match_alerts, write_truth
from eldercare.errors import EldercareError
from eldercare_app.local_services import ISSUED_DIR, LocalServices, free_port

# The platform's session queue at the broker holds 1,000,000 messages (local_services):
# the simulator waits while the platform is this far behind.
MAX_BACKLOG = 200_000
STALL_S = 120.0  # draining: no progress for this long means messages were lost


class EvaluationError(EldercareError, RuntimeError):
    """The platform could not be started, or did not take the messages in time."""


@dataclass(frozen=True, slots=True)
class EvaluationResult:
    report: MatchReport
    stats: RunStats
    alerts: int
    raises: int
    platform_metrics: dict[str, float]
    workdir: Path


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "eldercare_app.cli", *args]


# The metrics bearer token of the platform listening on a port (`/metrics` is private).
_scrape_tokens: dict[int, str] = {}


def _metrics(port: int) -> dict[str, float]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics")
    if port in _scrape_tokens:
        request.add_header("Authorization", f"Bearer {_scrape_tokens[port]}")
    try:
        with urllib.request.urlopen(request, timeout=2) as resp:
            text = resp.read().decode()
    except (urllib.error.URLError, OSError):
        return {}
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        name, _, value = line.rpartition(" ")
        try:
            out[name] = out.get(name, 0.0) + float(value)
        except ValueError:
            continue
    return out


def event_clock_platform_env(
    services: LocalServices, workdir: Path, http_port: int, client_prefix: str
) -> dict[str, str]:
    """The environment of a private `eldercare run --clock event` on these services, its
    store in `workdir`; `/metrics` is private, so its bearer token is kept for `_metrics`."""
    return {
        **os.environ,
        **services.env(),
        "ELDERCARE_RUN_DIR": str(services.run_dir),
        "ELDERCARE_METRICS_TOKEN": _scrape_tokens.setdefault(http_port, secrets.token_urlsafe(24)),
        "ELDERCARE_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'eldercare.db'}",
        "ELDERCARE_HTTP_PORT": str(http_port),
        "ELDERCARE_PUBLIC_URL": f"http://127.0.0.1:{http_port}",
        "ELDERCARE_CLOCK_MODE": "event",
        "ELDERCARE_MQTT_CLIENT_ID": f"{client_prefix}-{os.getpid()}",
        "ELDERCARE_LOG_LEVEL": "WARNING",
    }


def _metric(metrics: Mapping[str, float], name: str) -> float:
    """Sum of a metric over its label sets."""
    return sum(v for k, v in metrics.items() if k == name or k.startswith(name + "{"))


def _epoch(value: str | None) -> float | None:
    if value is None:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def alert_raises(alerts: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each time an alert was raised: when created, and each reactivation after a clear.

    An alert stays one record while unresolved, so a second incident of the same
    kind for the same resident shows as a reactivation in its history."""
    out: list[dict[str, Any]] = []
    for a in alerts:
        base = {"site": a["site"], "resident": a.get("resident"), "kind": a["kind"]}
        out.append({**base, "raised_at": _epoch(a["raised_at"])})
        for h in a.get("history") or []:
            if (
                h.get("action") == "updated"
                and (h.get("data") or {}).get("change") == "reactivated"
            ):
                out.append({**base, "raised_at": _epoch(h["event_time"])})
    return out


def evaluate_scenarios(
    cfg: SimConfig,
    workdir: Path,
    progress: Callable[[str], None] = print,
    drain_timeout_s: float = 1800.0,
    tolerance_s: float = 300.0,
) -> EvaluationResult:
    workdir.mkdir(parents=True, exist_ok=True)
    run_dir = workdir / "run"
    services = LocalServices(run_dir)
    progress(f"starting private broker and InfluxDB in {run_dir}")
    services.up()
    platform: subprocess.Popen[bytes] | None = None
    try:
        http_port = free_port()
        env = event_clock_platform_env(services, workdir, http_port, "eval-ingest")
        sim = Simulation(cfg)
        registry = workdir / "registry.yaml"
        write_registry(sim.sites, registry)
        write_truth(sim.truth, workdir / "truth.jsonl")
        progress(f"{len(sim.sites)} sites, {len(sim.truth)} incidents; applying the registry")
        _check(subprocess.run(_cli("registry", "apply", str(registry)), env=env,
                              capture_output=True, check=False), "registry apply")  # fmt: skip

        log_path = workdir / "platform.log"
        progress(f"starting the platform (event clock), log {log_path}")
        with open(log_path, "ab") as log:
            platform = subprocess.Popen(
                _cli("run", "--clock", "event"), env=env, stdout=log, stderr=log
            )
        _wait_subscribed(platform, http_port, log_path)

        host, port = env["ELDERCARE_MQTT_HOST"], int(env["ELDERCARE_MQTT_PORT"])
        user, password = env.get("ELDERCARE_MQTT_USERNAME"), env.get("ELDERCARE_MQTT_PASSWORD")
        broker = BrokerConfig(host, port, user, password)
        if services.mosquitto.broker_files.password_file.exists():
            # Each home's gateway logs in with its own site account, as in the field.
            broker.site_passwords = _site_accounts(services, [s.id for s in sim.sites])
            progress(f"{len(broker.site_passwords)} sites log in with their own accounts")
        publisher = MqttPublisher(broker, qos=1)

        def hold(published: int) -> bool:
            """Keep the platform's backlog at the broker well inside what it queues."""
            if platform is not None and platform.poll() is not None:
                raise EvaluationError(f"the platform exited ({platform.returncode})")
            acked = _metric(_metrics(http_port), "eldercare_ingest_acked_total")
            return published - acked > MAX_BACKLOG

        progress("publishing the simulation as fast as the platform takes it")
        try:
            stats = run(
                sim,
                publisher,
                Pacer(0, sim.start),
                progress=lambda s: progress(f"  {s.messages} messages, {s.rate:.0f} msg/s"),
                hold=hold,
            )
        finally:
            publisher.close()
        progress(f"published {stats.messages} messages in {stats.wall_s:.0f} s; draining")
        metrics = _wait_drained(platform, http_port, stats.messages, drain_timeout_s, progress)
        # Nothing to wait for: ingest acknowledges a message only once the transitions
        # its readings caused are stored (ingest/service.py), and the stop below hands
        # on the timers due up to the last event time before the pipeline stops.
        metrics = _metrics(http_port) or metrics
        progress("stopping the platform")
        platform.send_signal(signal.SIGTERM)
        try:
            platform.wait(timeout=120)
        except subprocess.TimeoutExpired:
            platform.kill()
            raise EvaluationError("the platform did not stop within 120 s") from None

        listing = subprocess.run(
            _cli("alerts", "list", "--json", "--limit", "1000000"),
            env=env,
            capture_output=True,
            check=False,
        )
        _check(listing, "alerts list")
        alerts = json.loads(listing.stdout or b"[]")
        (workdir / "alerts.json").write_bytes(listing.stdout or b"[]")
        raises = alert_raises(alerts)
        report = match_alerts(sim.truth, raises, home_days=sim.home_days, tolerance_s=tolerance_s)
        (workdir / "report.json").write_text(json.dumps(report.as_dict(), indent=1) + "\n")
        return EvaluationResult(report, stats, len(alerts), len(raises), metrics, workdir)
    finally:
        if platform is not None and platform.poll() is None:
            platform.kill()
            platform.wait()
        services.down()


def _site_accounts(services: LocalServices, site_ids: list[str]) -> dict[str, str]:
    folder = services.mosquitto.dir / ISSUED_DIR
    passwords = wait_site_passwords(folder, site_ids, 120.0)
    if len(passwords) < len(site_ids):
        raise EvaluationError(
            f"the platform issued broker accounts for {len(passwords)} of {len(site_ids)} "
            f"sites in 120 s (in {folder})"
        )
    return passwords


def _check(proc: subprocess.CompletedProcess[bytes], what: str) -> None:
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout or b"").decode(errors="replace")[-2000:]
        raise EvaluationError(f"{what} failed (exit {proc.returncode}):\n{detail}")


def _wait_subscribed(platform: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if platform.poll() is not None:
            raise EvaluationError(f"the platform exited ({platform.returncode}); see {log}")
        # Ingest sets the gauge once the broker acknowledged its subscriptions (SUBACK).
        if _metric(_metrics(port), "eldercare_ingest_mqtt_connected") >= 1:
            return
        time.sleep(0.2)
    raise EvaluationError(f"the platform did not connect to the broker in 120 s; see {log}")


def _wait_drained(
    platform: subprocess.Popen[bytes],
    port: int,
    published: int,
    timeout_s: float,
    progress: Callable[[str], None],
) -> dict[str, float]:
    deadline = time.monotonic() + timeout_s
    last_report = 0.0
    last_acked, moved_at = -1.0, time.monotonic()
    while time.monotonic() < deadline:
        if platform.poll() is not None:
            raise EvaluationError(f"the platform exited ({platform.returncode}) while draining")
        metrics = _metrics(port)
        acked = _metric(metrics, "eldercare_ingest_acked_total")
        if acked >= published:
            return metrics
        if acked != last_acked:
            last_acked, moved_at = acked, time.monotonic()
        elif time.monotonic() - moved_at > STALL_S:
            raise EvaluationError(
                f"ingest acknowledged {acked:.0f} of {published} messages and nothing more in "
                f"{STALL_S:.0f} s: the broker dropped some (an ACL refusal, a full queue?)"
            )
        if time.monotonic() - last_report > 15:
            last_report = time.monotonic()
            progress(f"  ingest acknowledged {acked:.0f} of {published}")
        time.sleep(0.25)
    raise EvaluationError(f"ingest did not take all {published} messages in {timeout_s:.0f} s")


def format_report(result: EvaluationResult) -> str:
    r = result.report
    lines = [
        f"{'kind':<20} {'expected':>8} {'detected':>8} {'late':>5} {'recall':>7} "
        f"{'p50 s':>8} {'p95 s':>8} {'false':>6} {'outage':>6}",
    ]
    for kind, k in sorted(r.per_kind.items()):
        recall = "-" if k.expected == 0 else f"{k.recall:.2f}"
        p50 = "-" if k.delay_p50_s is None else f"{k.delay_p50_s:.0f}"
        p95 = "-" if k.delay_p95_s is None else f"{k.delay_p95_s:.0f}"
        lines.append(
            f"{kind:<20} {k.expected:>8} {k.detected:>8} {k.late:>5} {recall:>7} "
            f"{p50:>8} {p95:>8} {k.false_alarms:>6} {k.during_outage:>6}"
        )
    m = result.platform_metrics
    lines += [
        "",
        f"false alarms: {r.false_alarms} over {r.home_days:.1f} site-days "
        f"= {r.false_alarms_per_home_day:.3f} per site-day "
        f"(and {r.during_outage} raised during injected site outages)",
        f"alerts: {result.alerts} ({result.raises} raises); "
        f"published {result.stats.messages} messages at {result.stats.rate:.0f} msg/s",
        f"ingest: acked {_metric(m, 'eldercare_ingest_acked_total'):.0f}, "
        f"quarantined {_metric(m, 'eldercare_ingest_quarantined_total'):.0f}, "
        f"unregistered {_metric(m, 'eldercare_ingest_unregistered_total'):.0f}",
        f"work directory (truth, registry, alerts, report, platform log): {result.workdir}",
    ]
    return "\n".join(lines)
