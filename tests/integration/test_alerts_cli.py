"""`eldercare alerts ...` against a real SQLite store and a real InfluxDB."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from alerts.cli import app
from alerts.store import AlertStore, init_store
from eldercare.clock import FakeClock
from eldercare.db import create_engine
from eldercare.domain import AlertKind
from tests.helpers.alerts import T0, make_pipeline, policies, registry, transition

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, influx_url: str) -> dict[str, str]:
    db = f"alerts_cli_{uuid.uuid4().hex[:8]}"
    httpx.post(f"{influx_url}/query", data={"q": f'CREATE DATABASE "{db}"'}).raise_for_status()
    values = {
        "ELDERCARE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/cli.db",
        "ELDERCARE_RUN_DIR": str(tmp_path / "run"),
        "ELDERCARE_INFLUX_URL": influx_url,
        "ELDERCARE_INFLUX_DB": db,
        "ELDERCARE_PUBLIC_URL": "https://care.example.org",
    }
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    return values


def _seed(url: str) -> None:
    """Four critical alerts acknowledged after 30, 50, 120 s and never; one high after 200 s."""

    async def main() -> None:
        engine = create_engine(url)
        await init_store(engine)
        clock = FakeClock(T0)
        pipeline, service = make_pipeline(AlertStore(engine), registry([]), clock, policies([]))
        await pipeline.handle_transitions(
            [
                transition(AlertKind.SOS, T0, resident="a"),
                transition(AlertKind.FALL, T0, resident="b"),
                transition(AlertKind.WEARABLE_FALL, T0, resident="c"),
                transition(AlertKind.SOS, T0, resident="d"),
                transition(AlertKind.INACTIVITY, T0, resident="e"),
            ]
        )
        await pipeline.tick()
        for alert_id, delay in ((1, 30), (2, 50), (3, 120), (5, 200)):
            clock.set(T0 + delay)
            await service.acknowledge(alert_id, by="op")
        clock.set(T0 + 600)
        await service.resolve(1, "false_alarm", None, by="op")
        await engine.dispose()

    asyncio.run(main())


def test_list_ack_resolve(env: dict[str, str]) -> None:
    _seed(env["ELDERCARE_DATABASE_URL"])
    result = runner.invoke(app, ["list", "--json", "--status", "open"])
    assert result.exit_code == 0, result.output
    docs = json.loads(result.output)
    assert [d["id"] for d in docs] == [4]
    d = docs[0]
    for key in (
        "id",
        "site",
        "resident",
        "room",
        "kind",
        "severity",
        "condition",
        "status",
        "raised_at",
        "created_at",
        "acknowledged_at",
        "resolved_at",
        "outcome",
        "history",
    ):
        assert key in d
    assert d["raised_at"] == "2026-11-22T18:41:00.000Z"
    assert [h["action"] for h in d["history"]] == ["raised", "escalated"]

    result = runner.invoke(app, ["ack", "4", "--by", "王敏"])
    assert result.exit_code == 0, result.output
    assert "acknowledged by 王敏" in result.output
    result = runner.invoke(
        app, ["resolve", "4", "--outcome", "ambulance_called", "--note", "已送医", "--by", "王敏"]
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["list", "--json", "--kind", "sos"])
    by_id = {d["id"]: d for d in json.loads(result.output)}
    assert by_id[4]["outcome"] == "ambulance_called" and by_id[4]["note"] == "已送医"
    assert by_id[4]["status"] == "resolved"

    # The human actions went to InfluxDB as alert events.
    q = "SELECT * FROM alert_event WHERE alert_id = '4'"
    resp = httpx.post(
        f"{env['ELDERCARE_INFLUX_URL']}/query", data={"q": q, "db": env["ELDERCARE_INFLUX_DB"]}
    )
    series = resp.json()["results"][0]["series"][0]
    events = {row[series["columns"].index("event")] for row in series["values"]}
    assert events == {"acknowledged", "resolved"}

    bad = runner.invoke(app, ["resolve", "4", "--outcome", "false_alarm"])
    assert bad.exit_code == 1 and "already resolved" in bad.output
    bad = runner.invoke(app, ["resolve", "3", "--outcome", "fixed"])
    assert bad.exit_code == 1 and "unknown outcome" in bad.output
    bad = runner.invoke(app, ["ack", "999"])
    assert bad.exit_code == 1 and "no alert 999" in bad.output


def test_sla_figures(env: dict[str, str]) -> None:
    _seed(env["ELDERCARE_DATABASE_URL"])
    result = runner.invoke(app, ["sla", "--since", "2026-11-22T00:00:00Z", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    overall = doc["overall"]
    assert overall["count"] == 5 and overall["acknowledged"] == 4
    assert overall["ack_within_60s"] == pytest.approx(2 / 5)
    assert overall["ack_within_180s"] == pytest.approx(3 / 5)
    critical = doc["by_severity"]["critical"]
    assert critical["count"] == 4 and critical["unacknowledged"] == 1
    assert critical["ack_within_60s"] == pytest.approx(0.5)
    assert critical["ack_p50_s"] == pytest.approx(50)
    assert critical["ack_p95_s"] == pytest.approx(113)
    assert critical["resolve_p50_s"] == pytest.approx(600)
    assert doc["by_severity"]["high"]["ack_p50_s"] == pytest.approx(200)
    later = runner.invoke(app, ["sla", "--since", "2026-11-23T00:00:00Z", "--json"])
    assert json.loads(later.output)["overall"]["count"] == 0
    text = runner.invoke(app, ["sla", "--since", "2026-11-22"])
    assert "overall" in text.output and "40.0%" in text.output


def test_route_shows_who_is_notified_when(env: dict[str, str], tmp_path: Path) -> None:
    index = registry(["json://127.0.0.1:9/d"], ["json://127.0.0.1:9/s"])
    path = tmp_path / "registry.yaml"
    path.write_text(
        yaml.safe_dump(index.document.model_dump(mode="json"), allow_unicode=True),
        encoding="utf-8",
    )
    result = runner.invoke(
        app, ["route", "--site", "hh-3-2-401", "--kind", "fall", "--registry", str(path)]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("fall (跌倒 / Fall) at site hh-3-2-401")
    assert "+     0 s  step 1" in lines[1] and "centre" in lines[1]
    assert "+    60 s  step 2" in lines[2]
    assert "李梅" in lines[2] and "Li Wei" in lines[2] and "王主任" in lines[2]
    assert "until someone acknowledges" in result.output
    assert "supervisor:super (王主任) has no notification channel" in result.output

    result = runner.invoke(
        app,
        [
            "route",
            "--site",
            "hh-3-2-401",
            "--kind",
            "inactivity",
            "--registry",
            str(path),
            "--json",
        ],
    )
    plan = json.loads(result.output)
    assert plan["severity"] == "high" and plan["steps"][1]["at_s"] == 180
    assert any("site_offline" in t for t in plan["inhibited_by"])
    assert any("fall" in t for t in plan["inhibited_by"])
    bad = runner.invoke(app, ["route", "--site", "x", "--kind", "falling", "--registry", str(path)])
    assert bad.exit_code == 1 and "unknown kind" in bad.output


def test_wired_into_the_eldercare_command(env: dict[str, str], tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "registry.yaml"
    path.write_text(
        yaml.safe_dump(registry([]).document.model_dump(mode="json"), allow_unicode=True),
        encoding="utf-8",
    )
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "eldercare_app.cli",
            "alerts",
            "route",
            "--site",
            "hh-3-2-401",
            "--kind",
            "sos",
            "--registry",
            str(path),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(out.stdout)["steps"][0]["recipients"][0]["key"] == "centre"


def test_ack_while_influxdb_is_down_hands_its_events_over(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The acknowledgement is stored; its dashboard event, which InfluxDB could not take,
    waits in the outbox for the platform's recorder instead of vanishing with the CLI."""
    _seed(env["ELDERCARE_DATABASE_URL"])
    monkeypatch.setenv("ELDERCARE_INFLUX_URL", "http://127.0.0.1:9")
    result = runner.invoke(app, ["ack", "4", "--by", "王敏"])
    assert result.exit_code == 0, result.output
    files = list((Path(env["ELDERCARE_RUN_DIR"]) / "alert-events-outbox").glob("*.lp"))
    assert len(files) == 1
    [line] = files[0].read_text(encoding="utf-8").splitlines()
    assert line.startswith("alert_event,") and "event=acknowledged" in line
