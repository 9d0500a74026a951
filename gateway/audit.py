"""The audit trail of reads of personal data (who looked at whom, when, from where).

Resident details, readings and contacts are personal data; every read of them by
any account is recorded, so a data-protection officer can answer "who saw this".
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Float, Integer, String, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from eldercare.db import Base


class AuditRow(Base):
    __tablename__ = "gateway_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[float] = mapped_column(Float, index=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    role: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64))  # e.g. read_resident, read_readings
    site_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    resident_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    path: Mapped[str] = mapped_column(String(512), default="")
    client: Mapped[str] = mapped_column(String(64), default="")


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: float
    username: str
    role: str
    action: str
    site_id: str | None
    resident_id: str | None
    path: str
    client: str


async def record_read(
    sessions: async_sessionmaker[AsyncSession],
    *,
    at: float,
    username: str,
    role: str,
    action: str,
    site_id: str | None,
    resident_ids: list[str | None],
    path: str,
    client: str,
) -> None:
    """One row per resident whose data was read (a site's contact list names several)."""
    async with sessions() as session:
        for rid in resident_ids or [None]:
            session.add(
                AuditRow(
                    at=at,
                    username=username,
                    role=role,
                    action=action,
                    site_id=site_id,
                    resident_id=rid,
                    path=path[:512],
                    client=client[:64],
                )
            )
        await session.commit()


async def list_audit(
    sessions: async_sessionmaker[AsyncSession],
    *,
    resident_id: str | None = None,
    username: str | None = None,
    limit: int = 200,
) -> list[AuditEntry]:
    stmt = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
    if resident_id is not None:
        stmt = stmt.where(AuditRow.resident_id == resident_id)
    if username is not None:
        stmt = stmt.where(AuditRow.username == username)
    async with sessions() as session:
        rows = (await session.scalars(stmt)).all()
    return [
        AuditEntry(r.at, r.username, r.role, r.action, r.site_id, r.resident_id, r.path, r.client)
        for r in rows
    ]
