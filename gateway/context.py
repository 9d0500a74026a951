"""The gateway's injected parts and the request dependencies built on them.

`create_app` stores one `GatewayContext` on `app.state`; route functions get it,
and the authenticated `Principal`, through FastAPI dependencies.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, HTTPException, Request, status

from eldercare.clock import Clock
from eldercare.registry_index import RegistryIndex
from eldercare.registry_model import RegistryDocument, Site
from eldercare.settings import Settings
from gateway.audit import record_read
from gateway.auth import SESSION_COOKIE, Principal, can_see_site, principal_for_token
from gateway.ports import AlertService, IndexProvider, InfluxQuery
from gateway.sign_in_throttle import LocalSignInThrottle, SignInThrottle
from gateway.users import Role, Sessions

if TYPE_CHECKING:
    from gateway.stream import ChangeHub


@dataclass
class GatewayContext:
    settings: Settings
    sessions: Sessions
    index_provider: IndexProvider
    alert_service: AlertService
    influx: InfluxQuery | None
    clock: Clock
    hub: ChangeHub
    login_guard: SignInThrottle = field(default_factory=LocalSignInThrottle)
    # Checks the gateway cannot make itself (e.g. detector overrides), run on every
    # registry edit through the API: `(document) -> [registry_apply.Problem]`.
    registry_validators: Sequence[Callable[[RegistryDocument], list[Any]]] = ()

    async def index(self) -> RegistryIndex:
        return await self.index_provider.current()


def get_context(request: Request) -> GatewayContext:
    ctx: GatewayContext = request.app.state.gateway
    return ctx


Ctx = Annotated[GatewayContext, Depends(get_context)]


def _token_from(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.cookies.get(SESSION_COOKIE)


async def optional_principal(request: Request, ctx: Ctx) -> Principal | None:
    token = _token_from(request)
    if not token:
        return None
    return await principal_for_token(ctx.sessions, token, now=ctx.clock.now())


async def current_principal(
    principal: Annotated[Principal | None, Depends(optional_principal)],
) -> Principal:
    if principal is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "not signed in",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return principal


Auth = Annotated[Principal, Depends(current_principal)]


def require(*roles: Role):  # type: ignore[no-untyped-def]
    """A dependency refusing (403) accounts without one of `roles`."""

    async def check(principal: Auth) -> Principal:
        if principal.role not in roles:
            if principal.role is Role.FAMILY:
                # Family accounts are never told a staff resource exists (404, not 403).
                raise not_found()
            raise HTTPException(status.HTTP_403_FORBIDDEN, "not allowed for this account")
        return principal

    return check


Staff = Annotated[Principal, Depends(require(Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]


def not_found(what: str = "not found") -> HTTPException:
    # Out-of-scope things answer exactly like missing ones, so ids cannot be probed.
    return HTTPException(status.HTTP_404_NOT_FOUND, what)


def visible_site(index: RegistryIndex, principal: Principal, site_id: str) -> Site:
    site = index.sites.get(site_id)
    if site is None or not can_see_site(principal.account, site):
        raise not_found("site not found")
    return site


def visible_sites(index: RegistryIndex, principal: Principal) -> list[Site]:
    return [s for s in index.document.sites if can_see_site(principal.account, s)]


def resident_path(site_id: str, resident_id: str) -> str:
    return f"/api/sites/{site_id}/residents/{resident_id}"


async def audit(
    ctx: GatewayContext,
    request: Request,
    principal: Principal,
    action: str,
    site_id: str | None,
    resident_ids: list[str | None],
) -> None:
    await record_read(
        ctx.sessions,
        at=ctx.clock.now(),
        username=principal.username,
        role=principal.role.value,
        action=action,
        site_id=site_id,
        resident_ids=resident_ids,
        path=request.url.path,
        client=request.client.host if request.client else "",
    )


class CachedStoreIndex:
    """An `IndexProvider` over the registry store: re-reads only when the store's
    version counter moved, and checks the counter at most every `check_every_s`."""

    def __init__(self, sessions: Sessions, check_every_s: float = 1.0) -> None:
        self._sessions = sessions
        self._check_every_s = check_every_s
        self._index: RegistryIndex | None = None
        self._checked_at = 0.0

    async def current(self) -> RegistryIndex:
        from eldercare import registry_store

        now = time.monotonic()
        if self._index is not None and now - self._checked_at < self._check_every_s:
            return self._index
        version = await registry_store.registry_version(self._sessions)
        if self._index is None or self._index.version != version:
            self._index = await registry_store.load_index(self._sessions)
        self._checked_at = now
        return self._index

    async def refresh(self) -> RegistryIndex:
        from eldercare import registry_store

        self._index = await registry_store.load_index(self._sessions)
        self._checked_at = time.monotonic()
        return self._index
