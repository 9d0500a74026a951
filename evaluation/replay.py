"""`eldercare eval replay RECORDING --registry FILE`: any recording through the whole
platform (a private broker, ingest, InfluxDB, the detectors and the alert pipeline) on
the event clock, on a fresh store.

The recording is JSON lines, one MQTT message each (docs/replay.md):
`{"topic": "...", "payload": <object or string>, "ts": <event time>}`; `ts` (epoch
seconds or ISO 8601 with offset) is optional when the payload carries its own time.
When the payload is an object without a time of its own, the event time is written
into it as the codecs read it: `last_seen` for zigbee2mqtt topics, `ts` for native
ones (a replayed message is received now; without its own time its event time would
be the wall clock). Messages are published in event-time order as fast as ingest
takes them. Anything quarantined or from a device not in the registry fails the
evaluation, with the counts by cause: an evaluation that silently dropped part of a
home's life would report a quiet home.

Output: every raise (reactivations of one alert record counted, as an operator sees
them) with its local time and kind, false alarms per home-day by kind, and with a truth
file (JSON lines as `eldercare sim` writes them, `device_sim.truth`) recall and delay
per incident kind; raises not matching an incident are the false alarms.

When the platform stops at the end, the detector runtime fires every timer due up to
the last event time of the recording (`DetectorRuntime.stop` on the event clock), so a
home that fell silent before the end is judged up to it; nothing is judged beyond it.
"""

from __future__ import annotations

import json
import math
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from device_sim.encoding import Message, iso_utc
from device_sim.publisher import BrokerConfig, MqttPublisher
from device_sim.truth import match_alerts, read_truth
from eldercare.errors import EldercareError
from eldercare_app.local_services import LocalServices, free_port
from evaluation.platform_scenarios import (
    STALL_S,
    EvaluationError,
    _check,
    _cli,
    _metric,
    _metrics,
    _wait_drained,
    _wait_subscribed,
    alert_raises,
    event_clock_platform_env,
)

NATIVE_ROOT = "eldercare/"
TIME_KEYS = ("ts", "last_seen", "time", "Time")
BACKLOG = 20_000  # messages published but not yet acknowledged by ingest


class RecordingError(EldercareError, ValueError):
    """The recording cannot be read (the line is named)."""


@dataclass(frozen=True, slots=True)
class Recorded:
    ts: float | None
    topic: str
    payload: bytes


