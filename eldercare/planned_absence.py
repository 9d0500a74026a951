"""Declared absences: "Mum is at my place until Sunday 18:00", said by family or staff.

An outing rule (`not_returned`) alarms when a resident who left is not back by night
or after the absence limit; a declared absence moves those deadlines to its end (+ the
rule's margin) for an absence begun before that end, and is not learned from. It is
live state, not configuration: it lives in its own table (`planned_absence`, one row
per `(site, resident)`: resident ids are unique only within a site), survives
re-applying the registry YAML, bumps the registry version so
every process's watcher picks it up within its poll, and reaches the detectors through
`RegistryIndex.detector_site`, which lays it over the resident's overrides.

A declaration is bounded: its end must lie ahead, at most `MAX_DAYS` away, and is
given in the site's local time (what the family sees on the clock). Declarations
whose end is more than `KEEP_AFTER_S` past are pruned with every change.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import delete, insert
from sqlalchemy.ext.asyncio import AsyncSession

from eldercare.errors import EldercareError
from eldercare.registry_index import PlannedAbsence
from eldercare.registry_store import (
    PlannedAbsenceRow,
    Sessions,
    bump_version,
    lock_version,
)

MAX_DAYS = 31  # a longer stay away is a change of address, for the registry
KEEP_AFTER_S = 86400.0  # the rule's margin is an hour; a day later a declaration is history
MAX_NOTE = 200


class PlannedAbsenceError(EldercareError, ValueError):
    """A declaration that cannot be taken (past, too far ahead, malformed)."""


def until_epoch(until: str, timezone: str, now: float) -> float:
    """Epoch seconds of a site-local `YYYY-MM-DDTHH:MM`, checked to lie ahead of `now`
    and at most `MAX_DAYS` away. A wall time skipped by a daylight-saving change is
    read as the instant after the change (fold 0, normalised)."""
    try:
        local = datetime.strptime(until, "%Y-%m-%dT%H:%M")
    except ValueError:
        raise PlannedAbsenceError(f"until {until!r}: expected local YYYY-MM-DDTHH:MM") from None
    ts = local.replace(tzinfo=ZoneInfo(timezone)).timestamp()
    if ts <= now:
        raise PlannedAbsenceError(f"until {until}: already past in the site's time ({timezone})")
    if ts > now + MAX_DAYS * 86400:
        raise PlannedAbsenceError(f"until {until}: more than {MAX_DAYS} days ahead")
    return ts


async def _prune(session: AsyncSession, now: float) -> None:
    await session.execute(
        delete(PlannedAbsenceRow).where(PlannedAbsenceRow.until_ts < now - KEEP_AFTER_S)
    )


async def declare(
    sessions: Sessions,
    *,
    site_id: str,
    resident_id: str,
    timezone: str,
    until: str,
    note: str,
    declared_by: str,
    now: float,
) -> PlannedAbsence:
    """Set (or replace) the resident's declared absence; checked as `until_epoch` says."""
    until_ts = until_epoch(until, timezone, now)
    note = note.strip()[:MAX_NOTE]
    async with sessions() as session, session.begin():
        version = await lock_version(session)
        await _prune(session, now)
        await session.execute(
            delete(PlannedAbsenceRow).where(
                PlannedAbsenceRow.site_id == site_id, PlannedAbsenceRow.resident_id == resident_id
            )
        )
        await session.execute(
            insert(PlannedAbsenceRow).values(
                resident_id=resident_id,
                site_id=site_id,
                until=until,
                until_ts=until_ts,
                note=note,
                declared_by=declared_by,
                declared_at=now,
            )
        )
        await bump_version(session, version)
    return PlannedAbsence(
        resident_id=resident_id,
        site_id=site_id,
        until=until,
        until_ts=until_ts,
        note=note,
        declared_by=declared_by,
        declared_at=now,
    )


async def withdraw(sessions: Sessions, site_id: str, resident_id: str, now: float) -> bool:
    """Remove the resident's declared absence (back early, plans changed); False if none."""
    async with sessions() as session, session.begin():
        version = await lock_version(session)
        await _prune(session, now)
        result = await session.execute(
            delete(PlannedAbsenceRow).where(
                PlannedAbsenceRow.site_id == site_id, PlannedAbsenceRow.resident_id == resident_id
            )
        )
        removed = bool(result.rowcount)  # type: ignore[attr-defined]
        if removed:
            await bump_version(session, version)
    return removed
