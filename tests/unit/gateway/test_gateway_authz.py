"""Who may see and do what: the API's authorization matrix against a real SQLite store
and the real alert store, plus the audit trail of personal-data reads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, text

from eldercare.clock import FakeClock
from eldercare.domain import AlertKind, Severity, Transition, TransitionAction
from eldercare.settings import Settings
from gateway.audit import AuditRow, list_audit
from gateway.auth import SESSION_COOKIE, TokenRow
from tests.helpers.gateway import (
    PASSWORD,
    Gateway,
    build_gateway,
    db_url,
    in_process_client,
    login,
    sos,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")


Gw = tuple[Gateway, httpx.AsyncClient, FakeClock]  # what the `gw` fixture yields


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[Gw]:
    clock = FakeClock(1_770_000_000.0)
    settings = Settings(run_dir=tmp_path / "run", database_url=db_url(tmp_path))
    gateway = await build_gateway(settings, clock)
    await gateway.store.apply_transitions(
        [
            sos("hh-401", "zhang-xiuying", clock.now() - 30),
            sos("zh-12", "liu-jianguo", clock.now() - 20),
            sos("yiyang", "sun-lan", clock.now() - 10, room="r301"),
        ],
        clock.now(),
    )
    async with in_process_client(gateway) as client:
        yield gateway, client, clock


async def _alert_ids(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, str]:
    resp = await client.get("/api/alerts", headers=headers)
    assert resp.status_code == 200, resp.text
    return {a["site_id"]: a["id"] for a in resp.json()}


@pytest.mark.parametrize(
    "path",
    [
        "/api/alerts",
        "/api/sites",
        "/api/residents/zhang-xiuying",
        "/api/residents/zhang-xiuying/contacts",
        "/api/overview",
        "/api/stream",
        "/api/family/residents",
        "/api/users",
        "/api/auth/me",
    ],
)
async def test_unauthenticated_requests_are_refused(gw: Gw, path: str) -> None:
    _, client, _ = gw
    resp = await client.get(path)
    assert resp.status_code == 401
    bogus = await client.get(path, headers={"Authorization": "Bearer not-a-token"})
    assert bogus.status_code == 401


async def test_wrong_password_is_refused(gw: Gw) -> None:
    _, client, _ = gw
    resp = await client.post(
        "/api/auth/login", json={"username": "admin1", "password": PASSWORD + "x"}
    )
    assert resp.status_code == 401
    resp = await client.post("/api/auth/login", json={"username": "nobody", "password": "x"})
    assert resp.status_code == 401


async def test_operator_sees_only_own_district(gw: Gw) -> None:
    _, client, _ = gw
    bincheng = await login(client, "op-bincheng")
    zhanhua = await login(client, "op-zhanhua")

    sites = {s["id"] for s in (await client.get("/api/sites", headers=bincheng)).json()}
    assert sites == {"hh-401", "yiyang"}
    sites = {s["id"] for s in (await client.get("/api/sites", headers=zhanhua)).json()}
    assert sites == {"zh-12"}

    assert (await client.get("/api/sites/zh-12", headers=bincheng)).status_code == 404
    assert (await client.get("/api/sites/hh-401", headers=zhanhua)).status_code == 404
    assert (await client.get("/api/sites/zh-12/floor", headers=bincheng)).status_code == 404
    assert (await client.get("/api/residents/liu-jianguo", headers=bincheng)).status_code == 404

    mine = await _alert_ids(client, bincheng)
    theirs = await _alert_ids(client, zhanhua)
    assert set(mine) == {"hh-401", "yiyang"}
    assert set(theirs) == {"zh-12"}
    # Another district's alert cannot be read or acted on.
    other = theirs["zh-12"]
    assert (await client.get(f"/api/alerts/{other}", headers=bincheng)).status_code == 404
    resp = await client.post(f"/api/alerts/{other}/acknowledge", headers=bincheng)
    assert resp.status_code == 404
    overview = (await client.get("/api/overview", headers=bincheng)).json()
    assert overview["sites_monitored"] == 2
    assert overview["open_by_severity"]["critical"] == 2


async def test_family_sees_only_linked_resident(gw: Gw) -> None:
    _, client, _ = gw
    family = await login(client, "family-zhang")

    resp = await client.get("/api/residents/zhang-xiuying", headers=family)
    assert resp.status_code == 200
    assert resp.json()["name"] == "张秀英"
    # Another resident, in another district or in no relation: not found, not forbidden.
    for other in ("liu-jianguo", "sun-lan", "no-such-resident"):
        assert (await client.get(f"/api/residents/{other}", headers=family)).status_code == 404
        resp = await client.get(f"/api/residents/{other}/contacts", headers=family)
        assert resp.status_code == 404
        resp = await client.get(f"/api/family/residents/{other}", headers=family)
        assert resp.status_code == 404

    alerts = (await client.get("/api/alerts", headers=family)).json()
    assert {a["resident_id"] for a in alerts} == {"zhang-xiuying"}
    admin = await login(client, "admin1")
    all_ids = await _alert_ids(client, admin)
    assert (await client.get(f"/api/alerts/{all_ids['zh-12']}", headers=family)).status_code == 404
    # Families read; they do not handle alerts or browse the registry, and are not told
    # those exist (404, never 403, as the gateway's README promises).
    resp = await client.post(f"/api/alerts/{all_ids['hh-401']}/acknowledge", headers=family)
    assert resp.status_code == 404
    for path in ("/api/sites", "/api/sites/hh-401", "/api/org-units", "/api/users", "/metrics"):
        assert (await client.get(path, headers=family)).status_code == 404, path


async def test_admin_only_edits_are_refused_to_operators(gw: Gw) -> None:
    gateway, client, _ = gw
    operator = await login(client, "op-bincheng")
    admin = await login(client, "admin1")
    room = {"kind": "kitchen", "name": "厨房2"}

    resp = await client.put("/api/sites/hh-401/rooms/kitchen2", json=room, headers=operator)
    assert resp.status_code == 403
    assert (await client.delete("/api/sites/zh-12", headers=operator)).status_code == 403
    new_user = {"username": "x1", "password": PASSWORD, "role": "operator", "scope": "滨州市"}
    assert (await client.post("/api/users", json=new_user, headers=operator)).status_code == 403
    assert (await client.get("/api/users", headers=operator)).status_code == 403

    resp = await client.put("/api/sites/hh-401/rooms/kitchen2", json=room, headers=admin)
    assert resp.status_code == 200, resp.text
    rooms = (await client.get("/api/sites/hh-401/rooms", headers=operator)).json()
    assert "kitchen2" in {r["id"] for r in rooms}
    # A reference to a room that does not exist is a clear 422, and changes nothing.
    bad = {"kind": "motion", "room": "attic"}
    resp = await client.put("/api/sites/hh-401/devices/pir-x", json=bad, headers=admin)
    assert resp.status_code == 422
    assert "attic" in resp.text
    assert (await client.post("/api/users", json=new_user, headers=admin)).status_code == 201
    assert (await client.post("/api/users", json=new_user, headers=admin)).status_code == 409
    assert gateway is not None


async def test_operator_handles_an_alert_end_to_end(gw: Gw) -> None:
    _, client, _ = gw
    op = await login(client, "op-bincheng")
    alert_id = (await _alert_ids(client, op))["hh-401"]

    resp = await client.post(f"/api/alerts/{alert_id}/acknowledge", headers=op)
    assert resp.status_code == 200 and resp.json()["handling"] == "acknowledged"
    resp = await client.post(
        f"/api/alerts/{alert_id}/assign", json={"assignee": "网格员 王强"}, headers=op
    )
    assert resp.json()["assigned_to"] == "网格员 王强"
    resp = await client.post(
        f"/api/alerts/{alert_id}/notes", json={"text": "已电话联系本人"}, headers=op
    )
    assert resp.status_code == 200
    resp = await client.post(
        f"/api/alerts/{alert_id}/resolve", json={"outcome": "not-an-outcome"}, headers=op
    )
    assert resp.status_code == 422
    resp = await client.post(
        f"/api/alerts/{alert_id}/resolve",
        json={"outcome": "resident_fine", "note": "误按"},
        headers=op,
    )
    assert resp.status_code == 200
    assert resp.json()["outcome"] == "resident_fine"
    resp = await client.post(
        f"/api/alerts/{alert_id}/resolve", json={"outcome": "false_alarm"}, headers=op
    )
    assert resp.status_code == 409

    detail = (await client.get(f"/api/alerts/{alert_id}", headers=op)).json()
    events = [h["event"] for h in detail["history"]]
    assert events == ["raised", "acknowledged", "assigned", "note", "resolved"]
    assert detail["history"][1]["actor"] == "op-bincheng"


async def test_personal_data_reads_are_audited(gw: Gw) -> None:
    gateway, client, _ = gw
    op = await login(client, "op-bincheng")
    family = await login(client, "family-zhang")
    assert (await client.get("/api/residents/zhang-xiuying", headers=op)).status_code == 200
    assert (
        await client.get("/api/residents/zhang-xiuying/contacts", headers=family)
    ).status_code == 200
    contacts = (await client.get("/api/residents/zhang-xiuying/contacts", headers=op)).json()
    assert [c["id"] for c in contacts] == ["daughter", "neighbour"]

    rows = await list_audit(gateway.sessions, resident_id="zhang-xiuying")
    seen = {(r.username, r.action) for r in rows}
    assert ("op-bincheng", "read_resident") in seen
    assert ("family-zhang", "read_contacts") in seen
    assert ("op-bincheng", "read_contacts") in seen
    assert all(r.path.startswith("/api/residents/zhang-xiuying") for r in rows)
    # A refused read is not a read.
    before = len(rows)
    await client.get("/api/residents/liu-jianguo", headers=family)
    async with gateway.sessions() as s:
        others = await s.scalars(select(AuditRow).where(AuditRow.resident_id == "liu-jianguo"))
        assert others.all() == []
    assert len(await list_audit(gateway.sessions, resident_id="zhang-xiuying")) == before
    admin = await login(client, "admin1")
    trail = await client.get("/api/audit", params={"resident_id": "zhang-xiuying"}, headers=admin)
    assert trail.status_code == 200 and len(trail.json()) == before
    assert (await client.get("/api/audit", headers=op)).status_code == 403


async def test_cookie_session_logout_and_token_expiry(gw: Gw) -> None:
    gateway, client, clock = gw
    resp = await client.post(
        "/api/auth/login", json={"username": "op-bincheng", "password": PASSWORD}
    )
    assert resp.status_code == 200
    cookie = resp.headers["set-cookie"]
    assert SESSION_COOKIE in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert (await client.get("/api/auth/me")).json()["username"] == "op-bincheng"
    csrf = {"X-CSRF-Token": client.cookies["eldercare_csrf"]}
    assert (await client.post("/api/auth/logout", headers=csrf)).status_code == 204
    client.cookies.clear()
    token = resp.json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/auth/me", headers=headers)).status_code == 401  # revoked

    headers = await login(client, "op-bincheng")
    assert (await client.get("/api/auth/me", headers=headers)).status_code == 200
    clock.advance(31 * 86400)
    assert (await client.get("/api/auth/me", headers=headers)).status_code == 401  # expired
    async with gateway.sessions() as s:
        stored = (await s.scalars(select(TokenRow.token_hash))).all()
    assert token not in stored and len(stored[0]) == 64  # only digests are kept


async def test_admin_revokes_every_token_of_an_account(gw: Gw) -> None:
    _, client, _ = gw
    admin = await login(client, "admin1")
    op = await login(client, "op-zhanhua")
    resp = await client.post(
        "/api/users/op-zhanhua/revoke", json={"deactivate": True}, headers=admin
    )
    assert resp.status_code == 200 and resp.json()["revoked"] == 1
    assert (await client.get("/api/alerts", headers=op)).status_code == 401
    resp = await client.post(
        "/api/auth/login", json={"username": "op-zhanhua", "password": PASSWORD}
    )
    assert resp.status_code == 401


async def test_family_preferences_cannot_switch_off_safety_alerts(gw: Gw) -> None:
    _, client, _ = gw
    family = await login(client, "family-zhang")
    prefs = (await client.get("/api/family/preferences", headers=family)).json()
    assert prefs["safety_channels"]
    prefs.update(safety_channels=[], daily_summary=False)
    resp = await client.put("/api/family/preferences", json=prefs, headers=family)
    assert resp.status_code == 422
    prefs.update(safety_channels=["wechat_work"], daily_summary_time="07:30", nickname="妈妈")
    resp = await client.put("/api/family/preferences", json=prefs, headers=family)
    assert resp.status_code == 200
    again = (await client.get("/api/family/preferences", headers=family)).json()
    assert again["safety_channels"] == ["wechat_work"] and again["nickname"] == "妈妈"


async def test_response_figures_count_acknowledgements_within_60_and_180_s(gw: Gw) -> None:
    _, client, clock = gw
    op = await login(client, "op-bincheng")
    ids = await _alert_ids(client, op)  # two alerts in scope, stored at clock.now()
    clock.advance(45)
    await client.post(f"/api/alerts/{ids['hh-401']}/acknowledge", headers=op)
    clock.advance(100)  # 145 s after it was stored
    await client.post(f"/api/alerts/{ids['yiyang']}/acknowledge", headers=op)
    figures = (await client.get("/api/figures/response", headers=op)).json()
    assert figures["raised"] == 2 and figures["acknowledged"] == 2
    assert figures["within_60s"] == 1 and figures["within_180s"] == 2
    assert figures["share_within_60s"] == 0.5 and figures["share_within_180s"] == 1.0
    overview = (await client.get("/api/overview", headers=op)).json()
    assert overview["figures_today"]["share_within_60s"] == 0.5
    # A low battery is device upkeep, not an alarm: it does not count against the centre.
    low = Transition(
        action=TransitionAction.RAISE,
        kind=AlertKind.LOW_BATTERY,
        site_id="hh-401",
        ts=clock.now(),
        severity=Severity.WARNING,
        device_id="hh401-sos",
    )
    await gw[0].store.apply_transitions([low], clock.now())
    figures = (await client.get("/api/figures/response", headers=op)).json()
    assert figures["raised"] == 2 and figures["severities"] == ["critical", "high", "medium"]
    everything = (
        await client.get(
            "/api/figures/response", params={"severity": ["warning", "critical"]}, headers=op
        )
    ).json()
    assert everything["raised"] == 3 and everything["share_within_60s"] == 1 / 3


async def test_device_health_lists_problems_in_scope_and_unknown_devices_for_admins(gw: Gw) -> None:
    gateway, client, clock = gw
    offline = Transition(
        action=TransitionAction.RAISE,
        kind=AlertKind.DEVICE_OFFLINE,
        site_id="zh-12",
        ts=clock.now(),
        severity=Severity.WARNING,
        device_id="zh12-sos",
        room_id="bedroom",
    )
    await gateway.store.apply_transitions([offline], clock.now())
    async with gateway.sessions() as s:
        await s.execute(
            text(
                "CREATE TABLE IF NOT EXISTS ingest_unregistered_device (identity TEXT PRIMARY KEY,"
                " source TEXT, topic TEXT, first_seen FLOAT, last_seen FLOAT, count BIGINT,"
                " sample_payload TEXT)"
            )
        )
        await s.execute(
            text(
                "INSERT INTO ingest_unregistered_device VALUES ('z2m/zigbee2mqtt/0x00158d', 'z2m',"
                " 'zigbee2mqtt/0x00158d', 1, 2, 7, '{\"occupancy\": true}')"
            )
        )
        await s.commit()
    zhanhua = await login(client, "op-zhanhua")
    bincheng = await login(client, "op-bincheng")
    admin = await login(client, "admin1")
    mine = (await client.get("/api/device-health", headers=zhanhua)).json()
    assert [(p["kind"], p["device_id"]) for p in mine["problems"]] == [
        ("device_offline", "zh12-sos")
    ]
    assert mine["unregistered_available"] is False
    assert (await client.get("/api/device-health", headers=bincheng)).json()["problems"] == []
    quarantine = Path(gateway.app.state.gateway.settings.run_dir) / "quarantine"
    quarantine.mkdir(parents=True)
    (quarantine / "quarantine-000001.jsonl").write_text(
        '{"cause": "malformed_json", "detail": "Expecting value", "topic": "eldercare/x/y/motion",'
        ' "received_at": 5.0, "payload_size": 3, "payload": "{{{"}\n{"torn'
    )
    everything = (await client.get("/api/device-health", headers=admin)).json()
    assert [q["cause"] for q in everything["quarantined"]] == ["malformed_json"]
    assert mine["quarantined"] == []
    assert everything["unregistered"][0]["key"] == "z2m/zigbee2mqtt/0x00158d"
    assert everything["unregistered"][0]["messages"] == 7
    # Operators get the numbers, to tell an admin, never the devices or the payloads.
    counts = {"unregistered_devices": 1, "quarantined_messages": 1, "newest_quarantined_at": 5.0}
    assert everything["intake"] == counts
    resp = await client.get("/api/device-health", headers=zhanhua)
    seen = resp.json()
    assert seen["intake"] == counts
    assert seen["unregistered"] == [] and seen["quarantined"] == []
    assert (
        "0x00158d" not in resp.text and "{{{" not in resp.text and "eldercare/x/y" not in resp.text
    )


async def test_password_guessing_is_slowed_down(gw: Gw) -> None:
    _, client, clock = gw
    wrong = {"username": "op-bincheng", "password": "guess-guess-guess"}
    for _ in range(10):
        assert (await client.post("/api/auth/login", json=wrong)).status_code == 401
    resp = await client.post("/api/auth/login", json={**wrong, "password": PASSWORD})
    assert resp.status_code == 429 and int(resp.headers["Retry-After"]) > 0
    # Another account from the same client is not affected.
    assert await login(client, "op-zhanhua")
    clock.advance(15 * 60 + 1)
    assert await login(client, "op-bincheng")
