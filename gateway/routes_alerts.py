"""The alert queue: list and filter, one alert with its history, and the operator's
actions (acknowledge, assign, note, resolve), plus response-time figures."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, Field

from eldercare.domain import AlertKind, Severity
from eldercare.registry_index import RegistryIndex
from eldercare.registry_model import Site
from gateway.auth import Principal, can_see_alert
from gateway.context import Auth, Ctx, Staff, not_found, visible_sites
from gateway.enrich import enrich
from gateway.ports import (
    ALARM_SEVERITIES,
    HUMAN_OUTCOMES,
    AlertConflict,
    AlertEventOut,
    AlertNotFound,
    AlertOut,
    AlertQuery,
    AlertService,
    NotificationOut,
    ResponseFigures,
)
from gateway.users import Role

router = APIRouter(tags=["alerts"])

Handling = Literal["open", "acknowledged", "resolved"]
HumanOutcome = Literal[HUMAN_OUTCOMES]  # type: ignore[valid-type]


class AlertDetail(BaseModel):
    alert: AlertOut
    history: list[AlertEventOut]
    notifications: list[NotificationOut] = Field(
        default_factory=list, description="each message: channel and what became of it"
    )


class AssignRequest(BaseModel):
    assignee: str = Field(min_length=1, max_length=128, description="responder to dispatch")


class NoteRequest(BaseModel):
    text: str = Field(min_length=1, max_length=4000)


class ResolveRequest(BaseModel):
    outcome: HumanOutcome = Field(description="how it ended")
    note: str | None = Field(None, max_length=4000)


class Overview(BaseModel):
    sites_monitored: int
    sites_offline: int = Field(description="sites with an open site_offline alert: unprotected")
    open_by_severity: dict[str, int]
    figures_today: ResponseFigures


def scope_query(
    index: RegistryIndex, principal: Principal
) -> tuple[frozenset[str] | None, frozenset[str] | None]:
    """(site ids, resident ids) a query must be limited to; None = unlimited."""
    if principal.role is Role.ADMIN:
        return None, None
    sites = frozenset(s.id for s in visible_sites(index, principal))
    if principal.role is Role.FAMILY:
        return sites, None  # then filtered per alert by can_see_alert
    return sites, None


async def visible_alert(ctx: Ctx, principal: Principal, alert_id: str) -> AlertOut:
    alert = await ctx.alert_service.get_alert(alert_id)
    index = await ctx.index()
    if alert is None or not can_see_alert(
        principal.account, index.sites.get(alert.site_id), alert.resident_id
    ):
        raise not_found("alert not found")
    return enrich(alert, index)


def _sort_queue(alerts: list[AlertOut]) -> list[AlertOut]:
    """Critical first, then the longest waiting."""
    return sorted(alerts, key=lambda a: (Severity(a.severity).rank, a.raised_at))


@router.get("/api/alerts", response_model=list[AlertOut], summary="Alerts, filtered")
async def list_alerts(
    principal: Auth,
    ctx: Ctx,
    handling: Annotated[list[Handling] | None, Query()] = None,
    kind: Annotated[list[AlertKind] | None, Query()] = None,
    severity: Annotated[list[Severity] | None, Query()] = None,
    site_id: str | None = None,
    resident_id: str | None = None,
    since: float | None = None,
    until: float | None = None,
    limit: Annotated[int, Query(ge=1, le=2000)] = 500,
) -> list[AlertOut]:
    index = await ctx.index()
    sites, _ = scope_query(index, principal)
    if site_id is not None:
        sites = frozenset({site_id}) if sites is None else sites & {site_id}
    query = AlertQuery(
        site_ids=sites,
        resident_ids=frozenset({resident_id}) if resident_id else None,
        handling=frozenset(handling) if handling else None,
        kinds=frozenset(k.value for k in kind) if kind else None,
        severities=frozenset(s.value for s in severity) if severity else None,
        since=since,
        until=until,
        limit=limit,
    )
    found = [] if sites == frozenset() else await ctx.alert_service.list_alerts(query)
    visible = [
        enrich(a, index)
        for a in found
        if can_see_alert(principal.account, index.sites.get(a.site_id), a.resident_id)
    ]
    return _sort_queue(visible)


@router.get(
    "/api/alerts/{alert_id}", response_model=AlertDetail, summary="An alert and its history"
)
async def get_alert(alert_id: str, principal: Auth, ctx: Ctx) -> AlertDetail:
    alert = await visible_alert(ctx, principal, alert_id)
    history = await ctx.alert_service.alert_history(alert_id)
    site = (await ctx.index()).sites.get(alert.site_id)
    notes = await ctx.alert_service.alert_notifications(alert_id)
    return AlertDetail(
        alert=alert,
        history=[name_recipient(h, site) for h in history],
        notifications=[name_notified(n, site) for n in notes],
    )


def name_notified(n: NotificationOut, site: Site | None) -> NotificationOut:
    """`family:daughter` -> `李梅`, as in the history; `centre` stays (the page names it)."""
    _, _, contact_id = n.recipient.partition(":")
    contact = next((c for c in site.contacts if c.id == contact_id), None) if site else None
    return n.model_copy(update={"recipient": contact.name}) if contact else n


def name_recipient(event: AlertEventOut, site: Site | None) -> AlertEventOut:
    """`family:daughter` -> `李梅 (family)`: who was notified, as a person reads it."""
    recipient = event.details.get("recipient")
    if not isinstance(recipient, str) or not (
        event.event in ("notified", "notification_failed", "notification_digested")
        or event.event.startswith(("call_", "sms_"))
    ):
        return event
    role, _, contact_id = recipient.partition(":")
    contact = next((c for c in site.contacts if c.id == contact_id), None) if site else None
    if contact is None:
        return event
    return event.model_copy(update={"actor": f"{contact.name} ({role})"})


Step = Callable[[AlertService, str, float], Awaitable[AlertOut]]


async def _act(ctx: Ctx, principal: Principal, alert_id: str, step: Step) -> AlertOut:
    """Run one human step on an alert the principal may see; 404 / 409 as the API says."""
    await visible_alert(ctx, principal, alert_id)
    try:
        result = await step(ctx.alert_service, principal.username, ctx.clock.now())
    except AlertNotFound as exc:
        raise not_found("alert not found") from exc
    except AlertConflict as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    ctx.hub.poke()
    return enrich(result, await ctx.index())


@router.post("/api/alerts/{alert_id}/acknowledge", response_model=AlertOut, summary="Acknowledge")
async def acknowledge(alert_id: str, principal: Staff, ctx: Ctx) -> AlertOut:
    return await _act(
        ctx, principal, alert_id, lambda svc, who, now: svc.acknowledge(alert_id, actor=who, at=now)
    )


@router.post(
    "/api/alerts/{alert_id}/assign",
    response_model=AlertOut,
    summary="Assign or dispatch a responder",
)
async def assign(alert_id: str, body: AssignRequest, principal: Staff, ctx: Ctx) -> AlertOut:
    return await _act(
        ctx,
        principal,
        alert_id,
        lambda svc, who, now: svc.assign(alert_id, actor=who, assignee=body.assignee, at=now),
    )


@router.post("/api/alerts/{alert_id}/notes", response_model=AlertOut, summary="Add a note")
async def add_note(alert_id: str, body: NoteRequest, principal: Staff, ctx: Ctx) -> AlertOut:
    return await _act(
        ctx,
        principal,
        alert_id,
        lambda svc, who, now: svc.add_note(alert_id, actor=who, text=body.text, at=now),
    )


@router.post(
    "/api/alerts/{alert_id}/resolve", response_model=AlertOut, summary="Resolve with an outcome"
)
async def resolve(alert_id: str, body: ResolveRequest, principal: Staff, ctx: Ctx) -> AlertOut:
    return await _act(
        ctx,
        principal,
        alert_id,
        lambda svc, who, now: svc.resolve(
            alert_id, actor=who, outcome=body.outcome, note=body.note, at=now
        ),
    )


def today_window(now: float, timezone: str) -> tuple[float, float]:
    local = datetime.fromtimestamp(now, ZoneInfo(timezone))
    return local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp(), now


def _zone(tz: str) -> str:
    try:
        ZoneInfo(tz)
    except (ValueError, KeyError) as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "unknown time zone") from exc
    except Exception as exc:  # ZoneInfoNotFoundError and malformed keys
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "unknown time zone") from exc
    return tz


@router.get(
    "/api/figures/response",
    response_model=ResponseFigures,
    summary="Share of alerts acknowledged within 60 s and 180 s",
)
async def response_figures(
    principal: Staff,
    ctx: Ctx,
    since: float | None = None,
    until: float | None = None,
    tz: str = "Asia/Shanghai",
    severity: Annotated[
        list[Severity] | None,
        Query(description="severities to count; default critical, high and medium"),
    ] = None,
) -> ResponseFigures:
    index = await ctx.index()
    sites, _ = scope_query(index, principal)
    start, end = today_window(ctx.clock.now(), _zone(tz))
    return await ctx.alert_service.response_figures(
        site_ids=sites,
        since=since if since is not None else start,
        until=until if until is not None else end,
        severities=frozenset(s.value for s in severity) if severity else ALARM_SEVERITIES,
    )


@router.get("/api/overview", response_model=Overview, summary="The console's top bar")
async def overview(principal: Staff, ctx: Ctx, tz: str = "Asia/Shanghai") -> Overview:
    index = await ctx.index()
    sites, _ = scope_query(index, principal)
    visible = visible_sites(index, principal)
    open_alerts = (
        []
        if sites == frozenset()
        else await ctx.alert_service.list_alerts(
            AlertQuery(site_ids=sites, handling=frozenset({"open", "acknowledged"}), limit=100_000)
        )
    )
    by_severity = {s.value: 0 for s in Severity}
    offline: set[str] = set()
    for a in open_alerts:
        by_severity[a.severity] = by_severity.get(a.severity, 0) + 1
        if a.kind == AlertKind.SITE_OFFLINE and a.condition == "active":
            offline.add(a.site_id)
    start, end = today_window(ctx.clock.now(), _zone(tz))
    figures = await ctx.alert_service.response_figures(
        site_ids=sites, since=start, until=end, severities=ALARM_SEVERITIES
    )
    return Overview(
        sites_monitored=len(visible),
        sites_offline=len(offline),
        open_by_severity=by_severity,
        figures_today=figures,
    )
