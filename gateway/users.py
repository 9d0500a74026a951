"""Accounts of the people who use the gateway, and what each may see.

Roles: `operator` and `supervisor` work within a scope (an organisation subtree
such as 滨州市/滨城区/市中街道/黄河社区, or an institution's path); `admin` sees
and edits everything; `family` sees only the residents linked to the account.
A resident id is unique only within its site, so a family account names each of its
residents as `site_id/resident_id` (`resident_ref`); a bare id grants nothing.
Passwords are hashed with argon2; there is no built-in default password: the
first admin comes from `ELDERCARE_ADMIN_PASSWORD` at first start or from
`eldercare users add`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import JSON, Boolean, Float, Integer, String, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from eldercare.db import Base
from eldercare.errors import EldercareError
from eldercare.registry_model import is_identifier
from gateway.password_work import off_loop

_HASHER = PasswordHasher()
_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{1,63}$")
MIN_PASSWORD_LENGTH = 10

Sessions = async_sessionmaker[AsyncSession]


class Role(StrEnum):
    OPERATOR = "operator"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"
    FAMILY = "family"
    # Goes to the door (community worker, 网格员, volunteer, nurse): scope is the service
    # area; sees their own work orders and the area's residents, not the alert queue.
    RESPONDER = "responder"


class AccountError(EldercareError, ValueError):
    """A request to create or change an account that cannot be honoured."""


class UserRow(Base):
    __tablename__ = "gateway_user"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    display_name: Mapped[str] = mapped_column(String(128), default="")
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(256))
    scope: Mapped[str | None] = mapped_column(String(512), nullable=True)
    residents: Mapped[list[str]] = mapped_column(JSON, default=list)
    language: Mapped[str] = mapped_column(String(8), default="zh-CN")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[float] = mapped_column(Float)


@dataclass(frozen=True, slots=True)
class Account:
    """An account as the rest of the gateway sees it (no password hash)."""

    id: int
    username: str
    display_name: str
    role: Role
    scope: tuple[str, ...] | None
    residents: frozenset[str]
    language: str
    active: bool

    @classmethod
    def from_row(cls, row: UserRow) -> Account:
        return cls(
            id=row.id,
            username=row.username,
            display_name=row.display_name or row.username,
            role=Role(row.role),
            scope=parse_scope(row.scope) if row.scope else None,
            residents=frozenset(row.residents or ()),
            language=row.language,
            active=row.active,
        )

    @property
    def scope_path(self) -> str | None:
        return "/".join(self.scope) if self.scope else None


def resident_ref(site_id: str, resident_id: str) -> str:
    """How an account names a resident: ids are unique only within a site."""
    return f"{site_id}/{resident_id}"


def split_resident_ref(ref: str) -> tuple[str, str] | None:
    """`(site_id, resident_id)` of a `site_id/resident_id` ref, None if malformed."""
    site_id, sep, resident_id = ref.partition("/")
    if not sep or not site_id or not is_identifier(resident_id):
        return None
    return site_id, resident_id


def parse_scope(path: str) -> tuple[str, ...]:
    parts = tuple(p.strip() for p in path.strip().strip("/").split("/"))
    if not parts or any(not p for p in parts):
        raise AccountError(f"scope must be a non-empty '/'-separated path, got {path!r}")
    return parts


def set_password_hasher(hasher: PasswordHasher) -> None:
    """Swap the argon2 parameters (tests use cheap ones; production keeps the defaults)."""
    global _HASHER, _DUMMY_HASH
    _HASHER = hasher
    _DUMMY_HASH = hasher.hash("not-a-real-password-only-for-timing")


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    return _HASHER.hash(password)


def password_matches(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _validate(role: Role, scope: str | None, residents: list[str]) -> None:
    if role in (Role.OPERATOR, Role.SUPERVISOR, Role.RESPONDER) and not scope:
        raise AccountError(f"a {role} needs --scope (an organisation path)")
    if role is Role.FAMILY:
        if scope:
            raise AccountError("a family account has residents, not a scope")
        if not residents:
            raise AccountError("a family account needs --residents")
    elif residents:
        raise AccountError("only family accounts are linked to residents")
    for ref in residents:
        if split_resident_ref(ref) is None:
            raise AccountError(
                f"not a resident: {ref!r} (name residents as site_id/resident_id: "
                "ids are unique only within a site)"
            )


async def create_user(
    sessions: Sessions,
    *,
    username: str,
    role: Role,
    password: str,
    now: float,
    scope: str | None = None,
    residents: list[str] | None = None,
    display_name: str = "",
    language: str = "zh-CN",
) -> Account:
    if not _USERNAME.match(username):
        raise AccountError(f"user name {username!r}: 2-64 letters, digits or _.@-")
    if language not in ("zh-CN", "en"):
        raise AccountError("language must be zh-CN or en")
    residents = residents or []
    _validate(role, scope, residents)
    row = UserRow(
        username=username,
        display_name=display_name,
        role=role.value,
        password_hash=await off_loop(hash_password, password),
        scope="/".join(parse_scope(scope)) if scope else None,
        residents=sorted(set(residents)),
        language=language,
        active=True,
        created_at=now,
    )
    async with sessions() as session:
        session.add(row)
        try:
            await session.commit()
        except IntegrityError as exc:
            raise AccountError(f"user {username!r} exists already") from exc
        return Account.from_row(row)


async def list_users(sessions: Sessions) -> list[Account]:
    async with sessions() as session:
        rows = (await session.scalars(select(UserRow).order_by(UserRow.username))).all()
        return [Account.from_row(r) for r in rows]


async def get_user(sessions: Sessions, user_id: int) -> Account | None:
    async with sessions() as session:
        row = await session.get(UserRow, user_id)
        return Account.from_row(row) if row is not None else None


async def authenticate(sessions: Sessions, username: str, password: str) -> Account | None:
    """The account if the password matches and the account is active, else None."""
    async with sessions() as session:
        row = await session.scalar(select(UserRow).where(UserRow.username == username))
        if row is None:
            # Spend the same effort as a real check, so timing does not reveal user names.
            await off_loop(password_matches, dummy_hash(), password)
            return None
        # Hashing runs off the event loop (gateway.password_work): it takes 0.15-0.3 s.
        if not row.active or not await off_loop(password_matches, row.password_hash, password):
            return None
        if _HASHER.check_needs_rehash(row.password_hash):
            row.password_hash = await off_loop(_HASHER.hash, password)
            await session.commit()
        return Account.from_row(row)


async def set_password(sessions: Sessions, username: str, password: str) -> Account | None:
    """Replace an account's password (same length rule as at creation); None if no such
    account. The caller revokes the account's tokens: a changed password ends sessions."""
    password_hash = await off_loop(hash_password, password)
    async with sessions() as session:
        row = await session.scalar(select(UserRow).where(UserRow.username == username))
        if row is None:
            return None
        row.password_hash = password_hash
        await session.commit()
        return Account.from_row(row)


