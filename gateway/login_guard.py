"""Slows down password guessing: too many failed logins from one client for one
account within a window get 429 until the window has passed, even with the right
password (the account stays locked for that client for the window).

Keyed by (user name, client address), so a guesser elsewhere cannot lock an
operator out of her own console in the middle of a shift. A second, larger budget
per client address across all user names stops one client from spraying guesses
over many accounts. A third budget per account across all addresses stops a guesser
who rotates addresses; it does not apply to addresses that signed in to that account
successfully before (the operator's own desk keeps working while her account is
under attack from elsewhere). Pure and clocked from outside, so it is tested without
sleeping.
"""

from __future__ import annotations

from collections import deque

MAX_FAILURES = 10
MAX_CLIENT_FAILURES = 30  # across every user name, from one address
MAX_ACCOUNT_FAILURES = 50  # for one user name, across every address
_ANY_USER = "\0any"  # the per-client key's user part; no user name can equal it
_ANY_CLIENT = "\0any"  # the per-account key's client part
KNOWN_CLIENTS_PER_ACCOUNT = 16  # addresses remembered as having signed in
WINDOW_S = 15 * 60.0
MAX_TRACKED = 10_000  # keys kept before expired ones are swept (guessing random names)


class LoginGuard:
    def __init__(
        self,
        max_failures: int = MAX_FAILURES,
        window_s: float = WINDOW_S,
        max_client_failures: int = MAX_CLIENT_FAILURES,
        max_account_failures: int = MAX_ACCOUNT_FAILURES,
    ) -> None:
        self.max_failures = max_failures
        self.max_client_failures = max_client_failures
        self.max_account_failures = max_account_failures
        self.window_s = window_s
        self._failures: dict[tuple[str, str], deque[float]] = {}
        # user name -> addresses that signed in to it, most recent last (bounded).
        self._known: dict[str, list[str]] = {}
        # Past MAX_TRACKED keys, expired ones are swept when the keys have doubled since
        # the last sweep or a window has passed: a storm of fresh names (nothing expired)
        # then costs one scan per doubling, not one per failed sign-in.
        self._sweep_at = MAX_TRACKED
        self._swept_at = float("-inf")

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times

    def _wait(self, key: tuple[str, str], limit: int, now: float) -> float | None:
        times = self._recent(key, now)
        if not times:
            self._failures.pop(key, None)
        if len(times) < limit:
            return None
        return times[-limit] + self.window_s - now

    def retry_after(self, username: str, client: str, now: float) -> float | None:
        """Seconds to wait before trying again, or None if a try is allowed now."""
        user = username.lower()
        checks = [
            self._wait((user, client), self.max_failures, now),
            self._wait((_ANY_USER, client), self.max_client_failures, now),
        ]
        if client not in self._known.get(user, ()):
            checks.append(self._wait((user, _ANY_CLIENT), self.max_account_failures, now))
        waits = [w for w in checks if w is not None]
        return max(waits) if waits else None

    def failed(self, username: str, client: str, now: float) -> None:
        tracked = len(self._failures)
        if tracked >= MAX_TRACKED and (
            tracked >= self._sweep_at or now >= self._swept_at + self.window_s
        ):
            self._sweep(now)
        user = username.lower()
        self._recent((user, client), now).append(now)
        self._recent((_ANY_USER, client), now).append(now)
        self._recent((user, _ANY_CLIENT), now).append(now)

    def _sweep(self, now: float) -> None:
        for key in [k for k, times in self._failures.items() if times[-1] <= now - self.window_s]:
            del self._failures[key]
        self._swept_at = now
        self._sweep_at = max(MAX_TRACKED, 2 * len(self._failures))

    def __len__(self) -> int:
        """(account, client) pairs tracked; the per-client budgets are not counted."""
        return sum(1 for user, client in self._failures if _ANY_USER not in (user, client))

    def succeeded(self, username: str, client: str) -> None:
        user = username.lower()
        self._failures.pop((user, client), None)
        if len(self._known) >= MAX_TRACKED and user not in self._known:
            self._known.pop(next(iter(self._known)))  # the longest-known account
        known = self._known.setdefault(user, [])
        if client in known:
            known.remove(client)
        known.append(client)
        del known[:-KNOWN_CLIENTS_PER_ACCOUNT]
