"""Declared absences ("with me until Sunday 18:00"): the store on real SQLite, the index
laying them over the detectors' view of a site, the API's rules and audit trail, and a
note on the open `not_returned` alert."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from eldercare import planned_absence, registry_store
from eldercare.clock import FakeClock
from eldercare.domain import AlertKind, Severity, Transition, TransitionAction
from eldercare.registry_model import RegistryDocument
from eldercare.settings import Settings
from gateway.audit import AuditRow
from tests.helpers.gateway import (
    REGISTRY,
    Gateway,
    build_gateway,
    db_url,
    in_process_client,
    login,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

# 2026-02-02 10:40 in Asia/Shanghai (the test registry's time zone).
NOW = 1_770_000_000.0
RESIDENT = "zhang-xiuying"


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[tuple[Gateway, httpx.AsyncClient, FakeClock]]:
    clock = FakeClock(NOW)
    settings = Settings(run_dir=tmp_path / "run", database_url=db_url(tmp_path))
    gateway = await build_gateway(settings, clock)
    async with in_process_client(gateway) as client:
        yield gateway, client, clock


async def test_until_is_site_local_ahead_and_bounded() -> None:
    # 18:00 in Shanghai is 10:00 UTC.
    ts = planned_absence.until_epoch("2026-02-05T18:00", "Asia/Shanghai", NOW)
    assert ts == 1_770_285_600.0
    with pytest.raises(planned_absence.PlannedAbsenceError, match="already past"):
        planned_absence.until_epoch("2026-02-02T10:30", "Asia/Shanghai", NOW)
    with pytest.raises(planned_absence.PlannedAbsenceError, match="31 days"):
        planned_absence.until_epoch("2026-03-10T10:00", "Asia/Shanghai", NOW)
    with pytest.raises(planned_absence.PlannedAbsenceError, match="YYYY-MM-DDTHH:MM"):
        planned_absence.until_epoch("Sunday 18:00", "Asia/Shanghai", NOW)
    # 02:30 on 29 March 2026 does not exist in Berlin (clocks go 02:00 → 03:00): read with
    # the offset before the change, i.e. as 03:30 CEST, rather than refused.
    march = 1_774_600_000.0  # 2026-03-27
    gap = planned_absence.until_epoch("2026-03-29T02:30", "Europe/Berlin", march)
    after = planned_absence.until_epoch("2026-03-29T03:30", "Europe/Berlin", march)
    assert gap == after


async def test_declaration_survives_registry_apply_and_reaches_detectors_view(
    gw: tuple[Gateway, httpx.AsyncClient, FakeClock],
) -> None:
    gateway, _, _ = gw
    sessions = gateway.sessions
    v0 = await registry_store.registry_version(sessions)
    await planned_absence.declare(
        sessions,
        site_id="hh-401",
        resident_id=RESIDENT,
        timezone="Asia/Shanghai",
        until="2026-02-08T18:00",
        note="at my place",
        declared_by="family-zhang",
        now=NOW,
    )
    assert await registry_store.registry_version(sessions) == v0 + 1
    # Re-applying the registry YAML (an integrator's nightly sync) keeps it.
    await registry_store.apply_document(sessions, RegistryDocument.model_validate(REGISTRY))
    index = await registry_store.load_index(sessions)
    assert index.planned_absences[("hh-401", RESIDENT)].until == "2026-02-08T18:00"
    # Detectors see it as the resident's override; the document (API, export) does not.
    seen = index.detector_site("hh-401")
    assert seen is not None and seen is index.detector_site("hh-401")
    resident = seen.resident(RESIDENT)
    assert resident is not None
    assert resident.detectors["not_returned"]["planned_absence_until"] == "2026-02-08T18:00"
    plain = index.sites["hh-401"].resident(RESIDENT)
    assert plain is not None and "not_returned" not in plain.detectors
    assert index.detector_site("zh-12") is index.sites["zh-12"]
    # Withdrawn: gone, version bumped; a second withdrawal finds nothing.
    assert await planned_absence.withdraw(sessions, "hh-401", RESIDENT, NOW + 60)
    assert await registry_store.registry_version(sessions) == v0 + 2
    assert not await planned_absence.withdraw(sessions, "hh-401", RESIDENT, NOW + 60)
    index = await registry_store.load_index(sessions)
    assert index.planned_absences == {} and index.detector_site("hh-401") is index.sites["hh-401"]


async def test_old_declarations_are_pruned_on_the_next_change(
    gw: tuple[Gateway, httpx.AsyncClient, FakeClock],
) -> None:
    gateway, _, _ = gw
    kw = {"site_id": "hh-401", "timezone": "Asia/Shanghai", "note": "", "declared_by": "x"}
    await planned_absence.declare(
        gateway.sessions, resident_id=RESIDENT, until="2026-02-03T18:00", now=NOW, **kw
    )
    later = NOW + 3 * 86400  # a day and more past its end
    await planned_absence.declare(
        gateway.sessions,
        site_id="zh-12",
        resident_id="liu-jianguo",
        timezone="Asia/Shanghai",
        until="2026-02-06T18:00",
        note="",
        declared_by="x",
        now=later,
    )
    index = await registry_store.load_index(gateway.sessions)
    assert set(index.planned_absences) == {("zh-12", "liu-jianguo")}


async def test_family_declares_for_her_mother_only(
    gw: tuple[Gateway, httpx.AsyncClient, FakeClock],
) -> None:
    gateway, client, clock = gw
    family = await login(client, "family-zhang")
    url = f"/api/residents/{RESIDENT}/away"
    assert (await client.get(url, headers=family)).json() is None
    resp = await client.put(
        url, headers=family, json={"until": "2026-02-08T18:00", "note": "在女儿家"}
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["until"] == "2026-02-08T18:00" and body["declared_by"] == "family-zhang"
    assert body["timezone"] == "Asia/Shanghai" and body["declared_at"] == clock.now()
    assert (await client.get(url, headers=family)).json()["note"] == "在女儿家"
    view = (await client.get(f"/api/family/residents/{RESIDENT}", headers=family)).json()
    assert view["away"]["until"] == "2026-02-08T18:00"
    # Shown until an hour past its end (the rule's margin), then no more.
    end = planned_absence.until_epoch("2026-02-08T18:00", "Asia/Shanghai", NOW)
    clock.set(end + 3599)
    assert (await client.get(url, headers=family)).json()["until"] == "2026-02-08T18:00"
    clock.set(end + 3600)
    assert (await client.get(url, headers=family)).json() is None
    # Someone else's relative: not found, nothing written.
    other = await client.put(
        "/api/residents/liu-jianguo/away", headers=family, json={"until": "2026-02-08T18:00"}
    )
    assert other.status_code == 404
    assert ("zh-12", "liu-jianguo") not in (
        await registry_store.load_index(gateway.sessions)
    ).planned_absences
    # Past, too far, malformed: refused with the reason.
    for until, why in (
        ("2026-02-01T18:00", "already past"),
        ("2026-04-01T18:00", "31 days"),
    ):
        resp = await client.put(url, headers=family, json={"until": until})
        assert resp.status_code == 422 and why in resp.text
    assert (await client.put(url, headers=family, json={"until": "tomorrow"})).status_code == 422
    # Withdrawn; a second withdrawal is 404.
    assert (await client.delete(url, headers=family)).status_code == 204
    assert (await client.delete(url, headers=family)).status_code == 404
    assert (await client.get(url, headers=family)).json() is None
    async with gateway.sessions() as s:
        actions = (
            await s.scalars(
                select(AuditRow.action)
                .where(AuditRow.resident_id == RESIDENT)
                .order_by(AuditRow.id)
            )
        ).all()
    assert "declare_away" in actions and "withdraw_away" in actions


async def test_institution_residents_cannot_be_declared_away(
    gw: tuple[Gateway, httpx.AsyncClient, FakeClock],
) -> None:
    """Their rules cannot see one resident leave: a declaration would silence nothing, so
    it is refused with the reason rather than taken and ignored."""
    _, client, _ = gw
    admin = await login(client, "admin1")
    resp = await client.put(
        "/api/residents/sun-lan/away", headers=admin, json={"until": "2026-02-08T18:00"}
    )
    assert resp.status_code == 422 and "home-care beds" in resp.text


async def test_operators_declare_in_their_scope_only(
    gw: tuple[Gateway, httpx.AsyncClient, FakeClock],
) -> None:
    _, client, _ = gw
    url = f"/api/residents/{RESIDENT}/away"
    outside = await login(client, "op-zhanhua")
    assert (
        await client.put(url, headers=outside, json={"until": "2026-02-08T18:00"})
    ).status_code == 404
    inside = await login(client, "op-bincheng")
    resp = await client.put(url, headers=inside, json={"until": "2026-02-08T18:00"})
    assert resp.status_code == 200 and resp.json()["declared_by"] == "op-bincheng"
    assert (await client.get(url)).status_code == 401


async def test_declaring_notes_it_on_the_open_not_back_alert(
    gw: tuple[Gateway, httpx.AsyncClient, FakeClock],
) -> None:
    gateway, client, clock = gw
    raised = Transition(
        action=TransitionAction.RAISE,
        kind=AlertKind.NOT_RETURNED,
        site_id="hh-401",
        resident_id=RESIDENT,
        room_id="entrance",
        device_id="hh401-door",
        severity=Severity.MEDIUM,
        ts=clock.now() - 600,
        evidence=(),
        details={},
    )
    await gateway.store.apply_transitions([raised], clock.now())
    family = await login(client, "family-zhang")
    resp = await client.put(
        f"/api/residents/{RESIDENT}/away",
        headers=family,
        json={"until": "2026-02-08T18:00", "note": "在女儿家"},
    )
    assert resp.status_code == 200
    op = await login(client, "op-bincheng")
    alerts = (await client.get("/api/alerts", headers=op)).json()
    [alert] = [a for a in alerts if a["kind"] == "not_returned"]
    history = (await client.get(f"/api/alerts/{alert['id']}", headers=op)).json()["history"]
    notes = [h for h in history if h["event"] == "note"]
    assert len(notes) == 1 and notes[0]["actor"] == "family-zhang"
    assert "2026-02-08 18:00" in notes[0]["text"] and "在女儿家" in notes[0]["text"]
