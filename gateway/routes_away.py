"""Declared absences: a family member or the centre says "she is with me until Sunday
18:00", so the outing rule (`not_returned`) waits for that end instead of alarming by
night (see `eldercare.planned_absence`).

Anyone who may see the resident may declare or withdraw (the family portal, an
operator on the phone with the daughter). Home-care beds only: an institution's rules
cannot see one resident leave, so there a declaration would change nothing. Each
change is written to the audit trail, and to the history of the resident's unresolved
`not_returned` alert if there is one, so whoever handles it sees why it will not come
back before the declared end.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response, status
from pydantic import BaseModel, Field

from eldercare import planned_absence
from eldercare.domain import AlertKind, SiteKind
from eldercare.registry_index import PlannedAbsence
from eldercare.registry_model import Site
from gateway.context import Auth, Ctx, GatewayContext, audit
from gateway.ports import AlertQuery
from gateway.routes_registry import resident_site

router = APIRouter(tags=["residents"])

SHOWN_PAST_END_S = 3600.0  # current until its end + the outing rule's default margin


class AwayIn(BaseModel):
    until: str = Field(
        pattern=r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d$",
        description="the expected return, site-local YYYY-MM-DDTHH:MM (at most "
        f"{planned_absence.MAX_DAYS} days ahead)",
        examples=["2026-12-13T18:00"],
    )
    note: str = Field("", max_length=planned_absence.MAX_NOTE, description="e.g. where")


class AwayOut(BaseModel):
    resident_id: str
    until: str = Field(description="site-local YYYY-MM-DDTHH:MM")
    timezone: str
    note: str
    declared_by: str
    declared_at: float


def away_out(site: Site, p: PlannedAbsence) -> AwayOut:
    return AwayOut(
        resident_id=p.resident_id,
        until=p.until,
        timezone=site.timezone,
        note=p.note,
        declared_by=p.declared_by,
        declared_at=p.declared_at,
    )


def current_away(site: Site, p: PlannedAbsence | None, now: float) -> AwayOut | None:
    """The declaration while it still matters (until its end + an hour), else None."""
    if p is None or p.until_ts + SHOWN_PAST_END_S <= now:
        return None
    return away_out(site, p)


async def _note_on_open_alert(
    ctx: GatewayContext, site: Site, resident_id: str, actor: str, text: str
) -> None:
    alerts = await ctx.alert_service.list_alerts(
        AlertQuery(
            site_ids=frozenset({site.id}),
            resident_ids=frozenset({resident_id}),
            kinds=frozenset({AlertKind.NOT_RETURNED.value}),
            handling=frozenset({"open", "acknowledged"}),
            limit=5,
        )
    )
    for a in alerts:
        await ctx.alert_service.add_note(a.id, actor=actor, text=text, at=ctx.clock.now())


@router.get(
    "/api/sites/{site_id}/residents/{resident_id}/away",
    response_model=AwayOut | None,
    summary="The resident's declared absence, if one is current",
)
@router.get(
    "/api/residents/{resident_id}/away",
    response_model=AwayOut | None,
    summary="The same, by a resident id unique among those I may see (else 409)",
)
async def get_away(
    resident_id: str, principal: Auth, ctx: Ctx, request: Request, site_id: str | None = None
) -> AwayOut | None:
    index = await ctx.index()
    site, resident = resident_site(index, principal, resident_id, site_id)
    await audit(ctx, request, principal, "read_away", site.id, [resident.id])
    return current_away(site, index.planned_absences.get((site.id, resident.id)), ctx.clock.now())


@router.put(
    "/api/sites/{site_id}/residents/{resident_id}/away",
    response_model=AwayOut,
    summary="Declare the resident away until a time (replaces any earlier declaration)",
)
@router.put(
    "/api/residents/{resident_id}/away",
    response_model=AwayOut,
    summary="The same, by a resident id unique among those I may see (else 409)",
)
async def put_away(
    resident_id: str,
    body: AwayIn,
    principal: Auth,
    ctx: Ctx,
    request: Request,
    site_id: str | None = None,
) -> AwayOut:
    index = await ctx.index()
    site, resident = resident_site(index, principal, resident_id, site_id)
    if site.kind != SiteKind.HOME:
        # An institution's rules cannot see one resident leave (no front door of her
        # own): a declaration would change nothing, and silencing its activity rules
        # safely needs a leave that starts, not only one that ends.
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "declared absences apply to home-care beds, not to institution residents",
        )
    try:
        declared = await planned_absence.declare(
            ctx.sessions,
            site_id=site.id,
            resident_id=resident.id,
            timezone=site.timezone,
            until=body.until,
            note=body.note,
            declared_by=principal.account.display_name or principal.username,
            now=ctx.clock.now(),
        )
    except planned_absence.PlannedAbsenceError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    await ctx.index_provider.refresh()
    await audit(ctx, request, principal, "declare_away", site.id, [resident.id])
    until = body.until.replace("T", " ")
    text = f"外出报备 / declared away until {until}" + (
        f" — {declared.note}" if declared.note else ""
    )
    await _note_on_open_alert(ctx, site, resident.id, principal.username, text)
    return away_out(site, declared)


@router.delete(
    "/api/sites/{site_id}/residents/{resident_id}/away",
    status_code=204,
    summary="Withdraw the resident's declared absence (back early, plans changed)",
)
@router.delete(
    "/api/residents/{resident_id}/away",
    status_code=204,
    summary="The same, by a resident id unique among those I may see (else 409)",
)
async def delete_away(
    resident_id: str, principal: Auth, ctx: Ctx, request: Request, site_id: str | None = None
) -> Response:
    index = await ctx.index()
    site, resident = resident_site(index, principal, resident_id, site_id)
    if not await planned_absence.withdraw(ctx.sessions, site.id, resident.id, ctx.clock.now()):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no declared absence")
    await ctx.index_provider.refresh()
    await audit(ctx, request, principal, "withdraw_away", site.id, [resident.id])
    await _note_on_open_alert(
        ctx, site, resident.id, principal.username, "外出报备已撤销 / declared absence withdrawn"
    )
    return Response(status_code=204)
