"""The sign-in throttle in the shared store: gateways behind one load balancer give a
guesser one budget between them, with the same rule as the in-process guard."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eldercare.db import create_engine, session_factory
from eldercare_app.wiring import prepare_store
from gateway.login_guard import LoginGuard
from gateway.sign_in_throttle import LocalSignInThrottle, StoredSignInThrottle

NOW = 1_780_000_000.0


async def test_two_gateways_share_one_budget_with_the_local_rule(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}")
    await prepare_store(engine)
    try:
        sessions = session_factory(engine)
        params: dict[str, Any] = {"max_failures": 3, "window_s": 60.0, "max_client_failures": 5}
        a, b = StoredSignInThrottle(sessions, **params), StoredSignInThrottle(sessions, **params)
        local = LocalSignInThrottle(LoginGuard(**params))  # the rule, in one process
        steps = [
            ("failed", "Op1", "10.0.0.1", 0.0),
            ("failed", "op1", "10.0.0.1", 1.0),
            ("failed", "op1", "10.0.0.1", 2.0),  # third: op1 from .1 waits
            ("failed", "op1", "10.0.0.2", 3.0),  # another client: its own budget
            ("succeeded", "op2", "10.0.0.1", 4.0),
            ("failed", "op2", "10.0.0.1", 5.0),
            ("failed", "op3", "10.0.0.1", 6.0),  # fifth from .1: every name waits
        ]
        for i, (what, user, client, t) in enumerate(steps):
            shared = a if i % 2 else b  # the load balancer alternates
            await getattr(shared, what)(user, client, NOW + t)
            await getattr(local, what)(user, client, NOW + t)
            for probe_user, probe_client in [("op1", "10.0.0.1"), ("op2", "10.0.0.1"),
                                             ("op1", "10.0.0.2"), ("op4", "10.0.0.3")]:  # fmt: skip
                at = NOW + t + 0.5
                expected = await local.retry_after(probe_user, probe_client, at)
                assert await a.retry_after(probe_user, probe_client, at) == expected, (
                    i,
                    probe_user,
                )
                assert await b.retry_after(probe_user, probe_client, at) == expected
        assert await a.retry_after("op1", "10.0.0.1", NOW + 3) is not None
        assert await a.retry_after("op9", "10.0.0.1", NOW + 7) is not None
        assert await a.retry_after("op1", "10.0.0.2", NOW + 7) is None
        # The window passes: everyone may try again, and the old rows are gone.
        later = NOW + 120
        assert await b.retry_after("op1", "10.0.0.1", later) is None
        await a.failed("op5", "10.0.0.9", later)
        assert await a.retry_after("op5", "10.0.0.9", later) is None
    finally:
        await engine.dispose()


async def test_the_per_account_budget_across_addresses_is_shared_too(tmp_path: Path) -> None:
    """A guesser rotating addresses meets the account's budget whichever gateway answers;
    an address that signed in to the account before is not held by it."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}")
    await prepare_store(engine)
    try:
        sessions = session_factory(engine)
        params: dict[str, Any] = {
            "max_failures": 3,
            "window_s": 60.0,
            "max_client_failures": 5,
            "max_account_failures": 4,
        }
        a, b = StoredSignInThrottle(sessions, **params), StoredSignInThrottle(sessions, **params)
        local = LocalSignInThrottle(LoginGuard(**params))
        steps = [("succeeded", "op7", "10.0.1.20", 0.0)] + [
            ("failed", "Op7", f"10.0.1.{11 + n}", 1.0 + n) for n in range(5)
        ]
        probes = [("op7", "10.0.1.20"), ("op7", "10.0.1.99"), ("op8", "10.0.1.99")]
        for i, (what, user, client, t) in enumerate(steps):
            shared = a if i % 2 else b
            await getattr(shared, what)(user, client, NOW + t)
            await getattr(local, what)(user, client, NOW + t)
            for probe_user, probe_client in probes:
                at = NOW + t + 0.5
                expected = await local.retry_after(probe_user, probe_client, at)
                assert await a.retry_after(probe_user, probe_client, at) == expected, (
                    i,
                    probe_user,
                )
                assert await b.retry_after(probe_user, probe_client, at) == expected
        # Four failures from four addresses: a fifth address waits, the known desk does not.
        assert await a.retry_after("op7", "10.0.1.99", NOW + 6) is not None
        assert await b.retry_after("op7", "10.0.1.20", NOW + 6) is None
        assert await a.retry_after("op8", "10.0.1.99", NOW + 6) is None
    finally:
        await engine.dispose()
