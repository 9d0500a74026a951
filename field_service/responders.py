"""Responders: the people an operator can send to a door, and who to propose first.

A responder is a gateway account of role `responder` plus this record: kind,
service area (an organisation path: the community they serve, or an institution's
floor), phone and whether they are on duty now.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from eldercare.errors import EldercareError
from field_service.models import ResponderRow

Sessions = async_sessionmaker[AsyncSession]


class ResponderKind(StrEnum):
    COMMUNITY_WORKER = "community_worker"  # 社区工作者
    GRID_WORKER = "grid_worker"  # 网格员
    VOLUNTEER = "volunteer"  # 志愿者
    NURSE = "nurse"  # 护理员


@dataclass(frozen=True, slots=True)
class Responder:
    username: str
    name: str
    kind: ResponderKind
    area: tuple[str, ...]
    phone: str | None
    on_duty: bool
    active: bool
    notify: tuple[str, ...] = ()  # Apprise URLs for "a new order for you"

    @classmethod
    def from_row(cls, row: ResponderRow) -> Responder:
        return cls(
            username=row.username,
            name=row.name,
            kind=ResponderKind(row.kind),
            area=split_path(row.area),
            phone=row.phone,
            on_duty=row.on_duty,
            active=row.active,
            notify=tuple(row.notify or ()),
        )

    def covers(self, org_path: tuple[str, ...]) -> bool:
        """A responder covers a site when their area is a prefix of its organisation path."""
        return org_path[: len(self.area)] == self.area


class AreaError(EldercareError, ValueError):
    """An area that is not a '/'-separated organisation path."""


class ResponderNotFound(EldercareError, LookupError):
    """No responder of that user name."""


def split_path(path: str) -> tuple[str, ...]:
    parts = tuple(p.strip() for p in path.strip().strip("/").split("/"))
    if not parts or any(not p for p in parts):
        raise AreaError(f"an area is a non-empty '/'-separated path, got {path!r}")
    return parts


async def upsert_responder(
    sessions: Sessions,
    *,
    username: str,
    name: str,
    kind: ResponderKind,
    area: str,
    phone: str | None,
    on_duty: bool,
    now: float,
    notify: list[str] | None = None,
) -> Responder:
    """Create or change a responder; `notify` None keeps the channels they have."""
    area_path = "/".join(split_path(area))
    async with sessions() as session:
        row = await session.get(ResponderRow, username)
        if row is None:
            row = ResponderRow(username=username, active=True)
            session.add(row)
        row.name, row.kind, row.area, row.phone = name, kind.value, area_path, phone
        row.on_duty, row.updated_at = on_duty, now
        if notify is not None:
            row.notify = list(notify)
        elif row.notify is None:
            row.notify = []
        await session.commit()
        return Responder.from_row(row)


async def set_on_duty(sessions: Sessions, username: str, on_duty: bool, now: float) -> Responder:
    async with sessions() as session:
        row = await session.get(ResponderRow, username)
        if row is None:
            raise ResponderNotFound(f"no responder {username!r}")
        row.on_duty, row.updated_at = on_duty, now
        await session.commit()
        return Responder.from_row(row)


async def get_responder(sessions: Sessions, username: str) -> Responder | None:
    async with sessions() as session:
        row = await session.get(ResponderRow, username)
        return Responder.from_row(row) if row is not None else None


async def list_responders(sessions: Sessions) -> list[Responder]:
    async with sessions() as session:
        rows = (await session.scalars(select(ResponderRow).order_by(ResponderRow.name))).all()
    return [Responder.from_row(r) for r in rows]


def propose(responders: list[Responder], org_path: tuple[str, ...]) -> list[Responder]:
    """Active responders covering the site: on duty first, then the nearest area (the
    longest matching path: the community's own before the district's), then by name."""
    covering = [r for r in responders if r.active and r.covers(org_path)]
    return sorted(covering, key=lambda r: (not r.on_duty, -len(r.area), r.name))
