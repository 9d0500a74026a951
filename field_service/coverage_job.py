"""Compute this month's visit coverage for every site and hand it to InfluxDB.

Run by the field timers every `every_s` (15 min by default): coverage changes only
when a visit is logged or a period ends, and the dashboard reads the last point.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from eldercare.registry_model import Site
from field_service.coverage import coverage
from field_service.coverage_points import coverage_lines
from field_service.visit_store import Sessions, list_visits, visit_categories

MONTH_ZONE = ZoneInfo("Asia/Shanghai")  # which month "this month" is; periods use each site's zone


class CoverageJob:
    name = "coverage"

    def __init__(
        self,
        sessions: Sessions,
        sites: Callable[[], Awaitable[Sequence[Site]]],
        write: Callable[[list[str]], Awaitable[None]],
        every_s: float = 900.0,
    ) -> None:
        self._sessions = sessions
        self._sites = sites
        self._write = write
        self.every_s = every_s

    async def run(self, now: float) -> int:
        """Write this month's coverage now; the number of points written."""
        month = datetime.fromtimestamp(now, MONTH_ZONE).strftime("%Y-%m")
        sites = list(await self._sites())
        visits = await list_visits(self._sessions, since=now - 45 * 86400)
        categories = await visit_categories(self._sessions)
        rows = coverage(sites, categories, [v.mark for v in visits], month, now)
        lines = coverage_lines(rows, now)
        if lines:
            await self._write(lines)
        return len(lines)
