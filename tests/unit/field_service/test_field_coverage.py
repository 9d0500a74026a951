"""Visit coverage arithmetic: obligations per month in each site's own time zone, weeks
counted in the month of their Thursday, due versus overdue, rates per unit, and the
monthly CSV return."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from eldercare.registry_model import Site
from field_service.coverage import CoverageRow, coverage, parse_month, to_csv
from field_service.visits import (
    DEFAULT_CATEGORIES,
    VisitCategory,
    VisitMark,
    VisitPeriod,
    periods_in_month,
)

SHANGHAI = "Asia/Shanghai"
NEW_YORK = "America/New_York"
HUANGHE = "滨州市/滨城区/市中街道/黄河社区"


def _site(site_id: str, org: str, tz: str, residents: list[dict[str, object]]) -> Site:
    return Site.model_validate(
        {"id": site_id, "kind": "home", "name": site_id, "organisation": org,
         "timezone": tz, "residents": residents}
    )  # fmt: skip


HARDSHIP = _site(
    "hh-1", HUANGHE, SHANGHAI, [{"id": "r1", "name": "甲", "flags": ["special_hardship"]}]
)
ALONE = _site(
    "hh-2", HUANGHE, SHANGHAI,
    [{"id": "r2", "name": "乙", "birth_year": 1940, "flags": ["lives_alone"]},
     {"id": "r3", "name": "丙", "birth_year": 1940},
     {"id": "r4", "name": "丁", "birth_year": 1960, "flags": ["lives_alone"]}],
)  # fmt: skip
ABROAD = _site(
    "ny-1",
    "滨州市/沾化区/海外",
    NEW_YORK,
    [{"id": "n1", "name": "戊", "flags": ["special_hardship"]}],
)


def local(tz: str, year: int, month: int, day: int, hour: int, minute: int) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(tz)).timestamp()


def total(rows: list[CoverageRow]) -> CoverageRow:
    assert rows[-1].unit == ""
    return rows[-1]


AFTER_JANUARY = local(SHANGHAI, 2027, 2, 15, 12, 0)


def _monthly(site: Site, rid: str, at: float, month: str) -> CoverageRow:
    return total(
        coverage([site], DEFAULT_CATEGORIES, [VisitMark(site.id, rid, at)], month, AFTER_JANUARY)
    )


def test_a_visit_at_2330_local_on_the_31st_counts_for_that_month() -> None:
    at = local(SHANGHAI, 2026, 12, 31, 23, 30)  # 15:30 UTC the same day
    assert (
        _monthly(HARDSHIP, "r1", at, "2026-12").visited,
        _monthly(HARDSHIP, "r1", at, "2027-01").visited,
    ) == (1, 0)


def test_half_past_midnight_on_the_first_counts_for_the_new_month_though_utc_says_the_31st() -> (
    None
):
    at = local(SHANGHAI, 2027, 1, 1, 0, 30)  # 16:30 UTC on 31 December
    assert datetime.fromtimestamp(at, ZoneInfo("UTC")).day == 31
    assert (
        _monthly(HARDSHIP, "r1", at, "2026-12").visited,
        _monthly(HARDSHIP, "r1", at, "2027-01").visited,
    ) == (0, 1)


def test_a_site_west_of_utc_counts_its_own_evening() -> None:
    at = local(NEW_YORK, 2026, 12, 31, 23, 30)  # 04:30 UTC on 1 January
    assert datetime.fromtimestamp(at, ZoneInfo("UTC")).month == 1
    assert (
        _monthly(ABROAD, "n1", at, "2026-12").visited,
        _monthly(ABROAD, "n1", at, "2027-01").visited,
    ) == (1, 0)


def test_a_week_belongs_to_the_month_of_its_thursday() -> None:
    december = periods_in_month(VisitPeriod.WEEK, 2026, 12, SHANGHAI)
    january = periods_in_month(VisitPeriod.WEEK, 2027, 1, SHANGHAI)
    # 2026-12-31 is a Thursday: the week 28 Dec – 3 Jan is December's; January starts on the 4th.
    assert [p.start.day for p in december] == [30, 7, 14, 21, 28]
    assert december[0].start.month == 11
    assert [p.start.isoformat() for p in january][:1] == ["2027-01-04"]
    assert len(january) == 4
    assert december[-1].end == january[0].start


def test_weekly_obligations_due_and_overdue_mid_month() -> None:
    now = local(SHANGHAI, 2026, 12, 16, 9, 0)  # Wednesday of the third week
    marks = [
        VisitMark("hh-2", "r2", local(SHANGHAI, 2026, 12, 2, 10, 0)),  # week 1
        VisitMark("hh-2", "r2", local(SHANGHAI, 2026, 12, 15, 10, 0)),  # week 3
        VisitMark("hh-2", "r4", local(SHANGHAI, 2026, 12, 2, 10, 0)),  # not 80: not needed
        VisitMark("hh-1", "r1", local(SHANGHAI, 2026, 12, 9, 10, 0), counts=False),  # not reached
    ]
    rows = coverage([HARDSHIP, ALONE], DEFAULT_CATEGORIES, marks, "2026-12", now)
    # r2: 5 weeks (1 and 3 visited, 2 overdue, 4 and 5 still due); r1: the month, still due.
    assert rows == [CoverageRow(HUANGHE, "2026-12", 6, 2, 1), CoverageRow("", "2026-12", 6, 2, 1)]
    assert rows[0].due == 3
    assert rows[0].rate == pytest.approx(2 / 6)


def test_after_the_month_every_unvisited_obligation_is_overdue_and_units_roll_up() -> None:
    marks = [VisitMark("hh-1", "r1", local(SHANGHAI, 2026, 12, 5, 10, 0))]
    rows = coverage(
        [HARDSHIP, ALONE, ABROAD], DEFAULT_CATEGORIES, marks, "2026-12", AFTER_JANUARY, depth=2
    )
    assert rows == [
        CoverageRow("滨州市/沾化区", "2026-12", 1, 0, 1),
        CoverageRow("滨州市/滨城区", "2026-12", 6, 1, 5),
        CoverageRow("", "2026-12", 7, 1, 6),
    ]
    assert rows[0].rate == 0.0


def test_an_organisation_sets_its_own_categories() -> None:
    monthly_for_all_80 = VisitCategory(
        "over80", ("滨州市", "滨城区"), VisitPeriod.MONTH, min_age=80
    )
    rows = coverage([ALONE], [monthly_for_all_80], [], "2026-12", AFTER_JANUARY)
    assert total(rows).needed == 2  # r2 and r3 (born 1940); r4 is 66
    assert total(coverage([ALONE], [], [], "2026-12", AFTER_JANUARY)).rate is None


def test_the_monthly_csv_return() -> None:
    marks = [VisitMark("hh-1", "r1", local(SHANGHAI, 2026, 12, 5, 10, 0))]
    text = to_csv(coverage([HARDSHIP], DEFAULT_CATEGORIES, marks, "2026-12", AFTER_JANUARY))
    assert text.startswith("\ufeff")
    lines = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert lines == [
        ["month", "organisation", "needed", "visited", "overdue", "still_due", "rate_percent"],
        ["2026-12", HUANGHE, "1", "1", "0", "0", "100.0"],
        ["2026-12", "合计 total", "1", "1", "0", "0", "100.0"],
    ]


@pytest.mark.parametrize("bad", ["2026-13", "2026", "26-1x", ""])
def test_a_bad_month_is_a_clear_error(bad: str) -> None:
    with pytest.raises(ValueError, match="YYYY-MM"):
        parse_month(bad)
