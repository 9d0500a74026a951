"""Device tests API (JGJ/T 484): the test schedule of emergency buttons and fall devices
with last test, next due, overdue and faults open past 2 hours; a responder (or staff)
records a test done on site, passed or failed."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, Field

from field_service.device_tests import device_test_status, list_tests, record_test
from gateway.auth import can_see_site
from gateway.context import Auth, Ctx, not_found
from gateway.users import Role

router = APIRouter(tags=["devices"])
LATE_LOG_S = 86400.0


class DeviceTestIn(BaseModel):
    site_id: str
    device_id: str
    passed: bool
    note: str | None = Field(None, max_length=500)
    at: float | None = Field(None, description="when the test was done; default now")


class DeviceTestOut(BaseModel):
    id: int
    site_id: str
    device_id: str
    at: float
    passed: bool
    source: str
    by: str | None


class DeviceTestStatusOut(BaseModel):
    site_id: str
    site_name: str
    device_id: str
    kind: str
    last_test_at: float | None
    next_due: float
    overdue: bool
    fault_since: float | None
    fault_overdue: bool = Field(description="a fault not fixed within 2 hours")
    last_test_source: str | None = Field(
        None, description="responder, or device: the device's own test press or self-check"
    )


def _allowed(role: Role) -> bool:
    return role in (Role.RESPONDER, Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN)


@router.get(
    "/api/field/device-tests",
    response_model=list[DeviceTestStatusOut],
    summary="Device test schedule: last test, next due, overdue, faults",
)
async def get_status(principal: Auth, ctx: Ctx) -> list[DeviceTestStatusOut]:
    if not _allowed(principal.role):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "not allowed for this account")
    index = await ctx.index()
    sites = [s for s in index.document.sites if can_see_site(principal.account, s)]
    tests = await list_tests(ctx.sessions, [s.id for s in sites])
    return [
        DeviceTestStatusOut(
            site_id=st.site.id,
            site_name=st.site.name,
            device_id=st.device_id,
            kind=st.kind.value,
            last_test_at=st.last_test_at,
            next_due=st.next_due,
            overdue=st.overdue,
            fault_since=st.fault_since,
            fault_overdue=st.fault_overdue,
            last_test_source=st.last_test_source,
        )
        for st in device_test_status(sites, tests, ctx.clock.now())
    ]


@router.post(
    "/api/field/device-tests",
    response_model=DeviceTestOut,
    status_code=201,
    summary="Record a device test done on site",
)
async def post_test(body: DeviceTestIn, principal: Auth, ctx: Ctx) -> DeviceTestOut:
    if not _allowed(principal.role):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "not allowed for this account")
    index = await ctx.index()
    site = index.sites.get(body.site_id)
    if (
        site is None
        or site.device(body.device_id) is None
        or not can_see_site(principal.account, site)
    ):
        raise not_found("device not found")
    now = ctx.clock.now()
    at = now if body.at is None else body.at
    if not now - LATE_LOG_S <= at <= now + 60:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "a test is logged within a day")
    t = await record_test(
        ctx.sessions, site_id=site.id, device_id=body.device_id, at=at, passed=body.passed,
        source="responder", by=principal.username, note=body.note,
    )  # fmt: skip
    return DeviceTestOut(
        id=t.id, site_id=t.site_id, device_id=t.device_id, at=t.at, passed=t.passed,
        source=t.source, by=t.by,
    )  # fmt: skip
