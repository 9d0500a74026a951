"""Retention, export and erasure against a real InfluxDB and SQLite."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import select

from alerts.models import AlertHistoryRow, AlertRow, NotificationLogRow
from eldercare.db import create_all, create_engine, session_factory
from eldercare.influx import InfluxClient, encode_line, quote_ident
from eldercare.registry_apply import validate_registry
from eldercare.registry_store import Sessions, apply_document, load_document
from eldercare.settings import Settings
from eldercare_app.privacy import (
    ERASED,
    PrivacyError,
    apply_retention,
    audit_entries,
    erase_resident,
    export_resident,
)
from eldercare_app.wiring import import_all_tables

NOW = time.time()

REGISTRY = {
    "sites": [
        {
            "id": "care-1",
            "kind": "institution",
            "name": "Sunrise care home",
            "organisation": "city/district",
            "rooms": [{"id": "r301", "kind": "bedroom"}],
            "residents": [
                {"id": "wang", "name": "王秀兰", "birth_year": 1938, "phone": "13800000001",
                 "notes": "hard of hearing", "flags": ["dementia"], "room": "r301"},
                {"id": "li", "name": "李建国", "birth_year": 1940, "room": "r301"},
            ],
            "devices": [
                {"id": "bed-wang", "kind": "bed", "room": "r301", "resident": "wang"},
                {"id": "bed-li", "kind": "bed", "room": "r301", "resident": "li"},
            ],
            "contacts": [
                {"id": "daughter", "name": "王梅", "phone": "13900000002", "residents": ["wang"],
                 "apprise": ["mailto://mei@example.org"]},
                {"id": "nurse", "name": "Nurse station", "role": "operator",
                 "residents": ["wang", "li"]},
            ],
        }
    ]
}  # fmt: skip


@pytest_asyncio.fixture(loop_scope="function")
async def stores(settings: Settings) -> AsyncIterator[tuple[Sessions, InfluxClient, str]]:
    engine = create_engine(settings.database_url)
    import_all_tables()  # erasure reaches the gateway's and the detectors' tables too
    await create_all(engine)
    sessions = session_factory(engine)
    await apply_document(sessions, validate_registry(REGISTRY))
    db = f"privacy_{uuid.uuid4().hex[:8]}"
    client = InfluxClient(settings.influx_url)
    await client.query(f"CREATE DATABASE {quote_ident(db)}")
    try:
        yield sessions, client, db
    finally:
        await client.query(f"DROP DATABASE {quote_ident(db)}")
        await client.aclose()
        await engine.dispose()


def _ns(ts: float) -> int:
    return int(ts * 1e9)


async def _fill(sessions: Sessions, client: InfluxClient, db: str) -> None:
    lines = []
    for i in range(5):
        for resident in ("wang", "li"):
            lines.append(
                encode_line(
                    "occupancy",
                    {"site": "care-1", "device": f"bed-{resident}", "resident": resident},
                    {"occupied": i % 2 == 0},
                    _ns(NOW - 3600 + i),
                )
            )
    for offset, resident in enumerate(("wang", "li")):
        lines.append(
            encode_line(
                "alert_event",
                {"site": "care-1", "kind": "bed_exit_no_return", "severity": "high",
                 "event": "raised", "org": "city/district"},
                {"alert_id": resident, "resident": resident, "value": 1},
                _ns(NOW - 1800 + offset),
            )
        )  # fmt: skip
    await client.write(lines, db)
    async with sessions() as session, session.begin():
        for resident, name in (("wang", "王秀兰"), ("li", "李建国")):
            alert = AlertRow(
                site="care-1", resident=resident, room="r301", device=f"bed-{resident}",
                kind="bed_exit_no_return", severity="high", raised_at=NOW - 1800,
                created_at=NOW - 1800, last_update=NOW - 1800,
                note=f"called {name}'s daughter", details={"resident_name": name},
            )  # fmt: skip
            session.add(alert)
            await session.flush()
            session.add(
                AlertHistoryRow(
                    alert_id=alert.id, action="note", actor="operator-zhao",
                    event_time=NOW - 1700, wall_time=NOW - 1700,
                    data={"note": f"{name} was found in the corridor"},
                )
            )  # fmt: skip
            session.add(
                NotificationLogRow(
                    idempotency_key=f"k-{resident}", alert_id=alert.id, purpose="alert",
                    site="care-1", recipient="family:daughter", role="family", language="zh-CN",
                    channel_hash="x", title="【高】夜间离床未归",
                    body=f"{name}（301）02:41 离床后 30 分钟未回床。",
                    created_at=NOW - 1790, updated_at=NOW - 1790,
                )
            )  # fmt: skip


async def _points(client: InfluxClient, db: str, query: str) -> list[dict[str, Any]]:
    return await client.query(query, db)


async def test_export_then_erase_a_resident(
    stores: tuple[Sessions, InfluxClient, str], tmp_path: Path
) -> None:
    sessions, client, db = stores
    await _fill(sessions, client, db)

    export = await export_resident(sessions, client, db, "wang", actor="dpo-chen")
    text = json.dumps(export, ensure_ascii=False)
    assert export["resident"]["name"] == "王秀兰" and export["resident"]["phone"] == "13800000001"
    assert [p["tags"]["resident"] for p in export["readings"]["occupancy"]] == ["wang"] * 5
    assert [p["fields"]["resident"] for p in export["readings"]["alert_event"]] == ["wang"]
    (alert,) = export["alerts"]
    assert alert["note"] == "called 王秀兰's daughter"
    assert [h["action"] for h in alert["history"]] == ["note"]
    assert "02:41" in alert["notifications"][0]["body"]
    assert {c["id"] for c in export["contacts"]} == {"daughter", "nurse"}
    assert "李建国" not in text and "mailto" not in text  # only hers; no channel secrets

    report = await erase_resident(sessions, client, db, "wang", by="dpo-chen", now=NOW)
    assert report.series_dropped == {"occupancy": 5}
    assert report.alert_events_anonymised == 1
    assert report.contacts_blanked == ["daughter"]

    # Readings: hers gone, her neighbour's intact; the alert statistic stays, anonymised.
    left = await _points(client, db, 'SELECT * FROM "occupancy" GROUP BY *')
    assert {r["_tags"]["resident"] for r in left} == {"li"} and len(left) == 5
    events = await _points(client, db, 'SELECT * FROM "alert_event"')
    assert sorted(e["resident"] for e in events) == sorted([ERASED, "li"])

    # Registry: personal fields blanked, the neighbour untouched.
    site = (await load_document(sessions)).sites[0]
    wang, li = site.resident("wang"), site.resident("li")
    assert wang is not None and li is not None
    assert (wang.name, wang.phone, wang.birth_year, wang.notes, wang.flags) == (
        ERASED, None, None, "", [],
    )  # fmt: skip
    assert li.name == "李建国" and li.birth_year == 1940
    daughter = next(c for c in site.contacts if c.id == "daughter")
    assert daughter.name == ERASED and daughter.phone is None and daughter.apprise == []

    # Alert store: her free text and messages blanked; the audit trail kept and extended.
    async with sessions() as session:
        alerts = {a.resident: a for a in (await session.scalars(select(AlertRow))).all()}
        history = (await session.scalars(select(AlertHistoryRow))).all()
        sent = (await session.scalars(select(NotificationLogRow))).all()
    assert alerts["wang"].note == ERASED and "王秀兰" not in json.dumps(
        alerts["wang"].details, ensure_ascii=False
    )
    assert alerts["li"].note == "called 李建国's daughter"
    wang_history = [h for h in history if h.alert_id == alerts["wang"].id]
    assert [(h.action, h.actor) for h in wang_history] == [
        ("note", "operator-zhao"),
        ("erased", "dpo-chen"),
    ]
    assert wang_history[0].data == {"note": ERASED}
    bodies = {n.idempotency_key: n.body for n in sent}
    assert bodies["k-wang"] == ERASED and "李建国" in bodies["k-li"]

    audit = await audit_entries(sessions, "wang")
    assert [(a["action"], a["actor"]) for a in audit] == [
        ("export", "dpo-chen"),
        ("erase", "dpo-chen"),
    ]
    assert audit[1]["details"]["series_dropped"] == {"occupancy": 5}

    after = await export_resident(sessions, client, db, "wang", actor="dpo-chen")
    leftover = json.dumps(after, ensure_ascii=False)
    for secret in ("王秀兰", "13800000001", "王梅", "13900000002", "hard of hearing"):
        assert secret not in leftover
    assert "occupancy" not in after["readings"]


async def test_erasure_needs_a_name_and_a_known_resident(
    stores: tuple[Sessions, InfluxClient, str],
) -> None:
    sessions, client, db = stores
    with pytest.raises(PrivacyError, match="--by"):
        await erase_resident(sessions, client, db, "wang", by=" ")
    with pytest.raises(PrivacyError, match="no resident"):
        await erase_resident(sessions, client, db, "nobody", by="dpo")
    assert await audit_entries(sessions) == []


async def test_retention_keeps_each_kind_its_own_time(
    stores: tuple[Sessions, InfluxClient, str],
) -> None:
    _, client, db = stores
    day = 86400
    points = [
        ("motion", NOW - 200 * day),  # raw reading past 180 days: goes
        ("motion", NOW - 40 * day),
        ("accel", NOW - 40 * day),  # accel summary past 30 days: goes
        ("accel", NOW - 10 * day),
        ("alert_event", NOW - 400 * day),  # alert events stay 5 years
    ]
    await client.write(
        [encode_line(m, {"site": "s1"}, {"value": 1}, _ns(ts)) for m, ts in points], db
    )
    dry = await apply_retention(client, db, NOW, dry_run=True)
    assert dry.deleted == {"accel": 1, "motion": 1}
    assert len(await _points(client, db, 'SELECT * FROM "motion"')) == 2

    report = await apply_retention(client, db, NOW)
    assert report.default_days == 1826
    policies = await client.query("SHOW RETENTION POLICIES", db)
    default = next(p for p in policies if p["default"])
    assert default["duration"] == f"{1826 * 24}h0m0s"
    left = {
        m: [r["time"] for r in await _points(client, db, f'SELECT * FROM "{m}"')]
        for m in ("motion", "accel", "alert_event")
    }
    assert left == {
        "motion": [_ns(NOW - 40 * day)],
        "accel": [_ns(NOW - 10 * day)],
        "alert_event": [_ns(NOW - 400 * day)],
    }
    again = await apply_retention(client, db, NOW)
    assert again.deleted == {"accel": 0, "motion": 0}


async def test_cli_export_and_erase(
    stores: tuple[Sessions, InfluxClient, str],
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import asyncio

    from typer.testing import CliRunner

    from eldercare_app.privacy_cli import app

    sessions, client, db = stores
    await _fill(sessions, client, db)
    for key, value in {
        "ELDERCARE_RUN_DIR": str(tmp_path / "run"),
        "ELDERCARE_DATABASE_URL": settings.database_url,
        "ELDERCARE_INFLUX_URL": settings.influx_url,
        "ELDERCARE_INFLUX_DB": db,
    }.items():
        monkeypatch.setenv(key, value)
    runner = CliRunner()
    out = tmp_path / "wang.json"
    # The CLI runs its own event loop: off this test's loop, on a thread.
    done = await asyncio.to_thread(
        runner.invoke, app, ["export", "--resident", "wang", "--out", str(out)]
    )
    assert done.exit_code == 0, done.output
    assert json.loads(out.read_text())["resident"]["name"] == "王秀兰"
    refused = await asyncio.to_thread(runner.invoke, app, ["erase", "--resident", "wang"])
    assert refused.exit_code != 0  # --by is required
    erased = await asyncio.to_thread(
        runner.invoke, app, ["erase", "--resident", "wang", "--by", "dpo-chen", "--yes"]
    )
    assert erased.exit_code == 0, erased.output
    assert '"occupancy": 5' in erased.output
    unknown = await asyncio.to_thread(
        runner.invoke, app, ["erase", "--resident", "nobody", "--by", "x", "--yes"]
    )
    assert unknown.exit_code == 1 and "no resident" in unknown.output


async def test_erasure_reaches_gateway_accounts_audit_and_detector_snapshots(
    stores: tuple[Sessions, InfluxClient, str],
) -> None:
    from detectors.snapshot_store import DetectorSnapshot
    from gateway import users
    from gateway.audit import AuditRow, record_read
    from gateway.auth import TokenRow, issue_token
    from gateway.family_link import FamilyContactRow
    from gateway.routes_family import FamilyPrefRow
    from gateway.users import Role, UserRow

    sessions, _, _ = stores
    family = users.Role.FAMILY
    mei = await users.create_user(
        sessions, username="wang-mei", role=family, password="pw-123456789",
        now=NOW, residents=["care-1/wang"], display_name="王梅",
    )  # fmt: skip
    both = await users.create_user(
        sessions, username="li-gang", role=family, password="pw-123456789",
        now=NOW, residents=["care-1/wang", "care-1/li"],
    )  # fmt: skip
    await users.create_user(
        sessions, username="li-only", role=family, password="pw-123456789",
        now=NOW, residents=["care-1/li"],
    )  # fmt: skip
    await issue_token(sessions, mei, kind="bearer", now=NOW)
    for who, rid, path in (
        ("wang-mei", "wang", "/api/residents/wang?q=王秀兰"),
        ("li-gang", "wang", "/api/family/residents/wang"),
        ("li-only", "li", "/api/family/residents/li"),
    ):
        await record_read(
            sessions, at=NOW, username=who, role="family", action="read_family_view",
            site_id="care-1", resident_ids=[rid], path=path, client="10.0.0.5",
        )  # fmt: skip
    async with sessions() as session, session.begin():
        session.add(FamilyPrefRow(user_id=mei.id, data={"nickname": "妈妈"}))
        session.add(FamilyPrefRow(user_id=both.id, data={"nickname": "王秀兰阿姨"}))
        session.add(FamilyContactRow(user_id=mei.id, site_id="care-1", contact_id="daughter"))
        learned = {"wang": {"gaps": [3.0, 4.0]}, "li": {"gaps": [5.0]}}
        states = {
            "inactivity": {"residents": learned},
            "__runtime__": {"clock": 9.0, "open": [["inactivity", "wang", 3], ["sos", "li", 4]]},
            "wake": {"resident": "wang", "usual_wake": 7.5},
            "door": {"opened": 2},
        }
        for name, state in states.items():
            session.add(
                DetectorSnapshot(site_id="care-1", detector=name, state=state, updated_at=NOW)
            )

    report = await erase_resident(sessions, None, "", "wang", by="dpo-chen", now=NOW)
    assert report.family_accounts_deleted == 1
    assert report.family_accounts_unlinked == 1
    assert report.gateway_audit_rows_blanked == 2
    assert report.detector_snapshots_trimmed == 2
    assert report.detector_snapshots_deleted == 1

    async with sessions() as session:
        accounts = {u.username: u for u in (await session.scalars(select(UserRow))).all()}
        tokens = (await session.scalars(select(TokenRow))).all()
        prefs = {p.user_id: p.data for p in (await session.scalars(select(FamilyPrefRow))).all()}
        links = (await session.scalars(select(FamilyContactRow))).all()
        audit = (await session.scalars(select(AuditRow).order_by(AuditRow.id))).all()
        snaps = {
            s.detector: s.state for s in (await session.scalars(select(DetectorSnapshot))).all()
        }
    assert set(accounts) == {"li-gang", "li-only"}
    assert accounts["li-gang"].residents == ["care-1/li"]
    assert accounts["li-only"].residents == ["care-1/li"]
    assert Role(accounts["li-gang"].role) is Role.FAMILY
    assert tokens == []
    assert prefs == {both.id: {"nickname": ERASED}}
    assert links == []
    rows = [(a.username, a.resident_id, a.path, a.client) for a in audit]
    assert rows == [
        (ERASED, "wang", "", ""),
        ("li-gang", "wang", "", ""),
        ("li-only", "li", "/api/family/residents/li", "10.0.0.5"),
    ]
    assert snaps == {
        "inactivity": {"residents": {"li": {"gaps": [5.0]}}},
        "__runtime__": {"clock": 9.0, "open": [["sos", "li", 4]]},
        "door": {"opened": 2},
    }
    entries = await audit_entries(sessions, "wang")
    assert [e["action"] for e in entries] == ["erase"]
    assert entries[0]["details"]["family_accounts_deleted"] == 1


async def test_erasing_a_one_person_home_drops_all_its_detector_snapshots(
    stores: tuple[Sessions, InfluxClient, str],
) -> None:
    from detectors.snapshot_store import DetectorSnapshot

    sessions, _, _ = stores
    home = {
        "id": "home-9", "kind": "home", "name": "赵家", "organisation": "city/district",
        "residents": [{"id": "zhao", "name": "赵淑芬"}],
    }  # fmt: skip
    await apply_document(sessions, validate_registry({"sites": [home]}))
    async with sessions() as session, session.begin():
        for site_id, name, state in (
            ("home-9", "wake", {"usual_wake": 7.0}),  # no id in it: still hers, a home of one
            ("home-9", "inactivity", {"residents": {"zhao": {"gaps": [2.0]}}}),
            ("care-1", "wake", {"usual_wake": 6.5}),
        ):
            row = DetectorSnapshot(site_id=site_id, detector=name, state=state, updated_at=NOW)
            session.add(row)

    report = await erase_resident(sessions, None, "", "zhao", by="dpo-chen", now=NOW)
    assert report.whole_site and report.detector_snapshots_deleted == 2
    async with sessions() as session:
        left = [(s.site_id, s.detector) for s in (await session.scalars(select(DetectorSnapshot)))]
    assert left == [("care-1", "wake")]