def _event_time(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise RecordingError(f"{where}: ts must be epoch seconds or ISO 8601")
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise RecordingError(f"{where}: ts {value!r} is not ISO 8601") from exc
        if moment.tzinfo is None:
            raise RecordingError(f"{where}: ts {value!r} needs a UTC offset")
        return moment.timestamp()
    return float(value)


def read_recording(path: Path) -> list[Recorded]:
    """The messages in event-time order (the file's order among equal or missing times)."""
    out: list[Recorded] = []
    last_ts: float | None = None  # a line without a time keeps the one before it
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            doc = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RecordingError(f"{where}: not JSON ({exc.msg})") from exc
        if not isinstance(doc, dict) or not isinstance(doc.get("topic"), str):
            raise RecordingError(f"{where}: expected an object with a topic")
        ts = _event_time(doc.get("ts"), where)
        ts = last_ts = ts if ts is not None else last_ts
        payload = doc.get("payload")
        if isinstance(payload, dict):
            if ts is not None and not any(k in payload for k in TIME_KEYS):
                native = doc["topic"].startswith(NATIVE_ROOT)
                payload = {**payload, **({"ts": ts} if native else {"last_seen": iso_utc(ts)})}
            body = json.dumps(payload, separators=(",", ":")).encode()
        elif isinstance(payload, str):
            body = payload.encode()
        else:
            raise RecordingError(f"{where}: payload must be an object or a string")
        out.append(Recorded(ts, doc["topic"], body))
    if not out:
        raise RecordingError(f"{path}: no messages")
    return sorted(out, key=lambda r: r.ts if r.ts is not None else -math.inf)


def _hold(port: int, published: int) -> None:
    """Poll until ingest is within `BACKLOG` of what was published (or give up)."""
    deadline = time.monotonic() + STALL_S
    while published - _metric(_metrics(port), "eldercare_ingest_acked_total") > BACKLOG:
        if time.monotonic() > deadline:
            raise EvaluationError(f"ingest took nothing for {STALL_S:.0f} s while publishing")
        time.sleep(0.2)


def _home_sites(registry: Path) -> list[tuple[str, str]]:
    """(site id, time zone) of the registry's homes."""
    doc = yaml.safe_load(registry.read_text(encoding="utf-8")) or {}
    return [
        (str(s["id"]), str(s.get("timezone", "Asia/Shanghai")))
        for s in doc.get("sites", [])
        if s.get("kind", "home") == "home"
    ]


def replay_recording(
    recording: Path,
    registry: Path,
    workdir: Path,
    truth: Path | None = None,
    progress: Callable[[str], None] = print,
    drain_timeout_s: float = 1800.0,
    tolerance_s: float = 300.0,
) -> dict[str, Any]:
    messages = read_recording(recording)
    times = [m.ts for m in messages if m.ts is not None]
    if not times:
        raise RecordingError(f"{recording}: no message has an event time (ts)")
    homes = _home_sites(registry)
    workdir.mkdir(parents=True, exist_ok=True)
    run_dir = workdir / "run"
    services = LocalServices(run_dir, mqtt_auth=False)
    progress(f"starting private broker and InfluxDB in {run_dir}")
    services.up()
    platform: subprocess.Popen[bytes] | None = None
    try:
        http_port = free_port()
        env = event_clock_platform_env(services, workdir, http_port, "replay-ingest")
        _check(subprocess.run(_cli("registry", "apply", str(registry)), env=env,
                              capture_output=True, check=False), "registry apply")  # fmt: skip
        log_path = workdir / "platform.log"
        progress(f"starting the platform (event clock), log {log_path}")
        with open(log_path, "ab") as log:
            platform = subprocess.Popen(
                _cli("run", "--clock", "event"), env=env, stdout=log, stderr=log
            )
        _wait_subscribed(platform, http_port, log_path)
        broker = BrokerConfig(env["ELDERCARE_MQTT_HOST"], int(env["ELDERCARE_MQTT_PORT"]))
        publisher = MqttPublisher(broker, qos=1)
        try:
            publisher.connect("replay", Message("eldercare-replay/will", b"gone"))
            for i, m in enumerate(messages, 1):
                publisher.publish("replay", Message(m.topic, m.payload))
                if i % 1000 == 0:
                    publisher.send_all()
                    while (
                        i - _metric(_metrics(http_port), "eldercare_ingest_acked_total") > BACKLOG
                    ):
                        time.sleep(0.2)  # ingest is behind: let it catch up
            publisher.send_all()
            publisher.wait_acked(publisher.published)
        finally:
            publisher.close()
        progress(f"published {len(messages)} messages; draining")
        metrics = _wait_drained(platform, http_port, len(messages), drain_timeout_s, progress)
        # Nothing to wait for: ingest acknowledges a message only once the transitions
        # its readings caused are stored (ingest/service.py), and the stop below hands
        # on the timers due up to the last event time before the pipeline stops.
        metrics = _metrics(http_port) or metrics
        platform.send_signal(signal.SIGTERM)
        platform.wait(timeout=120)
        listing = subprocess.run(
            _cli("alerts", "list", "--json", "--limit", "1000000"),
            env=env,
            capture_output=True,
            check=False,
        )
        _check(listing, "alerts list")
        alerts = json.loads(listing.stdout or b"[]")
    finally:
        if platform is not None and platform.poll() is None:
            platform.kill()
            platform.wait()
        services.down()
    quarantined = {
        k.split('cause="', 1)[1].split('"', 1)[0]: int(v)
        for k, v in metrics.items()
        if k.startswith("eldercare_ingest_quarantined_total{") and v
    }
    unregistered = int(_metric(metrics, "eldercare_ingest_unregistered_total"))
    tz = {site: ZoneInfo(zone) for site, zone in homes}
    raises = sorted(alert_raises(alerts), key=lambda r: r["raised_at"] or 0.0)
    home_days = len(homes) * (max(times) - min(times)) / 86400
    report: dict[str, Any] = {
        "recording": str(recording),
        "messages": len(messages),
        "from": datetime.fromtimestamp(min(times), UTC).isoformat(),
        "to": datetime.fromtimestamp(max(times), UTC).isoformat(),
        "home_days": round(home_days, 3),
        "quarantined": quarantined,
        "unregistered": unregistered,
        "raises": [
            {
                **r,
                "local": datetime.fromtimestamp(r["raised_at"], tz.get(r["site"], UTC)).strftime(
                    "%Y-%m-%d %H:%M"
                )
                if r["raised_at"] is not None
                else None,
            }
            for r in raises
        ],
    }
    if truth is not None:
        scored = match_alerts(
            read_truth(truth), raises, home_days=home_days, tolerance_s=tolerance_s
        ).as_dict()
        report["truth"] = scored
    else:
        by_kind: dict[str, int] = {}
        for r in raises:
            by_kind[r["kind"]] = by_kind.get(r["kind"], 0) + 1
        report["false_alarms"] = {
            "total": len(raises),
            "per_home_day": round(len(raises) / home_days, 3) if home_days else None,
            "by_kind": dict(sorted(by_kind.items())),
        }
    report["ok"] = not quarantined and not unregistered
    return report


def format_replay(report: dict[str, Any]) -> str:
    lines = [
        f"{report['messages']} messages, {report['from']} – {report['to']}, "
        f"{report['home_days']} home-days",
    ]
    for r in report["raises"]:
        who = f" {r['resident']}" if r.get("resident") else ""
        lines.append(f"  {r['local']} {r['site']} {r['kind']}{who}")
    if "false_alarms" in report:
        fa = report["false_alarms"]
        lines.append(
            f"false alarms (no truth: every raise): {fa['total']} "
            f"({fa['per_home_day']} per home-day) {fa['by_kind']}"
        )
    else:
        lines.append(json.dumps(report["truth"], indent=1))
    if not report["ok"]:
        lines.append(
            f"FAILED: quarantined {report['quarantined']}, unregistered {report['unregistered']}"
        )
    return "\n".join(lines)
