"""Field service API: responders, dispatch work orders, the responder's steps, the
resident card at the door, the family's "a helper is on the way", and the order stream.

Who sees what: a responder sees their own orders (and, through them, the residents
of their service area); an operator or supervisor the orders of sites in their
subtree; a family the helper status of their own relative only; admins everything.
Out-of-scope orders answer 404, like missing ones.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Request, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from eldercare.registry_index import RegistryIndex
from eldercare.registry_model import Site
from field_service.lifecycle import RESPONDER_STEPS, OrderState, Step, StepRefused
from field_service.orders import ORDER_OUTCOMES, OrderNotFound, WorkOrder
from field_service.requests import RequestKind
from field_service.responders import (
    Responder,
    ResponderKind,
    get_responder,
    list_responders,
    propose,
    set_on_duty,
    upsert_responder,
)
from gateway.auth import Principal, can_see_alert, can_see_resident, can_see_site
from gateway.context import (
    Admin,
    Auth,
    Ctx,
    Staff,
    _token_from,
    audit,
    not_found,
    require,
    visible_site,
)
from gateway.enrich import enrich
from gateway.field_context import Field as FieldCtx
from gateway.field_stream import order_events
from gateway.ports import AlertOut
from gateway.routes_registry import ContactOut, ResidentOut, contacts_for, resident_out
from gateway.users import Role

router = APIRouter(tags=["field"])
NO_COVERING_RESPONDER = "no active responder of that name covers this site"
UNPROCESSABLE = status.HTTP_422_UNPROCESSABLE_CONTENT

ResponderAuth = Annotated[Principal, Depends(require(Role.RESPONDER))]


class ResponderOut(BaseModel):
    username: str
    name: str
    kind: ResponderKind
    area: str = Field(description="service area: an organisation path")
    phone: str | None = None
    on_duty: bool
    active: bool
    notify_channels: int = Field(
        0, description="how many notify URLs new orders go to (the URLs are not shown)"
    )

    @classmethod
    def of(cls, r: Responder) -> ResponderOut:
        return cls(
            username=r.username, name=r.name, kind=r.kind, area="/".join(r.area),
            phone=r.phone, on_duty=r.on_duty, active=r.active, notify_channels=len(r.notify),
        )  # fmt: skip


class ResponderIn(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    kind: ResponderKind
    area: str = Field(min_length=1, max_length=512)
    phone: str | None = Field(None, max_length=32)
    on_duty: bool = False
    notify: list[Annotated[str, Field(min_length=3, max_length=1000)]] | None = Field(
        None,
        max_length=5,
        description="Apprise URLs a new order is sent to (SMS provider, WeCom, e-mail); "
        "absent: keep the ones set",
    )


class DutyIn(BaseModel):
    on_duty: bool


class OrderOut(BaseModel):
    id: str
    kind: str
    site_id: str
    resident_id: str | None
    alert_id: str | None
    responder: str
    responder_name: str | None = None
    state: OrderState
    attempt: int
    created_by: str
    requested_at: float = Field(description="when the need arose (event time), epoch seconds")
    dispatched_at: float
    accept_due: float
    arrive_due: float = Field(description="the site's promise: at the door by then")
    accepted_at: float | None
    on_the_way_at: float | None
    arrived_at: float | None
    closed_at: float | None
    accept_overdue: bool
    late: bool
    decline_reason: str | None
    outcome: str | None
    note: str | None
    site_name: str | None = None
    address: str | None = None
    resident_name: str | None = None
    alert_kind: str | None = None
    request_kind: str | None = None
    requested_by: str | None = None
    request_note: str | None = None


class OrderEventOut(BaseModel):
    at: float
    event: str
    actor: str | None
    details: dict[str, Any]


class OrderCard(BaseModel):
    """What the responder needs at the door."""

    order: OrderOut
    history: list[OrderEventOut]
    resident: ResidentOut | None
    contacts: list[ContactOut]
    alert: AlertOut | None = Field(None, description="the alert with its evidence in phrases")


class HelperStatus(BaseModel):
    """The family's view of an order: who is coming and when they arrived."""

    order_id: str
    kind: str = Field(description="dispatch (from an alert) or service_request")
    request_kind: str | None = None
    state: OrderState
    responder_name: str
    dispatched_at: float
    accepted_at: float | None
    on_the_way_at: float | None
    arrived_at: float | None
    closed_at: float | None
    outcome: str | None


class DispatchIn(BaseModel):
    responder: str = Field(min_length=1, max_length=64)
    alert_id: str | None = Field(None, description="dispatch for this alert (site, resident)")
    site_id: str | None = Field(None, description="without an alert: the site to go to")
    resident_id: str | None = None


