"""The gateway application: REST API, live stream, operator console and family portal.

Everything it talks to is passed in, so `eldercare run` hosts it next to the
other parts and tests build it around a real SQLite store:

    app = create_app(settings, sessions=sessions, index_provider=CachedStoreIndex(sessions),
                     alert_service=service, influx=InfluxClient.from_settings(settings),
                     clock=WallClock())
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, cast

from fastapi import FastAPI, Header, HTTPException, Request, status
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from pydantic import BaseModel
from sqlalchemy import Table

from alerts.sender import AppriseSender
from eldercare import health, metrics
from eldercare.clock import Clock
from eldercare.db import Base
from eldercare.influx import InfluxClient
from eldercare.logs import get_logger
from eldercare.registry_model import RegistryDocument, Site
from eldercare.settings import Settings
from field_service.coverage_job import CoverageJob
from field_service.models import (
    DeviceFaultRow,
    DeviceTestRow,
    DeviceWatchRow,
    FieldNoticeRow,
    OrderEventRow,
    ResponderMessageRow,
    ResponderRow,
    VisitCategoryRow,
    VisitRow,
    WorkOrderRow,
)
from field_service.orders import OrderStore
from field_service.policy import FieldPolicy
from field_service.responder_messages import ResponderMessenger
from field_service.response_points import ResponseJob
from field_service.timers import PeriodicJob
from gateway import (
    pages,
    routes_activity,
    routes_alerts,
    routes_auth,
    routes_away,
    routes_device_tests,
    routes_family,
    routes_field,
    routes_providers,
    routes_registry,
    routes_visits,
)
from gateway.audit import AuditRow
from gateway.auth import TokenRow, can_handle_alerts
from gateway.body_limit import BodyLimit
from gateway.context import (
    Auth,
    Ctx,
    GatewayContext,
    _token_from,
    not_found,
    optional_principal,
)
from gateway.family_link import FamilyContactRow
from gateway.field_context import FieldContext
from gateway.metrics_access import metrics_token, token_matches
from gateway.ports import AlertService, IndexProvider, InfluxQuery
from gateway.routes_family import FamilyPrefRow
from gateway.security import BrowserSecurity
from gateway.sign_in_throttle import (
    LocalSignInThrottle,
    SignInFailure,
    SignInKnownClient,
    SignInThrottle,
)
from gateway.stream import ChangeHub, alert_events
from gateway.users import Sessions, UserRow, dummy_hash, ensure_first_admin

log = get_logger(__name__)

GATEWAY_TABLES: list[Table] = [
    cast(Table, t.__table__)
    for t in (
        UserRow,
        TokenRow,
        AuditRow,
        FamilyPrefRow,
        FamilyContactRow,
        SignInFailure,
        SignInKnownClient,
    )
] + [
    cast(Table, t.__table__)
    for t in (
        ResponderRow,
        WorkOrderRow,
        OrderEventRow,
        FieldNoticeRow,
        VisitRow,
        VisitCategoryRow,
        DeviceTestRow,
        ResponderMessageRow,
        DeviceWatchRow,
        DeviceFaultRow,
    )
]
ADMIN_PASSWORD_ENV = "ELDERCARE_ADMIN_PASSWORD"


def first_admin_password() -> str | None:
    """`ELDERCARE_ADMIN_PASSWORD`, or the content of the file named by
    `ELDERCARE_ADMIN_PASSWORD_FILE` (a container secret), stripped of the newline."""
    value = os.environ.get(ADMIN_PASSWORD_ENV)
    if value:
        return value
    path = os.environ.get(ADMIN_PASSWORD_ENV + "_FILE")
    if path:
        return Path(path).read_text(encoding="utf-8").strip() or None
    return None


_stream_clients = metrics.gauge("eldercare_gateway_stream_clients", "Connected live-stream clients")

TAGS = [
    {"name": "auth", "description": "Signing in and out"},
    {"name": "alerts", "description": "The alert queue and the operator's actions"},
    {"name": "registry", "description": "Sites, rooms, beds, residents, devices, contacts"},
    {"name": "activity", "description": "A resident's recent activity and readings"},
    {"name": "devices", "description": "Device health"},
    {"name": "family", "description": "The family portal"},
    {"name": "field", "description": "Responders, dispatch work orders, the responder's page"},
    {"name": "stream", "description": "Live stream of alert changes (Server-Sent Events)"},
    {"name": "admin", "description": "Accounts and registry edits (admins only)"},
    {"name": "platform", "description": "Health and metrics"},
]


class HealthProblem(BaseModel):
    part: str  # "influx", "broker", "spool", "alert_store", or "loop:<name>"
    reason: str
    since: float | None  # Unix seconds


class LoopState(BaseModel):
    name: str
    every_s: float
    age_s: float  # since its last tick (since its start if it never ticked)
    overdue_after_s: float
    last_error: str | None


class Health(BaseModel):
    status: str  # "ok", or "degraded" (HTTP 503): alerts may be delayed, see `problems`
    alert_feed_seq: int
    problems: list[HealthProblem] = []
    loops: list[LoopState] = []


def health_report(latest_seq: int) -> Health:
    registry = health.HEALTH
    problems = [
        HealthProblem(part=p.part, reason=p.reason, since=p.since) for p in registry.problems()
    ]
    loops = [
        LoopState(
            name=loop.name,
            every_s=loop.every_s,
            age_s=round(registry.loop_age(loop), 3),
            overdue_after_s=loop.overdue_after_s,
            last_error=loop.last_error,
        )
        for loop in registry.loops()
    ]
    return Health(
        status="degraded" if problems else "ok",
        alert_feed_seq=latest_seq,
        problems=problems,
        loops=loops,
    )


async def init_gateway_store(sessions: Sessions) -> None:
    """Create the gateway's tables if missing (idempotent)."""
    async with sessions() as session:
        conn = await session.connection()
        await conn.run_sync(lambda c: Base.metadata.create_all(c, tables=GATEWAY_TABLES))
        await session.commit()


