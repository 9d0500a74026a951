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
MAX_TRACKED = 10_000  # keys kept before expired ones are swept (guessing random names)


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
        if len(self._failures) >= MAX_TRACKED:
            self._sweep(now)
        self._recent((username.lower(), client), now).append(now)

    def _sweep(self, now: float) -> None:
        for key in [k for k, times in self._failures.items() if times[-1] <= now - self.window_s]:
            del self._failures[key]

    def __len__(self) -> int:
        return len(self._failures)

    def succeeded(self, username: str, client: str) -> None:
        self._failures.pop((username.lower(), client), None)
