"""Repeated log lines, at most one per key per interval, with how many were held back.

A failure that recurs every few seconds (a flush the store refuses) or a notice per
flooded message would otherwise grow the log by hundreds of kB a second.
"""

from __future__ import annotations

LOG_EVERY_S = 60.0


class LogLimiter:
    def __init__(self, every_s: float = LOG_EVERY_S) -> None:
        self.every_s = every_s
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def allow(self, key: str, now: float) -> int | None:
        """None: hold this line back (it is counted). Otherwise log it, saying how many
        were held back since the last one logged."""
        last = self._last.get(key)
        if last is not None and now - last < self.every_s:
            self._held[key] = self._held.get(key, 0) + 1
            return None
        self._last[key] = now
        return self._held.pop(key, 0)
