"""Coverage: per organisation unit and month, residents' visits needed, done and overdue.

An obligation is one (resident, period) of the resident's visit category falling in
the month (see field_service.visits). It is visited when a counting visit lies in
the period, overdue when the period ended without one, and otherwise still due.
The rate is visited / needed (None when nothing was needed).
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from eldercare.errors import EldercareError
from eldercare.registry_model import Site
from field_service.visits import (
    VisitCategory,
    VisitMark,
    category_for,
    periods_in_month,
    visited_in,
)


@dataclass(frozen=True, slots=True)
class CoverageRow:
    unit: str  # organisation path, or "" for the total
    month: str  # YYYY-MM
    needed: int
    visited: int
    overdue: int

    @property
    def due(self) -> int:
        return self.needed - self.visited - self.overdue

    @property
    def rate(self) -> float | None:
        return self.visited / self.needed if self.needed else None


class MonthError(EldercareError, ValueError):
    """A month that is not YYYY-MM."""


def parse_month(text: str) -> tuple[int, int]:
    try:
        year, month = (int(x) for x in text.split("-"))
    except ValueError:
        raise MonthError(f"a month is YYYY-MM, got {text!r}") from None
    if not 1 <= month <= 12 or not 1900 <= year <= 9999:
        raise MonthError(f"a month is YYYY-MM, got {text!r}")
    return year, month


def unit_of(site: Site, depth: int | None) -> str:
    path = site.org_path if depth is None else site.org_path[:depth]
    return "/".join(path)


def coverage(
    sites: Iterable[Site],
    categories: Sequence[VisitCategory],
    marks: Iterable[VisitMark],
    month: str,
    now: float,
    depth: int | None = None,
) -> list[CoverageRow]:
    """Rows per unit (the organisation path cut at `depth`, full when None), sorted,
    then the total over them last (unit "")."""
    year, mon = parse_month(month)
    by_resident: dict[tuple[str, str], list[VisitMark]] = defaultdict(list)
    for m in marks:
        by_resident[(m.site_id, m.resident_id)].append(m)
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for site in sites:
        for resident in site.residents:
            category = category_for(site, resident, categories, year)
            if category is None:
                continue
            unit = counts[unit_of(site, depth)]
            own = by_resident.get((site.id, resident.id), [])
            for span in periods_in_month(category.period, year, mon, site.timezone):
                unit[0] += 1
                if visited_in(own, span):
                    unit[1] += 1
                elif span.end_ts <= now:
                    unit[2] += 1
    rows = [CoverageRow(u, month, *c) for u, c in sorted(counts.items())]
    total = CoverageRow("", month, *(sum(r[i] for r in counts.values()) for i in range(3)))
    return [*rows, total]


CSV_HEADER = (
    "month", "organisation", "needed", "visited", "overdue", "still_due", "rate_percent",
)  # fmt: skip


def to_csv(rows: Sequence[CoverageRow]) -> str:
    """The monthly return a civil-affairs bureau files: one line per unit, then the total
    (organisation column 合计/total). UTF-8 with BOM so spreadsheet programs read Chinese."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for r in rows:
        rate = "" if r.rate is None else f"{100 * r.rate:.1f}"
        unit = r.unit or "合计 total"
        writer.writerow((r.month, unit, r.needed, r.visited, r.overdue, r.due, rate))
    return out.getvalue()
