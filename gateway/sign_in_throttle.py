"""Where the sign-in throttle keeps its failures: in this process (one gateway), or in
the shared store (gateways behind a load balancer: a guesser gets the same budget
whichever gateway answers).

Both give `gateway.login_guard`'s rule: per (account, client) and per client across
accounts, failures within the window; a success clears the account's failures for
that client (the per-client budget keeps them).
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import Boolean, Float, Integer, String, delete, select, update
from sqlalchemy.orm import Mapped, mapped_column

from eldercare.db import Base
from gateway.login_guard import MAX_CLIENT_FAILURES, MAX_FAILURES, WINDOW_S, LoginGuard
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
    username: Mapped[str] = mapped_column(String(128))  # lower-cased
    client: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[float] = mapped_column(Float, index=True)
    # A later success for this account from this client: no longer counts against the
    # account, still against the client.
    cleared: Mapped[bool] = mapped_column(Boolean, default=False)


class StoredSignInThrottle:
    """The throttle over the shared store: every gateway counts every failure."""

    def __init__(
        self,
        sessions: Sessions,
        max_failures: int = MAX_FAILURES,
        window_s: float = WINDOW_S,
        max_client_failures: int = MAX_CLIENT_FAILURES,
    ) -> None:
        self.sessions = sessions
        self.max_failures = max_failures
        self.window_s = window_s
        self.max_client_failures = max_client_failures

    async def retry_after(self, username: str, client: str, now: float) -> float | None:
        query = (
            select(SignInFailure.at, SignInFailure.username, SignInFailure.cleared)
            .where(SignInFailure.client == client, SignInFailure.at > now - self.window_s)
            .order_by(SignInFailure.at)
        )
        async with self.sessions() as session:
            rows = (await session.execute(query)).all()
        user = username.lower()
        own = [at for at, name, cleared in rows if name == user and not cleared]
        every = [at for at, _, _ in rows]
        waits = [
            times[-limit] + self.window_s - now
            for times, limit in ((own, self.max_failures), (every, self.max_client_failures))
            if len(times) >= limit
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
        async with self.sessions() as session, session.begin():
            await session.execute(
                update(SignInFailure)
                .where(
                    SignInFailure.username == username.lower(),
                    SignInFailure.client == client,
                )
                .values(cleared=True)
            )
