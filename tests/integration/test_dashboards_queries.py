"""Every panel's query, run against a real InfluxDB filled by a short simulated day.

The readings take the real path: `device_sim` publishes over MQTT to the session's
Mosquitto, the real `IngestService` decodes, resolves and writes them to InfluxDB.
Alert events are the alert package's own `AlertEvent` lines, one lifecycle per
incident the simulator injected (raised when due, acknowledged, mostly resolved).
`site_status` / `device_status` have no producer yet (the platform's periodic status
writer is to come), so this module writes them as docs/influx-schema.md specifies,
from the readings ingest handed on.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio

from alerts.events import AlertEvent, InfluxAlertEventRecorder
from alerts.records import AlertRecord
from dashboards.build import dashboard_docs
from dashboards.check import QueryResult, TimeRange, check_dashboard
from device_sim.clock import Pacer
from device_sim.device import Impairments
from device_sim.population import registry_document
from device_sim.publisher import BrokerConfig, MqttPublisher
from device_sim.runner import run
from device_sim.scenarios import parse_specs
from device_sim.simulation import SimConfig, Simulation
from eldercare.domain import DEFAULT_SEVERITY, AlertCondition, AlertKind, AlertStatus
from eldercare.influx import InfluxClient, encode_line, quote_ident, ts_to_ns
from eldercare.registry_index import RegistryIndex
from eldercare.registry_model import RegistryDocument
from eldercare.settings import Settings
from field_service.coverage import coverage
from field_service.coverage_points import coverage_lines
from field_service.lifecycle import OrderState
from field_service.orders import WorkOrder
from field_service.response_points import response_lines
from field_service.visits import VisitCategory, VisitPeriod
from ingest.service import IngestService
from tests.helpers.ingest import RecordingSink
from tests.helpers.polling import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

ZONE = ZoneInfo("Asia/Shanghai")
# Noon to noon, two days ago: one night, and recent enough for ingest (it quarantines
# readings more than 30 days old).
START = (
    datetime.now(ZONE).replace(hour=12, minute=0, second=0, microsecond=0) - timedelta(days=2)
).timestamp()
ACK_DELAYS_S = (20.0, 45.0, 75.0, 150.0, 400.0)  # some within 60 s, some within 180 s, some late


@dataclass
class Filled:
    db: str
    doc: RegistryDocument
    sim: Simulation
    messages: int
    raised: int
    open_by_site: dict[str, int]
    sites_online: int
    devices_online: int
    time_range: TimeRange


def _simulation() -> Simulation:
    return Simulation(
        SimConfig(
            homes=3,
            institutions=1,
            days=1.0,
            seed=3,
            start=START,
            impairments=Impairments.none(),
            institution_floors=2,
            rooms_per_floor=2,
            incidents_per_hour=0.5,
            scenarios=tuple(parse_specs("kitchen_fire_smoke")),  # the hazards panel
        )
    )


def _publish(sim: Simulation, host: str, port: int, credentials: tuple[str, str]) -> int:
    user, password = credentials
    publisher = MqttPublisher(
        BrokerConfig(host, port, user, password, client_prefix=f"dash-{secrets.token_hex(3)}")
    )
    try:
        stats = run(sim, publisher, Pacer(0.0, sim.start))
    finally:
        publisher.close()
    return stats.messages


def _alert_events(
    sim: Simulation, doc: RegistryDocument
) -> tuple[list[AlertEvent], dict[str, int]]:
    """One lifecycle per injected incident; every fourth is left open."""
    org = {s.id: s.organisation for s in doc.sites}
    events: list[AlertEvent] = []
    open_by_site: dict[str, int] = {}
    for i, truth in enumerate(sorted(sim.truth, key=lambda t: t.due)):
        kind = AlertKind(truth.kind)
        raised = truth.due
        record = AlertRecord(
            id=i + 1, site=truth.site, resident=truth.resident, room=None, device=truth.device,
            kind=kind, severity=DEFAULT_SEVERITY[kind], condition=AlertCondition.ACTIVE,
            status=AlertStatus.OPEN, raised_at=raised, created_at=raised, last_update=raised,
        )  # fmt: skip
        events.append(AlertEvent("raised", record, raised, org[truth.site]))
        ack = ACK_DELAYS_S[i % len(ACK_DELAYS_S)]
        events.append(AlertEvent("acknowledged", record, raised + ack, org[truth.site], ack))
        if i % 4 == 3:
            open_by_site[truth.site] = open_by_site.get(truth.site, 0) + 1
            continue
        done = ack + 600.0
        events.append(
            AlertEvent(
                "resolved", record, raised + done, org[truth.site],
                resolve_seconds=done, outcome="resident_fine",
            )
        )  # fmt: skip
    return events, open_by_site


def _status_lines(
    doc: RegistryDocument, last_seen: dict[str, float], open_by_site: dict[str, int], at: float
) -> tuple[list[str], int, int]:
    """site_status and device_status as the schema describes them, at event time `at`."""
    lines: list[str] = []
    sites_online = devices_online = 0
    for site in doc.sites:
        online_devices = 0
        for d in site.devices:
            age = at - last_seen.get(d.id, float("-inf"))
            online = age <= 2 * d.report_interval_s
            online_devices += online
            fields: dict[str, Any] = {"online": int(online), "last_seen_age_s": min(age, 1e9)}
            lines.append(
                encode_line(
                    "device_status",
                    {"site": site.id, "device": d.id, "kind": d.kind.value},
                    fields,
                    ts_to_ns(at),
                )
            )
        # A site whose devices went silent (the simulator's site_offline incident) is
        # unprotected; one device of five is not enough to call it online.
        site_online = online_devices > 0
        sites_online += site_online
        devices_online += online_devices
        lines.append(
            encode_line(
                "site_status",
                {"site": site.id, "org": site.organisation, "kind": site.kind.value},
                {
                    "online": int(site_online),
                    "devices_total": len(site.devices),
                    "devices_online": online_devices,
                    "open_alerts": open_by_site.get(site.id, 0),
                    "latitude": float(site.latitude or 0.0),
                    "longitude": float(site.longitude or 0.0),
                    "name": site.name,
                },
                ts_to_ns(at),
            )
        )
    return lines, sites_online, devices_online


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def filled(
    tmp_path_factory: pytest.TempPathFactory,
    local_services: Any,
    mqtt_addr: tuple[str, int],
    mqtt_credentials: tuple[str, str],
) -> AsyncIterator[Filled]:
    tmp: Path = tmp_path_factory.mktemp("dashboards")
    db = f"dash_{secrets.token_hex(4)}"
    url = local_services.influxdb.url
    sim = _simulation()
    doc = registry_document(sim.sites)
    index = RegistryIndex(doc, version=1)
    settings = Settings(
        run_dir=tmp / "run",
        mqtt_host=mqtt_addr[0],
        mqtt_port=mqtt_addr[1],
        mqtt_username=mqtt_credentials[0],
        mqtt_password=mqtt_credentials[1],
        mqtt_client_id=f"dash-ingest-{secrets.token_hex(3)}",
        mqtt_topics=["eldercare/#"],
        influx_url=url,
        influx_db=db,
        database_url=f"sqlite+aiosqlite:///{tmp}/eldercare.db",
        ingest_site_limits=False,  # a simulated day replayed at once
    )
    client = InfluxClient(url)
    await client.query(f"CREATE DATABASE {quote_ident(db)}")
    sink = RecordingSink()
    service = IngestService(settings, lambda: index, sink)
    await service.start()
    try:
        await wait_for(service.ready.is_set, 10, "ingest subscribed")
        messages = await asyncio.to_thread(_publish, sim, *mqtt_addr, mqtt_credentials)
        # Availability messages are not readings; wait for everything to be received.
        await wait_for(
            lambda: service.received >= messages,
            60,
            "every message received",
            detail=lambda: f"ingest received {service.received} of {messages}",
        )
        await service.writer.write([service.stats_line()])  # the producer's own line
    finally:
        await service.stop()
    last_seen: dict[str, float] = {}
    for r in sink.readings:
        last_seen[r.device_id] = max(last_seen.get(r.device_id, r.ts), r.ts)
    events, open_by_site = _alert_events(sim, doc)
    recorder = InfluxAlertEventRecorder(client, db)
    await recorder.record(events)
    assert recorder.invalid == 0 and recorder.dropped == 0
    lines, sites_online, devices_online = _status_lines(doc, last_seen, open_by_site, sim.end)
    await client.write(lines, db)
    # Visit coverage as field_service.coverage_job writes it (every resident monthly here).
    every = [VisitCategory("all", (), VisitPeriod.MONTH)]
    month = datetime.fromtimestamp(sim.end, ZONE).strftime("%Y-%m")
    await client.write(coverage_lines(coverage(doc.sites, every, [], month, sim.end), sim.end), db)
    # Field response figures as field_service.response_points writes them: one order, arrived.
    site0 = doc.sites[0]
    order = WorkOrder(
        "wo-1", "dispatch", site0.id, None, None, "sos", "w", OrderState.DONE, 1, "op",
        sim.end - 1800, sim.end - 1700, sim.end - 1700, sim.end - 1400, sim.end, sim.end - 1650,
        None, sim.end - 900, sim.end - 600, False, False, None, "resident_fine", None,
    )  # fmt: skip
    await client.write(response_lines([order], {site0.id: site0.organisation}, sim.end), db)
    now_ms = int(time.time() * 1000)
    span = TimeRange(int((START - 3600) * 1000), now_ms + 3_600_000, "10m")
    yield Filled(
        db, doc, sim, messages, sum(e.event == "raised" for e in events), open_by_site,
        sites_online, devices_online, span,
    )  # fmt: skip
    await client.query(f"DROP DATABASE {quote_ident(db)}")
    await client.aclose()


def _home_with_incidents(filled: Filled) -> tuple[str, str]:
    truth = next(t for t in filled.sim.truth if t.site.startswith("hh-") and t.resident)
    assert truth.resident is not None
    return truth.site, truth.resident


async def _check_all(
    filled: Filled, url: str, bindings: dict[str, str]
) -> dict[str, list[QueryResult]]:
    out: dict[str, list[QueryResult]] = {}
    async with InfluxClient(url) as client:
        for doc in dashboard_docs(filled.doc):
            out[doc["uid"]] = await check_dashboard(
                client, filled.db, doc, filled.time_range, bindings
            )
    return out


def _rows(results: list[QueryResult]) -> dict[str, int]:
    by_panel: dict[str, int] = {}
    for r in results:
        by_panel[r.ref.panel] = by_panel.get(r.ref.panel, 0) + r.rows
    return by_panel


async def test_every_panel_and_variable_returns_rows(filled: Filled, influx_url: str) -> None:
    site, resident = _home_with_incidents(filled)
    results = await _check_all(filled, influx_url, {"site": site, "resident": resident})
    errors = [(r.ref, r.error) for rs in results.values() for r in rs if r.error]
    assert not errors
    empty = [
        (uid, panel) for uid, rs in results.items() for panel, n in _rows(rs).items() if n == 0
    ]
    assert not empty, f"panels without rows: {empty}"
    uids = set(results)
    assert {"eldercare-operations", "eldercare-resident", "eldercare-map"} <= uids
    assert {"eldercare-coverage", "eldercare-institution-inst-01"} <= uids
    # Every panel of every dashboard was run (none skipped for lack of a raw query).
    for doc in dashboard_docs(filled.doc):
        assert set(_rows(results[doc["uid"]])) >= {p["title"] for p in doc["panels"]}


async def test_generic_institution_dashboard_binds_its_site_variable(
    filled: Filled, influx_url: str
) -> None:
    async with InfluxClient(influx_url) as client:
        generic = next(d for d in dashboard_docs(None) if d["uid"] == "eldercare-institution")
        results = await check_dashboard(client, filled.db, generic, filled.time_range)
    assert not [r for r in results if r.error]
    assert all(n > 0 for n in _rows(results).values()), _rows(results)
    site_var = next(r for r in results if r.ref.panel == "variable: site")
    assert site_var.rows == 1  # inst-01, the one institution


async def test_coverage_narrows_to_one_organisation_unit(filled: Filled, influx_url: str) -> None:
    site, _ = _home_with_incidents(filled)
    org = next(s.organisation for s in filled.doc.sites if s.id == site)
    async with InfluxClient(influx_url) as client:
        coverage = next(d for d in dashboard_docs(None) if d["uid"] == "eldercare-coverage")
        narrowed = await check_dashboard(
            client, filled.db, coverage, filled.time_range, {"org": org}
        )
        monitored = next(r for r in narrowed if r.ref.panel.startswith("监护站点"))
        rows = await client.query(monitored.sent, filled.db)
    assert "\\/" in monitored.sent  # the path's slashes escaped inside the regex literal
    expected = sum(1 for s in filled.doc.sites if s.organisation.startswith(org))
    assert {r["_tags"]["org"]: r["count"] for r in rows} == {org: expected}


async def test_figures_match_what_was_written(filled: Filled, influx_url: str) -> None:
    site, resident = _home_with_incidents(filled)
    results = await _check_all(filled, influx_url, {"site": site, "resident": resident})
    ops = {(r.ref.panel, r.ref.ref_id): r.sent for r in results["eldercare-operations"]}
    async with InfluxClient(influx_url) as client:

        async def value(panel_prefix: str, ref_id: str = "A") -> list[dict[str, Any]]:
            sent = next(
                q for (p, ref), q in ops.items() if p.startswith(panel_prefix) and ref == ref_id
            )
            return await client.query(sent, filled.db)

        sites = await value("在线站点")
        total = await value("在线站点", "B")
        devices = await value("在线设备")
        open_rows = await value("待处理警报")
        ack60 = await value("60 秒内接警率")
    assert sites[0]["sum"] == filled.sites_online
    assert total[0]["count"] == len(filled.doc.sites)
    assert devices[0]["sum"] == filled.devices_online
    assert sum(r["sum"] for r in open_rows) == sum(filled.open_by_site.values())
    # ACK_DELAYS_S cycles 20, 45, 75, 150, 400 s: two in five are within 60 s.
    within = sum(1 for i in range(filled.raised) if ACK_DELAYS_S[i % 5] <= 60)
    assert ack60[0]["share"] == pytest.approx(100 * within / filled.raised)
    inst = {(r.ref.panel, r.ref.ref_id): r.sent for r in results["eldercare-institution-inst-01"]}
    async with InfluxClient(influx_url) as client:
        in_bed = await client.query(inst[("当前在床 Beds occupied now", "A")], filled.db)
        monitored = await client.query(inst[("当前在床 Beds occupied now", "B")], filled.db)
    institution = next(s for s in filled.doc.sites if s.id == "inst-01")
    beds = [d for d in institution.devices if d.kind.value == "bed"]
    assert monitored[0]["count"] == len(beds)
    assert 0 < in_bed[0]["count"] <= len(beds)


async def test_check_command_runs_every_query_and_exits_zero(
    filled: Filled, influx_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from eldercare_app.cli import _register_subcommands, app

    site, resident = _home_with_incidents(filled)
    monkeypatch.setenv("ELDERCARE_INFLUX_URL", influx_url)
    monkeypatch.setenv("ELDERCARE_INFLUX_DB", filled.db)
    monkeypatch.setenv("ELDERCARE_RUN_DIR", str(tmp_path / "run"))
    hours = (time.time() - START) / 3600 + 2
    _register_subcommands()
    args = ["dashboards", "check", "--hours", f"{hours:.1f}"]
    # The command runs its own event loop: give it a thread.
    ok = await asyncio.to_thread(
        CliRunner().invoke, app, [*args, "--var", f"site={site}", "--var", f"resident={resident}"]
    )
    assert ok.exit_code == 0, ok.output
    assert "ERROR" not in ok.output
    assert "运营总览 Operations | 待处理警报（按级别）Open alerts by severity | A:" in ok.output
    # A resident with no data at all: its panels are empty and the command says so.
    empty = await asyncio.to_thread(
        CliRunner().invoke, app, [*args, "--var", "site=nowhere", "--var", "resident=nobody"]
    )
    assert empty.exit_code == 1
