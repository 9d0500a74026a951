"""Visit coverage as InfluxDB points, for the Grafana Coverage dashboard.

One point per organisation unit (the full path: a community or an institution)
each time coverage is computed: measurement `visit_coverage`, tags `org` and
`month` (YYYY-MM), fields needed, visited, overdue, due. The dashboard takes the
last point of each unit in the time range and sums them under the chosen unit, so
the rate of a district is its communities' visits over their needs, not an average
of rates.
"""

from __future__ import annotations

from collections.abc import Sequence

from eldercare.influx import encode_line, ts_to_ns
from field_service.coverage import CoverageRow

MEASUREMENT = "visit_coverage"


def coverage_lines(rows: Sequence[CoverageRow], at: float) -> list[str]:
    """Line protocol for every unit row (the total row, unit "", is left to the queries)."""
    return [
        encode_line(
            MEASUREMENT,
            {"org": r.unit, "month": r.month},
            {"needed": r.needed, "visited": r.visited, "overdue": r.overdue, "due": r.due},
            ts_to_ns(at),
        )
        for r in rows
        if r.unit
    ]
