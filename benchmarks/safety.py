"""Issue 14, defects 2-4, measured on the running platform (`eldercare bench safety`).

Also `python -m benchmarks.safety` (the same options; `--only` takes several names).

`eldercare run` in its own process (wall clock) over the project's own Mosquitto and
InfluxDB started in a temporary directory, a SQLite store, and an operator contact per
home notified through Apprise `json://` at a real HTTP receiver in this process. Then:

1. store write-locked: another process holds `BEGIN IMMEDIATE` on the SQLite file for
   `--lock-s` (45 s); 3 SOS presses at 3 homes during it; after the release, how many
   were raised (stored) and notified within `--settle-s`, and how many times each;
2. store read-only: the database file and its WAL immutable (`chattr +i`, read-only
   even for root and for open connections) for `--read-only-s` (40 s); the same;
3. InfluxDB hung: SIGSTOP for `--hang-s` (60 s); 3 SOS presses at 3 homes, 10 s apart;
   publish → `raised` on the live stream, each (and how many within 1 s);
4. second press: a press, its notification, an operator acknowledgement through the
   API, a second press 2 s later: re-raised (open again) and notified again within 20 s.

Run it against a checkout of another revision (same command) to compare.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from benchmarks.support import (
    Endpoints,
    PlatformProcess,
    StreamReader,
    bench_registry,
    influx_query,
    login,
    prepare_store,
    site_id,
)
from eldercare_app.local_services import LocalServices, free_port
from eldercare_app.webhook_receiver import WebhookReceiver

SOS_TEXT = "SOS call"  # what the English notification of an SOS says
HOMES = 12


def _alerts(db: Path, site: str) -> list[tuple[int, str]]:
    """(id, status) of the site's SOS alerts, read-only (works while another holds a lock)."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as c:
        return list(c.execute("SELECT id, status FROM alerts WHERE site=? AND kind='sos'", (site,)))


def _notified(hook: WebhookReceiver, site: str, since: float) -> int:
    with hook.lock:
        return sum(1 for a in hook.arrivals if a.key == site and a.at >= since)


@contextlib.contextmanager
def _write_locked(db: Path) -> Iterator[None]:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys\n"
            f"c = sqlite3.connect({str(db)!r}, isolation_level=None, timeout=60)\n"
            "c.execute('BEGIN IMMEDIATE')\n"
            "print('locked', flush=True)\n"
            "sys.stdin.readline()\n"
            "c.execute('ROLLBACK')\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdin is not None
    if holder.stdout.readline().strip() != "locked":
        raise RuntimeError("could not take the write lock")
    try:
        yield
    finally:
        holder.stdin.write("\n")
        holder.stdin.close()
        holder.wait(30)


@contextlib.contextmanager
def _read_only(db: Path) -> Iterator[None]:
    files = [str(p) for p in (db, db.with_name(db.name + "-wal")) if p.exists()]
    subprocess.run(["chattr", "+i", *files], check=True)
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", *files], check=True)


def _press(device: Any, site: str) -> float:
    ts = time.time()
    device.publish(f"eldercare/{site}/{site}-sos/sos", json.dumps({"ts": ts, "pressed": True}), 1)
    return ts


def _unwritable_store(
    name: str,
    unwritable: Callable[[Path], Any],
    hold_s: float,
    settle_s: float,
    sites: list[str],
    db: Path,
    device: Any,
    hook: WebhookReceiver,
) -> dict[str, Any]:
    t0 = time.time()
    with unwritable(db):
        for site in sites:
            time.sleep(2.0)
            _press(device, site)
        time.sleep(max(0.0, hold_s - (time.time() - t0)))
    released = time.time()
    deadline = released + settle_s
    while time.time() < deadline:
        if all(_alerts(db, s) and _notified(hook, s, t0) for s in sites):
            break
        time.sleep(0.2)
    time.sleep(3.0)  # a duplicate would come within a tick or two
    raised = [len(_alerts(db, s)) for s in sites]
    notified = [_notified(hook, s, t0) for s in sites]
    return {
        "scenario": name,
        "held_s": round(released - t0, 1),
        "raised": f"{sum(1 for n in raised if n)}/{len(sites)}",
        "notified": f"{sum(1 for n in notified if n)}/{len(sites)}",
        "alerts_per_press": raised,
        "notifications_per_press": notified,
    }


def _influx_hung(
    hang_s: float, sites: list[str], pid: int, device: Any, stream: StreamReader
) -> dict[str, Any]:
    latencies: list[float | None] = []
    os.kill(pid, signal.SIGSTOP)
    t0 = time.time()
    try:
        for site in sites:
            published = _press(device, site)
            got = None
            while time.time() < published + 10.0:
                at = stream.first(site, "sos")
                if at is not None:
                    got = at - published
                    break
                time.sleep(0.005)
            latencies.append(None if got is None else round(got, 3))
        time.sleep(max(0.0, hang_s - (time.time() - t0)))
    finally:
        os.kill(pid, signal.SIGCONT)
    return {
        "scenario": "influxdb hung (SIGSTOP)",
        "stream_latency_s": latencies,
        "within_1s": f"{sum(1 for x in latencies if x is not None and x < 1.0)}/{len(sites)}",
    }


