"""Signing in and out, and account administration."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, HTTPException, Query, Request, Response, status
from pydantic import BaseModel, Field

from gateway import users
from gateway.audit import list_audit
from gateway.auth import SESSION_COOKIE, SESSION_TTL_S, issue_token, revoke_all, revoke_token
from gateway.context import Admin, Auth, Ctx
from gateway.family_link import create_family_account
from gateway.password_work import HashingBusy
from gateway.security import CSRF_COOKIE, csrf_token_for
from gateway.users import Account, AccountError, Role

router = APIRouter(tags=["auth"])


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)
    token_kind: Literal["session", "bearer"] = Field(
        "session", description="session: also set the HttpOnly cookie; bearer: token only"
    )


class AccountOut(BaseModel):
    username: str
    display_name: str
    role: str
    scope: str | None = None
    residents: list[str] = Field(default_factory=list)
    language: str
    active: bool = True

    @classmethod
    def of(cls, a: Account) -> AccountOut:
        return cls(
            username=a.username,
            display_name=a.display_name,
            role=a.role.value,
            scope=a.scope_path,
            residents=sorted(a.residents),
            language=a.language,
            active=a.active,
        )


class LoginResponse(BaseModel):
    token: str = Field(description="send as `Authorization: Bearer <token>`")
    expires_at: float
    account: AccountOut


class NewAccount(BaseModel):
    username: str = Field(min_length=2, max_length=64)
    password: str = Field(min_length=users.MIN_PASSWORD_LENGTH, max_length=1024)
    role: Role
    scope: str | None = Field(None, max_length=512)
    residents: list[str] = Field(default_factory=list, max_length=50)
    display_name: str = Field("", max_length=128)
    language: Literal["zh-CN", "en"] | None = Field(
        None, description="default zh-CN, or a linked contact's language"
    )
    contact: str | None = Field(
        None,
        max_length=129,
        description="family: the registry contact (site_id/contact_id) this person is; "
        "her portal preferences then decide her notification channels",
    )
    contact_phone: str | None = Field(
        None, max_length=32, description="family: find the registry contact by phone instead"
    )


class RevokeResult(BaseModel):
    revoked: int


@router.post("/api/auth/login", response_model=LoginResponse, summary="Sign in")
async def login(
    body: LoginRequest, request: Request, response: Response, ctx: Ctx
) -> LoginResponse:
    client = request.client.host if request.client else ""
    now = ctx.clock.now()
    wait = await ctx.login_guard.retry_after(body.username, client, now)
    if wait is not None:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            "too many failed sign-ins; try again later",
            headers={"Retry-After": str(int(wait) + 1)},
        )
    try:
        account = await users.authenticate(ctx.sessions, body.username, body.password)
    except HashingBusy as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, str(exc), headers={"Retry-After": "1"}
        ) from exc
    if account is None:
        await ctx.login_guard.failed(body.username, client, now)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong user name or password")
    await ctx.login_guard.succeeded(body.username, client, now)
    issued = await issue_token(ctx.sessions, account, kind=body.token_kind, now=ctx.clock.now())
    if body.token_kind == "session":
        response.set_cookie(
            SESSION_COOKIE,
            issued.token,
            max_age=int(issued.expires_at - ctx.clock.now()),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
        _set_csrf_cookie(response, request, issued.token, issued.expires_at - ctx.clock.now())
    return LoginResponse(
        token=issued.token, expires_at=issued.expires_at, account=AccountOut.of(account)
    )


def _set_csrf_cookie(response: Response, request: Request, session: str, ttl: float) -> None:
    # Readable by the pages' script (not HttpOnly): it echoes it as X-CSRF-Token.
    response.set_cookie(
        CSRF_COOKIE,
        csrf_token_for(session),
        max_age=max(1, int(ttl)),
        httponly=False,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )


@router.post("/api/auth/logout", status_code=204, summary="Sign out (revoke this token)")
async def logout(principal: Auth, response: Response, ctx: Ctx) -> Response:
    await revoke_token(ctx.sessions, principal.token_id, now=ctx.clock.now())
    response.status_code = 204
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


@router.get("/api/auth/me", response_model=AccountOut, summary="The signed-in account")
async def me(principal: Auth, request: Request, response: Response, ctx: Ctx) -> AccountOut:
    session = request.cookies.get(SESSION_COOKIE)
    if session and CSRF_COOKIE not in request.cookies:
        # A session opened before the CSRF cookie existed gets one on the next page load;
        # it may outlive the session harmlessly (useless without it), never the reverse.
        _set_csrf_cookie(response, request, session, SESSION_TTL_S)
    return AccountOut.of(principal.account)


@router.get("/api/users", response_model=list[AccountOut], tags=["admin"], summary="All accounts")
async def list_accounts(_: Admin, ctx: Ctx) -> list[AccountOut]:
    return [AccountOut.of(a) for a in await users.list_users(ctx.sessions)]


@router.post(
    "/api/users",
    response_model=AccountOut,
    status_code=201,
    tags=["admin"],
    summary="Create an account",
)
async def create_account(body: NewAccount, _: Admin, ctx: Ctx) -> AccountOut:
    try:
        if body.contact is not None or body.contact_phone is not None:
            if body.role is not Role.FAMILY:
                raise AccountError("only family accounts are linked to a contact")
            account, _linked = await create_family_account(
                ctx.sessions,
                await ctx.index(),
                username=body.username,
                password=body.password,
                now=ctx.clock.now(),
                contact=body.contact,
                contact_phone=body.contact_phone,
                residents=body.residents,
                display_name=body.display_name,
                language=body.language,
            )
            return AccountOut.of(account)
        account = await users.create_user(
            ctx.sessions,
            username=body.username,
            role=body.role,
            password=body.password,
            now=ctx.clock.now(),
            scope=body.scope,
            residents=body.residents,
            display_name=body.display_name,
            language=body.language or "zh-CN",
        )
    except AccountError as exc:
        code = status.HTTP_409_CONFLICT if "already" in str(exc) else 422
        raise HTTPException(code, str(exc)) from exc
    return AccountOut.of(account)


@router.post(
    "/api/users/{username}/revoke",
    response_model=RevokeResult,
    tags=["admin"],
    summary="Revoke every token of an account; optionally deactivate it",
)
async def revoke_account(
    username: str,
    _: Admin,
    ctx: Ctx,
    deactivate: Annotated[bool, Body(embed=True)] = False,
) -> RevokeResult:
    account = next(
        (a for a in await users.list_users(ctx.sessions) if a.username == username), None
    )
    if account is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such account")
    if deactivate:
        await users.set_active(ctx.sessions, username, False)
    return RevokeResult(revoked=await revoke_all(ctx.sessions, account.id, now=ctx.clock.now()))


class AuditEntryOut(BaseModel):
    at: float
    username: str
    role: str
    action: str
    site_id: str | None = None
    resident_id: str | None = None
    path: str
    client: str


@router.get(
    "/api/audit",
    response_model=list[AuditEntryOut],
    tags=["admin"],
    summary="Who read whose personal data, newest first",
)
async def read_audit(
    _: Admin,
    ctx: Ctx,
    resident_id: str | None = None,
    username: str | None = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 200,
) -> list[AuditEntryOut]:
    entries = await list_audit(
        ctx.sessions, resident_id=resident_id, username=username, limit=limit
    )
    return [AuditEntryOut.model_validate(e, from_attributes=True) for e in entries]