class StepIn(BaseModel):
    reason: str | None = Field(None, max_length=500, description="decline: why")
    outcome: str | None = Field(None, description="done: one of the outcome codes")
    note: str | None = Field(None, max_length=2000)
    responder: str | None = Field(None, description="redispatch: who goes now")


# --- scope ---------------------------------------------------------------------------------


def can_see_order(principal: Principal, site: Site | None, order: WorkOrder) -> bool:
    if principal.role is Role.ADMIN:
        return True
    if site is None:
        return False
    if principal.role is Role.RESPONDER:
        return order.responder == principal.username
    if principal.role in (Role.OPERATOR, Role.SUPERVISOR):
        return can_see_site(principal.account, site)
    return False  # families see helper status, through their relative


async def _names(ctx: Ctx) -> dict[str, str]:
    return {r.username: r.name for r in await list_responders(ctx.sessions)}


def order_out(order: WorkOrder, index: RegistryIndex, names: dict[str, str]) -> OrderOut:
    site = index.sites.get(order.site_id)
    resident = site.resident(order.resident_id) if site else None
    return OrderOut(
        id=order.id, kind=order.kind, site_id=order.site_id, resident_id=order.resident_id,
        alert_id=order.alert_id, responder=order.responder,
        responder_name=names.get(order.responder), state=order.state, attempt=order.attempt,
        created_by=order.created_by, requested_at=order.requested_at,
        dispatched_at=order.dispatched_at, accept_due=order.accept_due,
        arrive_due=order.arrive_due, accepted_at=order.accepted_at,
        on_the_way_at=order.on_the_way_at, arrived_at=order.arrived_at,
        closed_at=order.closed_at, accept_overdue=order.accept_overdue, late=order.late,
        decline_reason=order.decline_reason, outcome=order.outcome, note=order.note,
        site_name=site.name if site else None, address=site.address if site else None,
        resident_name=resident.name if resident else None, alert_kind=order.alert_kind,
        request_kind=order.request_kind, requested_by=order.requested_by,
        request_note=order.request_note,
    )  # fmt: skip


def helper_status(order: WorkOrder, names: dict[str, str]) -> HelperStatus:
    return HelperStatus(
        order_id=order.id, kind=order.kind, request_kind=order.request_kind, state=order.state,
        responder_name=names.get(order.responder, order.responder),
        dispatched_at=order.dispatched_at, accepted_at=order.accepted_at,
        on_the_way_at=order.on_the_way_at, arrived_at=order.arrived_at,
        closed_at=order.closed_at, outcome=order.outcome,
    )  # fmt: skip


async def _visible_order(
    field: FieldCtx, ctx: Ctx, principal: Principal, order_id: str
) -> WorkOrder:
    order = await field.store.get(order_id)
    index = await ctx.index()
    if order is None or not can_see_order(principal, index.sites.get(order.site_id), order):
        raise not_found("order not found")
    return order


# --- responders ----------------------------------------------------------------------------


@router.get("/api/field/responders", response_model=list[ResponderOut], summary="Responders")
async def responders(principal: Staff, ctx: Ctx, site_id: str | None = None) -> list[ResponderOut]:
    """Responders whose area overlaps my scope; with `site_id`, those covering the site,
    on-duty ones of the site's community first (the proposal for a dispatch)."""
    everyone = await list_responders(ctx.sessions)
    if site_id is not None:
        site = visible_site(await ctx.index(), principal, site_id)
        return [ResponderOut.of(r) for r in propose(everyone, site.org_path)]
    scope = principal.account.scope
    if scope is None:
        return [ResponderOut.of(r) for r in everyone]
    return [
        ResponderOut.of(r)
        for r in everyone
        if r.area[: len(scope)] == scope or scope[: len(r.area)] == r.area
    ]


@router.put(
    "/api/field/responders/{username}",
    response_model=ResponderOut,
    tags=["admin"],
    summary="Create or change a responder (the account must exist with role responder)",
)
async def put_responder(username: str, body: ResponderIn, _: Admin, ctx: Ctx) -> ResponderOut:
    from gateway.users import list_users

    account = next((a for a in await list_users(ctx.sessions) if a.username == username), None)
    if account is None or account.role is not Role.RESPONDER:
        raise HTTPException(UNPROCESSABLE, "no responder account of that name")
    try:
        r = await upsert_responder(
            ctx.sessions, username=username, name=body.name, kind=body.kind, area=body.area,
            phone=body.phone, on_duty=body.on_duty, now=ctx.clock.now(), notify=body.notify,
        )  # fmt: skip
    except ValueError as exc:
        raise HTTPException(UNPROCESSABLE, str(exc)) from exc
    return ResponderOut.of(r)