async def set_active(sessions: Sessions, username: str, active: bool) -> bool:
    async with sessions() as session:
        row = await session.scalar(select(UserRow).where(UserRow.username == username))
        if row is None:
            return False
        row.active = active
        await session.commit()
        return True


async def count_admins(sessions: Sessions) -> int:
    async with sessions() as session:
        rows = (await session.scalars(select(UserRow.id).where(UserRow.role == "admin"))).all()
        return len(rows)


async def ensure_first_admin(sessions: Sessions, password: str | None, now: float) -> bool:
    """Create the `admin` account from ELDERCARE_ADMIN_PASSWORD if no admin exists yet.

    Returns True if an account was created. Without a password nothing is created:
    there is no default password to forget to change.
    """
    if not password or await count_admins(sessions) > 0:
        return False
    try:
        await create_user(
            sessions,
            username="admin",
            role=Role.ADMIN,
            password=password,
            now=now,
            display_name="Administrator",
        )
    except AccountError as exc:
        if "exists already" in str(exc):
            return False
        raise
    return True


# Made on first need, not at import: every `eldercare` command imports this module, and
# the hash costs as much as a login (~0.3 s of CPU at the default parameters).
_DUMMY_HASH: str | None = None


def dummy_hash() -> str:
    """A hash of no one's password with the current parameters, for checks against user
    names that do not exist; the gateway makes it when it builds its app, so the first
    such sign-in takes no longer than the others."""
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = _HASHER.hash("not-a-real-password-only-for-timing")
    return _DUMMY_HASH
