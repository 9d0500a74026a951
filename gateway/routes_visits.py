"""Visits (探访) and coverage API: log a visit, the visits owed now, a resident's last
visits, coverage per unit and month (JSON and the monthly CSV return), and the
organisations' visit categories.

Responders log visits to residents of their service area; operators and supervisors
see visits and coverage of their subtree; a family sees their relative's last visits.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Request, Response, status
from pydantic import BaseModel, Field

from eldercare.registry_model import Site
from field_service.coverage import coverage, parse_month, to_csv
from field_service.responders import list_responders
from field_service.visit_store import list_visits, log_visit, put_category, visit_categories
from field_service.visits import (
    VisitCategory,
    VisitMode,
    VisitOutcome,
    VisitPeriod,
    VisitStatus,
    month_start,
    next_month,
    owed_now,
)
from gateway.auth import Principal, can_see_resident, can_see_site
from gateway.context import Admin, Auth, Ctx, Staff, audit, not_found
from gateway.users import Role

router = APIRouter(tags=["field"])
UNPROCESSABLE = status.HTTP_422_UNPROCESSABLE_CONTENT
LATE_LOG_S = 7 * 86400.0  # a visit may be logged up to a week after it happened


class VisitIn(BaseModel):
    site_id: str
    resident_id: str
    mode: VisitMode
    outcome: VisitOutcome
    note: str | None = Field(None, max_length=2000)
    at: float | None = Field(None, description="when the visit happened; default now")


class VisitOut(BaseModel):
    id: int
    site_id: str
    resident_id: str
    responder: str
    responder_name: str | None = None
    mode: VisitMode
    outcome: VisitOutcome
    note: str | None = None
    visited_at: float


class OwedOut(BaseModel):
    site_id: str
    resident_id: str
    resident_name: str
    address: str
    category: str
    category_zh: str
    category_en: str
    period: VisitPeriod
    period_end: float = Field(description="end of the current period (exclusive), epoch s")
    status: VisitStatus
    last_visit_at: float | None


class CoverageOut(BaseModel):
    unit: str = Field(description='organisation path; "" is the total')
    month: str
    needed: int
    visited: int
    overdue: int
    due: int
    rate: float | None


class CategoryIn(BaseModel):
    organisation: str = Field("", max_length=512, description='path prefix; "" = everywhere')
    period: VisitPeriod
    flag: str | None = Field(None, max_length=64)
    min_age: int | None = Field(None, ge=0, le=130)
    name_zh: str = Field("", max_length=128)
    name_en: str = Field("", max_length=128)


class CategoryOut(CategoryIn):
    id: str


def _sites_for(principal: Principal, sites: list[Site]) -> list[Site]:
    if principal.role is Role.FAMILY:
        return []
    return [s for s in sites if can_see_site(principal.account, s)]


@router.post("/api/field/visits", response_model=VisitOut, status_code=201, summary="Log a visit")
async def post_visit(body: VisitIn, principal: Auth, ctx: Ctx) -> VisitOut:
    if principal.role not in (Role.RESPONDER, Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "not allowed for this account")
    index = await ctx.index()
    site = index.sites.get(body.site_id)
    if (
        site is None
        or site.resident(body.resident_id) is None
        or not can_see_site(principal.account, site)
    ):
        raise not_found("resident not found")
    now = ctx.clock.now()
    at = now if body.at is None else body.at
    if not now - LATE_LOG_S <= at <= now + 60:
        raise HTTPException(UNPROCESSABLE, "a visit is logged within a week, and not ahead")
    visit = await log_visit(
        ctx.sessions, site_id=site.id, resident_id=body.resident_id,
        responder=principal.username, mode=body.mode, outcome=body.outcome, note=body.note,
        visited_at=at, logged_at=now,
    )  # fmt: skip
    return VisitOut(
        id=visit.id, site_id=visit.site_id, resident_id=visit.resident_id,
        responder=visit.responder, mode=visit.mode, outcome=visit.outcome, note=visit.note,
        visited_at=visit.visited_at,
    )  # fmt: skip


@router.get("/api/field/visits/owed", response_model=list[OwedOut], summary="Visits owed now")
async def owed(
    principal: Auth, ctx: Ctx, status_filter: VisitStatus | None = None
) -> list[OwedOut]:
    """Residents of my area (responder) or subtree (staff) with a visit category: overdue
    first, then due; `status_filter=overdue` for the overdue list alone."""
    index = await ctx.index()
    sites = _sites_for(principal, index.document.sites)
    if principal.role is Role.FAMILY:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "not allowed for this account")
    now = ctx.clock.now()
    categories = await visit_categories(ctx.sessions)
    visits = await list_visits(ctx.sessions, site_ids=[s.id for s in sites], since=now - 70 * 86400)
    out = []
    for o in owed_now(sites, categories, [v.mark for v in visits], now):
        if status_filter is not None and o.status is not status_filter:
            continue
        out.append(
            OwedOut(
                site_id=o.site.id,
                resident_id=o.resident.id,
                resident_name=o.resident.name,
                address=o.site.address,
                category=o.category.id,
                category_zh=o.category.name_zh or o.category.id,
                category_en=o.category.name_en or o.category.id,
                period=o.category.period,
                period_end=o.period.end_ts,
                status=o.status,
                last_visit_at=o.last_visit_at,
            )
        )
    return out


@router.get(
    "/api/field/sites/{site_id}/residents/{resident_id}/visits",
    response_model=list[VisitOut],
    summary="A resident's last visits",
)
async def resident_visits(
    site_id: str, resident_id: str, principal: Auth, ctx: Ctx, request: Request
) -> list[VisitOut]:
    index = await ctx.index()
    site = index.sites.get(site_id)
    if (
        site is None
        or site.resident(resident_id) is None
        or not can_see_resident(principal.account, site, resident_id)
    ):
        raise not_found("resident not found")
    await audit(ctx, request, principal, "read_visits", site.id, [resident_id])
    names = {r.username: r.name for r in await list_responders(ctx.sessions)}
    visits = await list_visits(ctx.sessions, resident=(site_id, resident_id), limit=10)
    family = principal.role is Role.FAMILY
    return [
        VisitOut(
            id=v.id,
            site_id=v.site_id,
            resident_id=v.resident_id,
            responder=v.responder,
            responder_name=names.get(v.responder),
            mode=v.mode,
            outcome=v.outcome,
            note=None if family else v.note,
            visited_at=v.visited_at,
        )
        for v in visits
    ]


async def _coverage_rows(
    principal: Principal, ctx: Ctx, month: str, depth: int | None
) -> list[CoverageOut]:
    try:
        year, mon = parse_month(month)
    except ValueError as exc:
        raise HTTPException(UNPROCESSABLE, str(exc)) from exc
    index = await ctx.index()
    sites = _sites_for(principal, index.document.sites)
    # A day's margin either side covers every site's zone.
    first = datetime.combine(month_start(year, mon), datetime.min.time(), ZoneInfo("UTC"))
    last = datetime.combine(
        next_month(month_start(year, mon)), datetime.min.time(), ZoneInfo("UTC")
    )
    visits = await list_visits(
        ctx.sessions, site_ids=[s.id for s in sites],
        since=first.timestamp() - 8 * 86400, until=last.timestamp() + 8 * 86400,
    )  # fmt: skip
    categories = await visit_categories(ctx.sessions)
    rows = coverage(sites, categories, [v.mark for v in visits], month, ctx.clock.now(), depth)
    return [
        CoverageOut(
            unit=r.unit,
            month=r.month,
            needed=r.needed,
            visited=r.visited,
            overdue=r.overdue,
            due=r.due,
            rate=r.rate,
        )
        for r in rows
    ]


@router.get("/api/field/coverage", response_model=list[CoverageOut], summary="Visit coverage")
async def get_coverage(
    principal: Staff, ctx: Ctx, month: str, depth: int | None = None
) -> list[CoverageOut]:
    """Per organisation unit (the path cut at `depth` levels, full when omitted) for a
    month YYYY-MM, then the total (unit "")."""
    return await _coverage_rows(principal, ctx, month, depth)


@router.get(
    "/api/field/coverage.csv",
    summary="The monthly visit-coverage return, as CSV",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
async def get_coverage_csv(
    principal: Staff, ctx: Ctx, month: str, depth: int | None = None
) -> Response:
    from field_service.coverage import CoverageRow

    rows = await _coverage_rows(principal, ctx, month, depth)
    text = to_csv([CoverageRow(r.unit, r.month, r.needed, r.visited, r.overdue) for r in rows])
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="visit-coverage-{month}.csv"'},
    )


def _category_out(c: VisitCategory) -> CategoryOut:
    return CategoryOut(
        id=c.id, organisation="/".join(c.organisation), period=c.period, flag=c.flag,
        min_age=c.min_age, name_zh=c.name_zh, name_en=c.name_en,
    )  # fmt: skip


@router.get(
    "/api/field/visit-categories", response_model=list[CategoryOut], summary="Visit categories"
)
async def get_categories(_: Staff, ctx: Ctx) -> list[CategoryOut]:
    return [_category_out(c) for c in await visit_categories(ctx.sessions)]


@router.put(
    "/api/field/visit-categories/{category_id}",
    response_model=CategoryOut,
    tags=["admin"],
    summary="Set a visit category (replaces the defaults once any is set)",
)
async def put_visit_category(category_id: str, body: CategoryIn, _: Admin, ctx: Ctx) -> CategoryOut:
    from eldercare.registry_model import is_identifier

    if not is_identifier(category_id):
        raise HTTPException(UNPROCESSABLE, "category id: letters, digits, _.:-")
    org = tuple(p.strip() for p in body.organisation.strip("/").split("/") if p.strip())
    category = VisitCategory(
        category_id, org, body.period, body.flag, body.min_age, body.name_zh, body.name_en
    )
    await put_category(ctx.sessions, category, ctx.clock.now())
    return _category_out(category)