@router.get("/api/field/me", response_model=ResponderOut, summary="My responder record")
async def me(principal: ResponderAuth, ctx: Ctx) -> ResponderOut:
    r = await get_responder(ctx.sessions, principal.username)
    if r is None:
        raise not_found("no responder record for this account")
    return ResponderOut.of(r)


@router.put("/api/field/me/duty", response_model=ResponderOut, summary="Go on or off duty")
async def duty(body: DutyIn, principal: ResponderAuth, ctx: Ctx) -> ResponderOut:
    try:
        r = await set_on_duty(ctx.sessions, principal.username, body.on_duty, ctx.clock.now())
    except LookupError as exc:
        raise not_found("no responder record for this account") from exc
    return ResponderOut.of(r)


# --- orders --------------------------------------------------------------------------------


@router.post(
    "/api/field/orders", response_model=OrderOut, status_code=201, summary="Dispatch a responder"
)
async def dispatch(body: DispatchIn, principal: Staff, field: FieldCtx, ctx: Ctx) -> OrderOut:
    index = await ctx.index()
    now = ctx.clock.now()
    alert_kind = None
    if body.alert_id is not None:
        alert = await ctx.alert_service.get_alert(body.alert_id)
        site = index.sites.get(alert.site_id) if alert else None
        if alert is None or not can_see_alert(principal.account, site, alert.resident_id):
            raise not_found("alert not found")
        assert site is not None
        resident_id, requested_at, alert_kind = alert.resident_id, alert.raised_at, alert.kind
    elif body.site_id is not None:
        site = index.sites.get(body.site_id)
        if site is None or not can_see_site(principal.account, site):
            raise not_found("site not found")
        if body.resident_id is not None and site.resident(body.resident_id) is None:
            raise not_found("resident not found")
        resident_id, requested_at = body.resident_id, now
    else:
        raise HTTPException(UNPROCESSABLE, "give alert_id or site_id")
    responder = await get_responder(ctx.sessions, body.responder)
    if responder is None or not responder.active or not responder.covers(site.org_path):
        raise HTTPException(UNPROCESSABLE, NO_COVERING_RESPONDER)
    order = await field.store.dispatch(
        site=site, resident_id=resident_id, alert_id=body.alert_id,
        requested_at=min(requested_at, now), responder=responder.username,
        actor=principal.username, at=now, alert_kind=alert_kind,
    )  # fmt: skip
    field.hub.poke()
    return order_out(order, index, {responder.username: responder.name})


class RequestIn(BaseModel):
    site_id: str
    resident_id: str | None = None
    kind: RequestKind
    note: str | None = Field(None, max_length=500)


@router.post(
    "/api/field/requests",
    response_model=HelperStatus,
    status_code=201,
    summary="Ask for a service (meal, medicine, cleaning, accompany to hospital, repair, other)",
)
async def open_request(body: RequestIn, principal: Auth, field: FieldCtx, ctx: Ctx) -> HelperStatus:
    """Families for their own relative; operators for sites in their subtree. The request
    waits for the operator to send someone, then follows the dispatch path."""
    index = await ctx.index()
    site = index.sites.get(body.site_id)
    if site is None or (body.resident_id is not None and site.resident(body.resident_id) is None):
        raise not_found("resident not found")
    if principal.role is Role.FAMILY:
        if not can_see_resident(principal.account, site, body.resident_id):
            raise not_found("resident not found")
    elif principal.role in (Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN):
        if not can_see_site(principal.account, site):
            raise not_found("resident not found")
    else:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "not allowed for this account")
    order = await field.store.open_request(
        site=site, resident_id=body.resident_id, kind=body.kind, note=body.note,
        requested_by=principal.username, at=ctx.clock.now(),
    )  # fmt: skip
    field.hub.poke()
    return helper_status(order, {})


@router.get("/api/field/orders", response_model=list[OrderOut], summary="Work orders I may see")
async def list_orders(
    principal: Auth,
    field: FieldCtx,
    ctx: Ctx,
    open: bool = False,
    alert_id: str | None = None,
    limit: int = 200,
) -> list[OrderOut]:
    index = await ctx.index()
    limit = max(1, min(limit, 1000))
    if principal.role is Role.FAMILY:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "not allowed for this account")
    if principal.role is Role.RESPONDER:
        orders = await field.store.list_orders(
            responder=principal.username, alert_id=alert_id, open_only=open, limit=limit
        )
    else:
        sites = None
        if principal.role is not Role.ADMIN:
            sites = [s.id for s in index.document.sites if can_see_site(principal.account, s)]
        orders = await field.store.list_orders(
            site_ids=sites, alert_id=alert_id, open_only=open, limit=limit
        )
    names = await _names(ctx)
    return [order_out(o, index, names) for o in orders]


