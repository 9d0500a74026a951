"""Who is asking, and what they may see.

Login issues an opaque random token; only its SHA-256 is stored, so a copy of the
database holds no usable credentials. The same token works as an HttpOnly,
SameSite=Strict cookie (the pages) or as `Authorization: Bearer` (scripts).
Tokens expire and can be revoked one by one or all at once for an account.

Scope rules are pure predicates over the registry model, testable without I/O.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import Float, Integer, String, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from eldercare.db import Base
from eldercare.registry_model import Site
from gateway.users import Account, Role, UserRow, resident_ref

SESSION_COOKIE = "eldercare_session"
SESSION_TTL_S = 12 * 3600.0  # one long shift
BEARER_TTL_S = 30 * 86400.0


class TokenRow(Base):
    __tablename__ = "gateway_token"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    user_id: Mapped[int] = mapped_column(Integer, index=True)
    kind: Mapped[str] = mapped_column(String(16))  # session | bearer
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated request: the account and the token that proved it."""

    account: Account
    token_id: int

    @property
    def username(self) -> str:
        return self.account.username

    @property
    def role(self) -> Role:
        return self.account.role


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    expires_at: float
    kind: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def issue_token(
    sessions: async_sessionmaker[AsyncSession], account: Account, *, kind: str, now: float
) -> IssuedToken:
    ttl = SESSION_TTL_S if kind == "session" else BEARER_TTL_S
    token = secrets.token_urlsafe(32)
    async with sessions() as session:
        session.add(
            TokenRow(
                token_hash=_digest(token),
                user_id=account.id,
                kind=kind,
                created_at=now,
                expires_at=now + ttl,
            )
        )
        await session.commit()
    return IssuedToken(token=token, expires_at=now + ttl, kind=kind)


async def principal_for_token(
    sessions: async_sessionmaker[AsyncSession], token: str, *, now: float
) -> Principal | None:
    async with sessions() as session:
        row = await session.scalar(select(TokenRow).where(TokenRow.token_hash == _digest(token)))
        if row is None or row.revoked_at is not None or row.expires_at <= now:
            return None
        user = await session.get(UserRow, row.user_id)
        if user is None or not user.active:
            return None
        return Principal(Account.from_row(user), row.id)


async def revoke_token(
    sessions: async_sessionmaker[AsyncSession], token_id: int, *, now: float
) -> None:
    async with sessions() as session:
        await session.execute(
            update(TokenRow)
            .where(TokenRow.id == token_id, TokenRow.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        await session.commit()


async def revoke_all(
    sessions: async_sessionmaker[AsyncSession], user_id: int, *, now: float
) -> int:
    async with sessions() as session:
        result = await session.execute(
            update(TokenRow)
            .where(TokenRow.user_id == user_id, TokenRow.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        await session.commit()
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


# --- scope: pure predicates -------------------------------------------------------------


def in_scope(scope: tuple[str, ...], org_path: tuple[str, ...]) -> bool:
    """A site belongs to a scope when the scope is a prefix of its organisation path."""
    return org_path[: len(scope)] == scope


def can_see_site(account: Account, site: Site) -> bool:
    if account.role is Role.ADMIN:
        return True
    if account.role is Role.FAMILY:
        return any(resident_ref(site.id, r.id) in account.residents for r in site.residents)
    return account.scope is not None and in_scope(account.scope, site.org_path)


def can_see_resident(account: Account, site: Site, resident_id: str | None) -> bool:
    if account.role is Role.FAMILY:
        # Resident ids repeat across sites: the account names (site, resident) pairs.
        return resident_id is not None and resident_ref(site.id, resident_id) in account.residents
    return can_see_site(account, site)


def can_see_alert(account: Account, site: Site | None, resident_id: str | None) -> bool:
    """Family members see alerts about their own relative only, never site-wide ones
    of a shared site; staff see alerts of sites in their scope."""
    if site is None:
        return account.role is Role.ADMIN
    if account.role is Role.FAMILY and resident_id is None:
        # A site-wide alert (the home went offline) concerns the family of a home,
        # not the families of everyone else in an institution.
        return site.kind == "home" and can_see_site(account, site)
    return can_see_resident(account, site, resident_id)


def can_handle_alerts(account: Account) -> bool:
    return account.role in (Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN)


def can_edit_registry(account: Account) -> bool:
    return account.role is Role.ADMIN