def _second_press(
    sites: list[str], db: Path, device: Any, hook: WebhookReceiver, base: str, token: str
) -> dict[str, Any]:
    reraised = 0
    notified_again = 0
    headers = {"Authorization": f"Bearer {token}"}
    for site in sites:
        t0 = _press(device, site)
        deadline = t0 + 20
        while time.time() < deadline and not (_alerts(db, site) and _notified(hook, site, t0)):
            time.sleep(0.1)
        found = _alerts(db, site)
        if not found:
            continue
        alert_id = found[0][0]
        httpx.post(f"{base}/api/alerts/{alert_id}/acknowledge", headers=headers, timeout=10)
        time.sleep(2.0)
        t1 = _press(device, site)
        deadline = t1 + 20
        while time.time() < deadline:
            if _notified(hook, site, t1):
                break
            time.sleep(0.1)
        reraised += any(status == "open" for _, status in _alerts(db, site))
        notified_again += _notified(hook, site, t1) > 0
    return {
        "scenario": "second press after acknowledgement",
        "re_raised": f"{reraised}/{len(sites)}",
        "notified_again_within_20s": f"{notified_again}/{len(sites)}",
    }


SCENARIOS = ("lock", "read-only", "influx-hung", "second-press")


def run(
    lock_s: float,
    read_only_s: float,
    hang_s: float,
    settle_s: float,
    only: tuple[str, ...] = SCENARIOS,
) -> list[dict[str, Any]]:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    out: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="eldercare-safety-eval-") as tmp:
        work = Path(tmp)
        services = LocalServices(work / "services-run", mqtt_auth=False)
        services.up()
        try:
            endpoints = Endpoints(
                services.mosquitto.host, services.mosquitto.port or 0, services.influxdb.url
            )
            influx_pid = services.influxdb.pid
            assert influx_pid is not None
            with WebhookReceiver() as hook:
                prefix = "safety"
                influx_db = f"safety_eval_{os.getpid()}"
                influx_query(endpoints.influx_url, f'CREATE DATABASE "{influx_db}"')
                db = work / "eldercare.db"
                user = ("eval-admin", "eval password 1")
                prepare_store(
                    f"sqlite+aiosqlite:///{db}", bench_registry(HOMES, prefix, hook.url), user
                )
                platform = PlatformProcess(
                    work, endpoints, influx_db, f"sqlite+aiosqlite:///{db}", free_port()
                )
                platform.start()
                device = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="safety-eval")
                device.connect(endpoints.mqtt_host, endpoints.mqtt_port)
                device.loop_start()
                token = login(platform.base_url, user)
                sites = [site_id(prefix, i) for i in range(HOMES)]
                try:
                    with StreamReader(platform.base_url, token) as stream:
                        if "lock" in only:
                            out.append(
                                _unwritable_store(
                                    f"store write-locked {lock_s:.0f} s",
                                    _write_locked,
                                    lock_s,
                                    settle_s,
                                    sites[0:3],
                                    db,
                                    device,
                                    hook,
                                )
                            )
                        if "read-only" in only:
                            out.append(
                                _unwritable_store(
                                    f"store read-only {read_only_s:.0f} s",
                                    _read_only,
                                    read_only_s,
                                    settle_s,
                                    sites[3:6],
                                    db,
                                    device,
                                    hook,
                                )
                            )
                        if "influx-hung" in only:
                            out.append(_influx_hung(hang_s, sites[6:9], influx_pid, device, stream))
                        if "second-press" in only:
                            out.append(
                                _second_press(
                                    sites[9:12], db, device, hook, platform.base_url, token
                                )
                            )
                finally:
                    device.loop_stop()
                    device.disconnect()
                    platform.stop()
        finally:
            services.down()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lock-s", type=float, default=45.0)
    parser.add_argument("--read-only-s", type=float, default=40.0)
    parser.add_argument("--hang-s", type=float, default=60.0)
    parser.add_argument("--settle-s", type=float, default=60.0)
    parser.add_argument(
        "--only", nargs="+", choices=SCENARIOS, default=list(SCENARIOS), help="scenarios to run"
    )
    args = parser.parse_args()
    for row in run(args.lock_s, args.read_only_s, args.hang_s, args.settle_s, tuple(args.only)):
        print(json.dumps(row, ensure_ascii=False))


if __name__ == "__main__":
    main()