@router.get("/api/field/orders/{order_id}", response_model=OrderCard, summary="An order's card")
async def order_card(
    order_id: str, principal: Auth, field: FieldCtx, ctx: Ctx, request: Request
) -> OrderCard:
    order = await _visible_order(field, ctx, principal, order_id)
    index = await ctx.index()
    site = index.sites[order.site_id]
    resident = site.resident(order.resident_id)
    alert = None
    if order.alert_id is not None:
        found = await ctx.alert_service.get_alert(order.alert_id)
        alert = enrich(found, index) if found is not None else None
    await audit(ctx, request, principal, "read_order_card", site.id, [order.resident_id])
    names = await _names(ctx)
    return OrderCard(
        order=order_out(order, index, names),
        history=[
            OrderEventOut(at=e.at, event=e.event, actor=e.actor, details=e.details)
            for e in await field.store.history(order.id)
        ],
        resident=resident_out(site, resident) if resident else None,
        contacts=contacts_for(site, resident.id) if resident else [],
        alert=alert,
    )


@router.post("/api/field/orders/{order_id}/{step}", response_model=OrderOut, summary="Take a step")
async def take_step(
    order_id: str, step: Step, body: StepIn, principal: Auth, field: FieldCtx, ctx: Ctx
) -> OrderOut:
    """Responders: accept, decline (reason), on_the_way, arrive, done (outcome, note) on
    their own orders. Operators: redispatch (responder) or cancel an order in scope."""
    order = await _visible_order(field, ctx, principal, order_id)
    if step in RESPONDER_STEPS:
        if principal.username != order.responder:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "only the assigned responder")
    elif principal.role not in (Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only the operator")
    index = await ctx.index()
    if step is Step.REDISPATCH:
        responder = await get_responder(ctx.sessions, body.responder or "")
        if (
            responder is None
            or not responder.active
            or not responder.covers(index.sites[order.site_id].org_path)
        ):
            raise HTTPException(UNPROCESSABLE, NO_COVERING_RESPONDER)
    if step is Step.DONE and body.outcome not in ORDER_OUTCOMES:
        raise HTTPException(UNPROCESSABLE, "outcome: one of the outcome codes")
    try:
        order = await field.store.step(
            order.id, step, actor=principal.username, at=ctx.clock.now(), reason=body.reason,
            outcome=body.outcome, note=body.note, responder=body.responder,
        )  # fmt: skip
    except StepRefused as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    except OrderNotFound as exc:
        raise not_found("order not found") from exc
    field.hub.poke()
    return order_out(order, index, await _names(ctx))


@router.get(
    "/api/field/sites/{site_id}/residents/{resident_id}/helpers",
    response_model=list[HelperStatus],
    summary="Helpers sent to this resident in the last 7 days (the family's view)",
)
async def helpers(
    site_id: str, resident_id: str, principal: Auth, field: FieldCtx, ctx: Ctx
) -> list[HelperStatus]:
    index = await ctx.index()
    site = index.sites.get(site_id)
    if (
        site is None
        or site.resident(resident_id) is None
        or principal.role is Role.RESPONDER
        or not can_see_resident(principal.account, site, resident_id)
    ):
        raise not_found("resident not found")
    orders = await field.store.list_orders(
        resident=(site_id, resident_id), since=ctx.clock.now() - 7 * 86400, limit=20
    )
    names = await _names(ctx)
    return [helper_status(o, names) for o in orders if o.state is not OrderState.CANCELLED]


@router.get(
    "/api/field/stream",
    tags=["stream"],
    summary="Work-order changes as Server-Sent Events; send Last-Event-ID to resume",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream(
    request: Request,
    principal: Auth,
    field: FieldCtx,
    ctx: Ctx,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    resume = (
        int(last_event_id)
        if last_event_id and last_event_id.isascii() and last_event_id.isdigit()
        else None
    )

    async def render(change: Any) -> str | None:
        index = await ctx.index()
        order: WorkOrder = change.order
        site = index.sites.get(order.site_id)
        names = await _names(ctx)
        if can_see_order(principal, site, order):
            return order_out(order, index, names).model_dump_json()
        if (
            principal.role is Role.FAMILY
            and site is not None
            and order.resident_id is not None
            and can_see_resident(principal.account, site, order.resident_id)
        ):
            return helper_status(order, names).model_dump_json()
        return None

    return StreamingResponse(
        order_events(
            principal_token=_token_from(request),
            last_event_id=resume,
            hub=field.hub,
            store=field.store,
            render=render,
            still_signed_in=lambda token: _still_signed_in(ctx, token),
        ),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _still_signed_in(ctx: Ctx, token: str) -> bool:
    from gateway.auth import principal_for_token

    return await principal_for_token(ctx.sessions, token, now=ctx.clock.now()) is not None
