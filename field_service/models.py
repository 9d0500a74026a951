"""The field-service tables of the relational store.

Orders identify residents by (site, resident), as the site-scoped API does. Every
step is an order event: the audit trail and, by its increasing id, the change feed
the live pages follow. Notices (accept overdue, late, declined) are an outbox with
one row per (order, kind, attempt), so a restart never sends one twice.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Boolean, Float, Integer, String, UniqueConstraint
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from eldercare.db import Base


class ResponderRow(Base):
    __tablename__ = "field_responder"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(32))  # community_worker | grid_worker | ...
    area: Mapped[str] = mapped_column(String(512), index=True)  # organisation path
    phone: Mapped[str | None] = mapped_column(String(32), nullable=True)
    on_duty: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[float] = mapped_column(Float)
    # Apprise URLs a new order is sent to (an SMS provider's, WeCom, e-mail...). They can
    # hold secrets: never echoed by the API.
    notify: Mapped[list[str] | None] = mapped_column(JSON, nullable=True, default=list)


class WorkOrderRow(Base):
    __tablename__ = "field_work_order"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # dispatch (service requests later)
    site_id: Mapped[str] = mapped_column(String(64), index=True)
    resident_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    alert_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    alert_kind: Mapped[str | None] = mapped_column(String(32), nullable=True)
    responder: Mapped[str] = mapped_column(String(64), index=True)  # "" until dispatched
    request_kind: Mapped[str | None] = mapped_column(String(32), nullable=True)
    requested_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    request_note: Mapped[str | None] = mapped_column(String(500), nullable=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    attempt: Mapped[int] = mapped_column(Integer, default=1)  # +1 at each re-dispatch
    created_by: Mapped[str] = mapped_column(String(64))
    requested_at: Mapped[float] = mapped_column(Float)  # the need arose (alert raised)
    first_dispatched_at: Mapped[float] = mapped_column(Float)  # kept through re-dispatches
    dispatched_at: Mapped[float] = mapped_column(Float, index=True)
    accept_timeout_s: Mapped[float] = mapped_column(Float)  # the site's, kept for re-dispatch
    accept_due: Mapped[float] = mapped_column(Float)
    arrive_due: Mapped[float] = mapped_column(Float)
    accepted_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    on_the_way_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    arrived_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    closed_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    accept_overdue: Mapped[bool] = mapped_column(Boolean, default=False)
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    decline_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(32), nullable=True)
    note: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    updated_at: Mapped[float] = mapped_column(Float)


class OrderEventRow(Base):
    __tablename__ = "field_order_event"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(String(40), index=True)
    at: Mapped[float] = mapped_column(Float)
    event: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str | None] = mapped_column(String(64), nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class FieldNoticeRow(Base):
    __tablename__ = "field_notice"
    __table_args__ = (UniqueConstraint("order_id", "kind", "attempt"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(String(40), index=True)
    kind: Mapped[str] = mapped_column(String(32))  # accept_overdue | late | declined
    attempt: Mapped[int] = mapped_column(Integer)
    at: Mapped[float] = mapped_column(Float)
    text: Mapped[str] = mapped_column(String(500))
    delivered_at: Mapped[float | None] = mapped_column(Float, nullable=True, index=True)
    tries: Mapped[int] = mapped_column(Integer, default=0)


class VisitRow(Base):
    __tablename__ = "field_visit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    site_id: Mapped[str] = mapped_column(String(64), index=True)
    resident_id: Mapped[str] = mapped_column(String(64), index=True)
    responder: Mapped[str] = mapped_column(String(64), index=True)
    mode: Mapped[str] = mapped_column(String(16))  # in_person | phone | video
    outcome: Mapped[str] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    visited_at: Mapped[float] = mapped_column(Float, index=True)  # event time of the visit
    logged_at: Mapped[float] = mapped_column(Float)


class VisitCategoryRow(Base):
    __tablename__ = "field_visit_category"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    organisation: Mapped[str] = mapped_column(String(512), default="")  # "" = everywhere
    period: Mapped[str] = mapped_column(String(8))  # week | month
    flag: Mapped[str | None] = mapped_column(String(64), nullable=True)
    min_age: Mapped[int | None] = mapped_column(Integer, nullable=True)
    name_zh: Mapped[str] = mapped_column(String(128), default="")
    name_en: Mapped[str] = mapped_column(String(128), default="")
    updated_at: Mapped[float] = mapped_column(Float)


class DeviceTestRow(Base):
    __tablename__ = "field_device_test"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    site_id: Mapped[str] = mapped_column(String(64), index=True)
    device_id: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[float] = mapped_column(Float, index=True)  # event time of the test
    passed: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(16))  # responder | device (a test press)
    by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    note: Mapped[str | None] = mapped_column(String(500), nullable=True)


class ResponderMessageRow(Base):
    """Outbox: "a new order for you" to the assigned responder, one row per assignment
    (order, attempt), written with the dispatch itself; `done` holds the keys of the
    channels already sent to, so a retry or a restart sends each channel once."""

    __tablename__ = "field_responder_message"
    __table_args__ = (UniqueConstraint("order_id", "attempt"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(String(40), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    responder: Mapped[str] = mapped_column(String(64))
    at: Mapped[float] = mapped_column(Float)  # event time of the assignment
    done: Mapped[list[str]] = mapped_column(JSON, default=list)
    delivered_at: Mapped[float | None] = mapped_column(Float, nullable=True, index=True)
    tries: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(300), nullable=True)


class DeviceWatchRow(Base):
    """When the fault watch first saw a tested device: a device never tested is owed
    its first test one period after that, not the moment it is installed."""

    __tablename__ = "field_device_watch"

    site_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    first_seen: Mapped[float] = mapped_column(Float)


class DeviceFaultRow(Base):
    """One episode of a device's trouble (a test overdue, a fault unfixed past 2 h):
    raised once as a `device_fault` notice, cleared once when it ends. `raise_handed`
    and `clear_handed` say the alert pipeline has taken the transition."""

    __tablename__ = "field_device_fault"
    __table_args__ = (UniqueConstraint("site_id", "device_id", "reason", "since"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    site_id: Mapped[str] = mapped_column(String(64), index=True)
    device_id: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(32))  # test_overdue | fault_unfixed
    since: Mapped[float] = mapped_column(Float)  # event time the episode began (a due time)
    ended_at: Mapped[float | None] = mapped_column(Float, nullable=True, index=True)
    raise_handed: Mapped[bool] = mapped_column(Boolean, default=False)
    clear_handed: Mapped[bool] = mapped_column(Boolean, default=False)


async def init_field_store(engine: AsyncEngine) -> None:
    """Create the field-service tables if missing (tests and stores not yet migrated)."""
    tables = [Base.metadata.tables[n] for n in Base.metadata.tables if n.startswith("field_")]
    async with engine.begin() as conn:
        await conn.run_sync(lambda c: Base.metadata.create_all(c, tables=tables))