def field_jobs(
    settings: Settings,
    sessions: Sessions,
    store: OrderStore,
    index_provider: IndexProvider,
    influx: Any,
) -> list[PeriodicJob]:
    """Visit coverage and field response figures to InfluxDB for the Coverage and
    Operations dashboards, when the gateway can write to InfluxDB."""
    if not isinstance(influx, InfluxClient):
        return []

    async def sites() -> list[Site]:
        return list((await index_provider.current()).document.sites)

    async def write(lines: list[str]) -> None:
        await influx.write(lines, settings.influx_db)

    return [CoverageJob(sessions, sites, write), ResponseJob(store, sites, write)]


def create_app(
    settings: Settings,
    *,
    sessions: Sessions,
    index_provider: IndexProvider,
    alert_service: AlertService,
    influx: InfluxQuery | None,
    clock: Clock,
    hub_poll_s: float = 0.25,
    registry_validators: Sequence[Callable[[RegistryDocument], list[Any]]] = (),
    sign_in_throttle: SignInThrottle | None = None,
) -> FastAPI:
    """`registry_validators` run on every registry edit through the API (any problem → 422,
    nothing changed); `eldercare_app.wiring` passes the detectors' override check."""
    dummy_hash()  # before the first sign-in, whose timing must not tell a user name
    hub = ChangeHub(alert_service, poll_s=hub_poll_s)
    scrape_token = metrics_token(settings)
    ctx = GatewayContext(
        settings=settings,
        sessions=sessions,
        index_provider=index_provider,
        alert_service=alert_service,
        influx=influx,
        clock=clock,
        hub=hub,
        registry_validators=tuple(registry_validators),
        login_guard=sign_in_throttle if sign_in_throttle is not None else LocalSignInThrottle(),
    )
    orders = OrderStore(sessions, FieldPolicy.load(settings.field_policy))
    field = FieldContext.build(
        orders,
        alert_service,
        hub,
        clock,
        poll_s=hub_poll_s,
        jobs=field_jobs(settings, sessions, orders, index_provider, influx),
        messenger=ResponderMessenger(
            sessions,
            orders.get,
            index_provider.current,
            AppriseSender(max_threads=4),
            public_url=settings.public_url,
            sms_url_template=settings.field_responder_sms_url,
        ),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await init_gateway_store(sessions)
        if await ensure_first_admin(sessions, first_admin_password(), clock.now()):
            log.info("created the first admin account 'admin' from %s", ADMIN_PASSWORD_ENV)
        await hub.start()
        await field.start()
        try:
            yield
        finally:
            await field.stop()
            await hub.stop()

    app = FastAPI(
        title="Elder-care monitoring gateway",
        version="0.1.0",
        description="REST API, live alert stream, operator console and family portal.",
        openapi_tags=TAGS,
        lifespan=lifespan,
        # The interactive docs page needs a CDN and inline script, which the
        # Content-Security-Policy forbids; the schema stays at /openapi.json.
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(BrowserSecurity, public_url=settings.public_url)
    # Outermost: an oversized body is refused before anything else reads it.
    app.add_middleware(BodyLimit)
    app.state.gateway = ctx
    app.state.field = field
    for module in (
        routes_auth,
        routes_alerts,
        routes_registry,
        routes_away,
        routes_activity,
        routes_family,
        routes_field,
        routes_visits,
        routes_device_tests,
        routes_providers,
    ):
        app.include_router(module.router)
    pages.mount(app)

    @app.get(
        "/healthz",
        response_model=Health,
        tags=["platform"],
        summary="Health of each dependency and loop; 503 when alerts may be delayed",
        responses={503: {"model": Health, "description": "degraded: see `problems`"}},
    )
    async def healthz() -> JSONResponse:
        report = health_report(hub.latest)
        code = 200 if report.status == "ok" else 503
        return JSONResponse(report.model_dump(), status_code=code)

    @app.get(
        "/metrics",
        response_class=PlainTextResponse,
        tags=["platform"],
        summary="Prometheus metrics",
    )
    async def prometheus(request: Request, context: Ctx) -> PlainTextResponse:
        # Private: the figures describe homes (how many, which are offline). A scraper
        # sends the metrics token; staff may look with their own sign-in.
        if not token_matches(request.headers.get("authorization", ""), scrape_token):
            principal = await optional_principal(request, context)
            if principal is None:
                raise HTTPException(
                    status.HTTP_401_UNAUTHORIZED,
                    "send the metrics bearer token (ELDERCARE_METRICS_TOKEN) or sign in",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            if not can_handle_alerts(principal.account):
                raise not_found()
        return PlainTextResponse(metrics.render_prometheus(), media_type=metrics.CONTENT_TYPE)

    @app.get(
        "/api/stream",
        tags=["stream"],
        summary="Alert changes as Server-Sent Events; send Last-Event-ID to resume",
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}}},
    )
    async def stream(
        request: Request,
        principal: Auth,
        context: Ctx,
        last_event_id: Annotated[str | None, Header()] = None,
    ) -> StreamingResponse:
        resume = (
            int(last_event_id)
            if last_event_id and last_event_id.isascii() and last_event_id.isdigit()
            else None
        )

        async def body() -> AsyncIterator[str]:
            _stream_clients.inc()
            try:
                async for chunk in alert_events(
                    principal=principal,
                    token=_token_from(request),
                    last_event_id=resume,
                    hub=context.hub,
                    alert_service=context.alert_service,
                    index_provider=context.index_provider,
                    sessions=context.sessions,
                    now=context.clock.now,
                ):
                    yield chunk
            finally:
                _stream_clients.inc(-1)

        return StreamingResponse(
            body(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    return app
