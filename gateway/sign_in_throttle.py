"""Where the sign-in throttle keeps its counts: in this process (one gateway, or the
single-process platform), or in the shared store (a cluster's gateways behind a load
balancer: a guesser gets the same budget whichever gateway answers).

Both give `gateway.login_guard`'s rule, one design in two places: failures within the
window per (account, client), per client across accounts and per account across
clients; a success clears the account's failures for that client (the per-client and
per-account budgets keep them) and makes the client known to the account, which the
per-account budget then no longer applies to (the operator's own desk keeps working
while her account is attacked from elsewhere). Passwords are checked off the event
loop either way (`gateway.password_work`).
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import Boolean, Float, Integer, String, delete, or_, select, update
from sqlalchemy.orm import Mapped, mapped_column

from eldercare.db import Base
from gateway.login_guard import (
    KNOWN_CLIENTS_PER_ACCOUNT,
    MAX_ACCOUNT_FAILURES,
    MAX_CLIENT_FAILURES,
    MAX_FAILURES,
    WINDOW_S,
    LoginGuard,
)
from gateway.users import Sessions


class SignInThrottle(Protocol):
    async def retry_after(self, username: str, client: str, now: float) -> float | None:
        """Seconds to wait before trying again, or None if a try is allowed now."""
        ...

    async def failed(self, username: str, client: str, now: float) -> None: ...

    async def succeeded(self, username: str, client: str, now: float) -> None: ...


class LocalSignInThrottle:
    """The throttle of one gateway process (the embedded default)."""

    def __init__(self, guard: LoginGuard | None = None) -> None:
        # Not `guard or ...`: a guard with no failures yet has len() 0.
        self.guard = guard if guard is not None else LoginGuard()

    async def retry_after(self, username: str, client: str, now: float) -> float | None:
        return self.guard.retry_after(username, client, now)

    async def failed(self, username: str, client: str, now: float) -> None:
        self.guard.failed(username, client, now)

    async def succeeded(self, username: str, client: str, now: float) -> None:
        self.guard.succeeded(username, client)


class SignInFailure(Base):
    """One failed sign-in, kept for the throttle's window."""

    __tablename__ = "sign_in_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(128), index=True)  # lower-cased
    client: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[float] = mapped_column(Float, index=True)
    # A later success for this account from this client: no longer counts against the
    # account, still against the client.
    cleared: Mapped[bool] = mapped_column(Boolean, default=False)


class SignInKnownClient(Base):
    """A client address that signed in to an account (the most recent few per account):
    the per-account budget does not apply to it."""

    __tablename__ = "sign_in_known_clients"

    username: Mapped[str] = mapped_column(String(128), primary_key=True)  # lower-cased
    client: Mapped[str] = mapped_column(String(64), primary_key=True)
    at: Mapped[float] = mapped_column(Float)


class StoredSignInThrottle:
    """The throttle over the shared store: every gateway counts every failure."""

    def __init__(
        self,
        sessions: Sessions,
        max_failures: int = MAX_FAILURES,
        window_s: float = WINDOW_S,
        max_client_failures: int = MAX_CLIENT_FAILURES,
        max_account_failures: int = MAX_ACCOUNT_FAILURES,
    ) -> None:
        self.sessions = sessions
        self.max_failures = max_failures
        self.window_s = window_s
        self.max_client_failures = max_client_failures
        self.max_account_failures = max_account_failures

    async def retry_after(self, username: str, client: str, now: float) -> float | None:
        user = username.lower()
        query = (
            select(
                SignInFailure.at, SignInFailure.username, SignInFailure.client,
                SignInFailure.cleared,
            )
            .where(
                or_(SignInFailure.client == client, SignInFailure.username == user),
                SignInFailure.at > now - self.window_s,
            )
            .order_by(SignInFailure.at)
        )  # fmt: skip
        async with self.sessions() as session:
            rows = (await session.execute(query)).all()
            known = await session.scalar(
                select(SignInKnownClient.at).where(
                    SignInKnownClient.username == user, SignInKnownClient.client == client
                )
            )
        own = [at for at, name, addr, cleared in rows
               if name == user and addr == client and not cleared]  # fmt: skip
        from_client = [at for at, _, addr, _ in rows if addr == client]
        checks = [(own, self.max_failures), (from_client, self.max_client_failures)]
        if known is None:
            checks.append(([at for at, name, _, _ in rows if name == user],
                           self.max_account_failures))  # fmt: skip
        waits = [
            times[-limit] + self.window_s - now for times, limit in checks if len(times) >= limit
        ]
        return max(waits) if waits else None

    async def failed(self, username: str, client: str, now: float) -> None:
        async with self.sessions() as session, session.begin():
            session.add(SignInFailure(username=username.lower(), client=client, at=now))
            # Old failures go as new ones come: the table holds one window at most.
            await session.execute(
                delete(SignInFailure).where(SignInFailure.at <= now - self.window_s)
            )

    async def succeeded(self, username: str, client: str, now: float) -> None:
        user = username.lower()
        async with self.sessions() as session, session.begin():
            await session.execute(
                update(SignInFailure)
                .where(SignInFailure.username == user, SignInFailure.client == client)
                .values(cleared=True)
            )
            await session.merge(SignInKnownClient(username=user, client=client, at=now))
            await session.flush()
            # The most recent few addresses per account, like the in-process guard.
            keep = (
                select(SignInKnownClient.client)
                .where(SignInKnownClient.username == user)
                .order_by(SignInKnownClient.at.desc())
                .limit(KNOWN_CLIENTS_PER_ACCOUNT)
            )
            kept = list((await session.execute(keep)).scalars())
            await session.execute(
                delete(SignInKnownClient).where(
                    SignInKnownClient.username == user, SignInKnownClient.client.not_in(kept)
                )
            )
