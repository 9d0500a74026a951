"""Device tests (JGJ/T 484-2019): every emergency button and fall device is tested on a
schedule (weekly by default), and a fault found must be fixed within 2 hours.

A test is recorded by a responder on site (passed or failed, with a note) or by the
device itself (a test press, source `device`). A failed test opens a fault; the next
passed test closes it. `device_test_status` lists, per device, the last test, when the
next is due, whether it is overdue, and a fault open past the 2 hours.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select

from eldercare.domain import DeviceKind
from eldercare.registry_model import Site
from field_service.models import DeviceTestRow
from field_service.visit_store import Sessions

TESTED_KINDS: frozenset[DeviceKind] = frozenset(
    {DeviceKind.SOS_BUTTON, DeviceKind.FALL_RADAR, DeviceKind.WEARABLE}
)
TEST_PERIOD_S = 7 * 86400.0
FAULT_FIX_S = 2 * 3600.0


@dataclass(frozen=True, slots=True)
class DeviceTest:
    id: int
    site_id: str
    device_id: str
    at: float
    passed: bool
    source: str
    by: str | None
    note: str | None


@dataclass(frozen=True, slots=True)
class DeviceTestStatus:
    site: Site
    device_id: str
    kind: DeviceKind
    last_test_at: float | None
    next_due: float  # never tested: due since it was listed, i.e. now
    overdue: bool
    fault_since: float | None  # a failed test not yet followed by a passed one
    fault_overdue: bool  # open longer than FAULT_FIX_S
    last_test_source: str | None = None  # responder | device (its own test press)


def device_test_status(
    sites: Iterable[Site], tests: Iterable[DeviceTest], now: float, period_s: float = TEST_PERIOD_S
) -> list[DeviceTestStatus]:
    """Faults past their 2 hours first, then overdue tests, then by next due."""
    by_device: dict[tuple[str, str], list[DeviceTest]] = {}
    for t in tests:
        by_device.setdefault((t.site_id, t.device_id), []).append(t)
    out = []
    for site in sites:
        for device in site.devices:
            if device.kind not in TESTED_KINDS:
                continue
            own = sorted(by_device.get((site.id, device.id), []), key=lambda t: t.at)
            passed = [t for t in own if t.passed]
            last = passed[-1].at if passed else None
            next_due = last + period_s if last is not None else now
            fault_since = None
            for t in own:  # the earliest failure since the last pass
                if t.passed:
                    fault_since = None
                elif fault_since is None:
                    fault_since = t.at
            out.append(
                DeviceTestStatus(
                    site,
                    device.id,
                    device.kind,
                    last,
                    next_due,
                    next_due <= now,
                    fault_since,
                    fault_since is not None and now - fault_since >= FAULT_FIX_S,
                    passed[-1].source if passed else None,
                )
            )
    return sorted(out, key=lambda s: (not s.fault_overdue, not s.overdue, s.next_due, s.device_id))


async def record_test(
    sessions: Sessions,
    *,
    site_id: str,
    device_id: str,
    at: float,
    passed: bool,
    source: str,
    by: str | None,
    note: str | None,
) -> DeviceTest:
    row = DeviceTestRow(
        site_id=site_id, device_id=device_id, at=at, passed=passed, source=source, by=by,
        note=(note or "").strip()[:500] or None,
    )  # fmt: skip
    async with sessions() as session:
        session.add(row)
        await session.commit()
        return DeviceTest(row.id, site_id, device_id, at, passed, source, by, row.note)


async def list_tests(
    sessions: Sessions, site_ids: Sequence[str] | None = None, since: float | None = None
) -> list[DeviceTest]:
    stmt = select(DeviceTestRow).order_by(DeviceTestRow.at)
    if site_ids is not None:
        stmt = stmt.where(DeviceTestRow.site_id.in_(list(site_ids)))
    if since is not None:
        stmt = stmt.where(DeviceTestRow.at >= since)
    async with sessions() as session:
        rows = (await session.scalars(stmt)).all()
    return [
        DeviceTest(r.id, r.site_id, r.device_id, r.at, r.passed, r.source, r.by, r.note)
        for r in rows
    ]


async def schedule_tests(sessions: Sessions, site_ids: Sequence[str]) -> list[DeviceTest]:
    """What `device_test_status` needs, without every test ever done: each device's last
    passed test and its failed tests (rare). The status it gives is the same as from
    `list_tests`, at a cost that does not grow with the weeks."""
    ids = list(site_ids)
    last = (
        select(DeviceTestRow.site_id, DeviceTestRow.device_id, func.max(DeviceTestRow.at))
        .where(DeviceTestRow.passed.is_(True), DeviceTestRow.site_id.in_(ids))
        .group_by(DeviceTestRow.site_id, DeviceTestRow.device_id)
    )
    failed = select(DeviceTestRow).where(
        DeviceTestRow.passed.is_(False), DeviceTestRow.site_id.in_(ids)
    )
    async with sessions() as session:
        passes = (await session.execute(last)).all()
        failures = (await session.scalars(failed)).all()
    out = [DeviceTest(0, site, device, at, True, "", None, None) for site, device, at in passes]
    out += [
        DeviceTest(r.id, r.site_id, r.device_id, r.at, r.passed, r.source, r.by, r.note)
        for r in failures
    ]
    return out
