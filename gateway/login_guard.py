"""Slows down password guessing: too many failed logins from one client for one
account within a window get 429 until the window has passed.

Keyed by (user name, client address), so a guesser elsewhere cannot lock an
operator out of her own console in the middle of a shift. Pure and clocked from
outside, so it is tested without sleeping.
"""

from __future__ import annotations

from collections import deque

MAX_FAILURES = 10
WINDOW_S = 15 * 60.0


class LoginGuard:
    def __init__(self, max_failures: int = MAX_FAILURES, window_s: float = WINDOW_S) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._failures: dict[tuple[str, str], deque[float]] = {}

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times

    def retry_after(self, username: str, client: str, now: float) -> float | None:
        """Seconds to wait before trying again, or None if a try is allowed now."""
        key = (username.lower(), client)
        times = self._recent(key, now)
        if not times:
            self._failures.pop(key, None)
        if len(times) < self.max_failures:
            return None
        return times[0] + self.window_s - now

    def failed(self, username: str, client: str, now: float) -> None:
        self._recent((username.lower(), client), now).append(now)

    def succeeded(self, username: str, client: str) -> None:
        self._failures.pop((username.lower(), client), None)
