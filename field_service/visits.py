"""Visits (探访): who must be visited how often, and which visits each resident owes.

A visit category is data of an organisation: residents of sites under its
organisation path who carry its flag (and are at least `min_age`) are to be
visited every week or every month. Periods are calendar periods in the site's own
time zone: a visit at 23:30 local on the 31st counts for that month wherever the
server runs. A week belongs to the month holding its Thursday (the ISO rule), so
every week is counted in exactly one month.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from eldercare.registry_model import Resident, Site


class VisitPeriod(StrEnum):
    WEEK = "week"
    MONTH = "month"


class VisitMode(StrEnum):
    IN_PERSON = "in_person"  # 上门
    PHONE = "phone"  # 电话
    VIDEO = "video"  # 视频


class VisitOutcome(StrEnum):
    RESIDENT_FINE = "resident_fine"  # 老人无恙
    NEEDS_FOLLOW_UP = "needs_follow_up"  # 需跟进
    NOT_REACHED = "not_reached"  # 未见到本人: logged, but does not count as a visit


@dataclass(frozen=True, slots=True)
class VisitCategory:
    id: str
    organisation: tuple[str, ...]  # () = every organisation
    period: VisitPeriod
    flag: str | None = None
    min_age: int | None = None
    name_zh: str = ""
    name_en: str = ""

    def applies(self, site: Site, resident: Resident, year: int) -> bool:
        if site.org_path[: len(self.organisation)] != self.organisation:
            return False
        if self.flag is not None and self.flag not in resident.flags:
            return False
        if self.min_age is None:
            return True
        return resident.birth_year is not None and year - resident.birth_year >= self.min_age


# Used while an organisation has set none: the plans' two common categories.
DEFAULT_CATEGORIES: tuple[VisitCategory, ...] = (
    VisitCategory("special_hardship", (), VisitPeriod.MONTH, flag="special_hardship",
                  name_zh="特殊困难老人", name_en="Special hardship"),
    VisitCategory("alone_80", (), VisitPeriod.WEEK, flag="lives_alone", min_age=80,
                  name_zh="80岁以上独居老人", name_en="Living alone, 80+"),
)  # fmt: skip


def category_for(
    site: Site, resident: Resident, categories: Sequence[VisitCategory], year: int
) -> VisitCategory | None:
    """The most demanding category that applies (weekly before monthly), the most
    specific organisation first among equals."""
    applicable = [c for c in categories if c.applies(site, resident, year)]
    if not applicable:
        return None
    return min(applicable, key=lambda c: (c.period is not VisitPeriod.WEEK, -len(c.organisation)))


@dataclass(frozen=True, slots=True)
class Period:
    """A half-open span of local dates [start, end) and the same as instants."""

    start: date
    end: date
    start_ts: float
    end_ts: float


def _instant(day: date, zone: ZoneInfo) -> float:
    return datetime.combine(day, time(0), zone).timestamp()


def _period(start: date, end: date, zone: ZoneInfo) -> Period:
    return Period(start, end, _instant(start, zone), _instant(end, zone))


def month_start(year: int, month: int) -> date:
    return date(year, month, 1)


def next_month(day: date) -> date:
    return date(day.year + (day.month == 12), day.month % 12 + 1, 1)


def periods_in_month(period: VisitPeriod, year: int, month: int, timezone: str) -> list[Period]:
    zone = ZoneInfo(timezone)
    first = month_start(year, month)
    if period is VisitPeriod.MONTH:
        return [_period(first, next_month(first), zone)]
    out = []
    thursday = first + timedelta(days=(3 - first.weekday()) % 7)
    while thursday.month == month:
        monday = thursday - timedelta(days=3)
        out.append(_period(monday, monday + timedelta(days=7), zone))
        thursday += timedelta(days=7)
    return out


def period_at(period: VisitPeriod, ts: float, timezone: str) -> Period:
    """The period holding instant `ts` in the site's zone."""
    zone = ZoneInfo(timezone)
    day = datetime.fromtimestamp(ts, zone).date()
    if period is VisitPeriod.MONTH:
        first = day.replace(day=1)
        return _period(first, next_month(first), zone)
    monday = day - timedelta(days=day.weekday())
    return _period(monday, monday + timedelta(days=7), zone)


def previous_period(period: VisitPeriod, current: Period, timezone: str) -> Period:
    return period_at(period, current.start_ts - 1, timezone)


@dataclass(frozen=True, slots=True)
class VisitMark:
    """What coverage needs of a visit: whose, when, and whether it counts."""

    site_id: str
    resident_id: str
    at: float
    counts: bool = True


def visited_in(marks: Iterable[VisitMark], span: Period) -> bool:
    return any(m.counts and span.start_ts <= m.at < span.end_ts for m in marks)


class VisitStatus(StrEnum):
    VISITED = "visited"  # this period's visit is done
    DUE = "due"  # not yet this period
    OVERDUE = "overdue"  # the last period ended without a visit, and none since


@dataclass(frozen=True, slots=True)
class Owed:
    """A resident's visit obligation now: the category, this period, and where it stands."""

    site: Site
    resident: Resident
    category: VisitCategory
    period: Period
    status: VisitStatus
    last_visit_at: float | None


def owed_now(
    sites: Iterable[Site],
    categories: Sequence[VisitCategory],
    marks: Iterable[VisitMark],
    now: float,
) -> list[Owed]:
    """Every resident with a visit category, overdue first, then due by the soonest end."""
    by_resident: dict[tuple[str, str], list[VisitMark]] = {}
    for m in marks:
        if m.counts:
            by_resident.setdefault((m.site_id, m.resident_id), []).append(m)
    out = []
    for site in sites:
        year = datetime.fromtimestamp(now, ZoneInfo(site.timezone)).year
        for resident in site.residents:
            category = category_for(site, resident, categories, year)
            if category is None:
                continue
            own = by_resident.get((site.id, resident.id), [])
            last = max((m.at for m in own if m.at <= now), default=None)
            span = period_at(category.period, now, site.timezone)
            if visited_in(own, span):
                status = VisitStatus.VISITED
            elif (
                last is not None
                and last >= previous_period(category.period, span, site.timezone).start_ts
            ):
                status = VisitStatus.DUE
            else:
                status = VisitStatus.OVERDUE
            out.append(Owed(site, resident, category, span, status, last))
    rank = {VisitStatus.OVERDUE: 0, VisitStatus.DUE: 1, VisitStatus.VISITED: 2}
    return sorted(out, key=lambda o: (rank[o.status], o.period.end_ts, o.resident.name))
