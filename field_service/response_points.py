"""Field response figures as InfluxDB points, for the Operations dashboard.

Every few minutes, per organisation unit (the site's full path), over the orders of
the last 24 hours: measurement `field_response`, tag `org`, fields orders, open,
overdue, judged (arrived, or past the promise), within_promise, and the arrival time
p50/p95 when any arrived. The dashboard sums the units' last points.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence

from eldercare.influx import encode_line, ts_to_ns
from eldercare.registry_model import Site
from field_service.figures import field_figures
from field_service.orders import OrderStore, WorkOrder

MEASUREMENT = "field_response"
WINDOW_S = 86400.0


def response_lines(orders: Sequence[WorkOrder], org_of: Mapping[str, str], now: float) -> list[str]:
    by_org: dict[str, list[WorkOrder]] = defaultdict(list)
    for o in orders:
        org = org_of.get(o.site_id)
        if org is not None:
            by_org[org].append(o)
    lines = []
    for org, group in sorted(by_org.items()):
        f = field_figures(group, now)
        judged = sum(
            1
            for o in group
            if o.state.value != "cancelled" and (o.arrived_at is not None or o.arrive_due <= now)
        )
        fields: dict[str, int | float] = {
            "orders": f["orders"], "open": f["open"], "overdue": f["overdue"],
            "judged": judged, "within_promise": f["within_promise"],
        }  # fmt: skip
        for name in ("p50_s", "p95_s"):
            value = f["to_arrive"][name]
            if value is not None:
                fields[f"arrive_{name}"] = float(value)
        lines.append(encode_line(MEASUREMENT, {"org": org}, fields, ts_to_ns(now)))
    return lines


class ResponseJob:
    name = "response"

    def __init__(
        self,
        store: OrderStore,
        sites: Callable[[], Awaitable[Sequence[Site]]],
        write: Callable[[list[str]], Awaitable[None]],
        every_s: float = 300.0,
    ) -> None:
        self._store = store
        self._sites = sites
        self._write = write
        self.every_s = every_s

    async def run(self, now: float) -> int:
        org_of = {s.id: s.organisation for s in await self._sites()}
        orders = await self._store.list_orders(since=now - WINDOW_S, limit=1_000_000)
        lines = response_lines(orders, org_of, now)
        if lines:
            await self._write(lines)
        return len(lines)
