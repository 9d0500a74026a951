"""The work-order store: dispatch, the responder's steps, and the deadline timers.

Every change writes the order and its event in one transaction; the timers
(`advance(now)`) write the flag, the event stamped with the deadline's own time,
and a notice row under a unique key, so replaying, restarting or two processes
advancing at once can never raise a deadline twice.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alerts.terms import Outcome
from eldercare.errors import EldercareError
from eldercare.logs import get_logger
from eldercare.registry_model import Site
from field_service.lifecycle import (
    NOT_ARRIVED,
    OPEN_STATES,
    OrderState,
    Step,
    StepRefused,
    next_state,
)
from field_service.models import (
    FieldNoticeRow,
    OrderEventRow,
    ResponderMessageRow,
    WorkOrderRow,
)
from field_service.policy import FieldPolicy
from field_service.requests import (
    DISPATCH_TIMEOUT_S,
    REQUEST_DEADLINE_S,
    REQUEST_ORDER_KIND,
    RequestKind,
)

log = get_logger(__name__)
Sessions = async_sessionmaker[AsyncSession]

# Outcomes a responder may close an order with (the pipeline's auto_cleared is not one).
ORDER_OUTCOMES: frozenset[str] = frozenset(
    o.value for o in Outcome if o is not Outcome.AUTO_CLEARED
)


class OrderNotFound(EldercareError, LookupError):
    pass


# Orders waiting on someone: a responder to accept, or the operator to dispatch a request.
_WAITING = (OrderState.DISPATCHED.value, OrderState.REQUESTED.value)


class NoticeKind:
    ACCEPT_OVERDUE = "accept_overdue"
    LATE = "late"
    DECLINED = "declined"


@dataclass(frozen=True, slots=True)
class WorkOrder:
    id: str
    kind: str
    site_id: str
    resident_id: str | None
    alert_id: str | None
    alert_kind: str | None
    responder: str
    state: OrderState
    attempt: int
    created_by: str
    requested_at: float
    first_dispatched_at: float
    dispatched_at: float
    accept_due: float
    arrive_due: float
    accepted_at: float | None
    on_the_way_at: float | None
    arrived_at: float | None
    closed_at: float | None
    accept_overdue: bool
    late: bool
    decline_reason: str | None
    outcome: str | None
    note: str | None
    request_kind: str | None = None
    requested_by: str | None = None
    request_note: str | None = None

    @classmethod
    def from_row(cls, r: WorkOrderRow) -> WorkOrder:
        return cls(
            r.id, r.kind, r.site_id, r.resident_id, r.alert_id, r.alert_kind, r.responder,
            OrderState(r.state), r.attempt, r.created_by, r.requested_at, r.first_dispatched_at,
            r.dispatched_at,
            r.accept_due, r.arrive_due, r.accepted_at, r.on_the_way_at, r.arrived_at,
            r.closed_at, r.accept_overdue, r.late, r.decline_reason, r.outcome, r.note,
            r.request_kind, r.requested_by, r.request_note,
        )  # fmt: skip

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES


@dataclass(frozen=True, slots=True)
class OrderEvent:
    seq: int
    order_id: str
    at: float
    event: str
    actor: str | None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Notice:
    id: int
    order_id: str
    kind: str
    attempt: int
    at: float
    text: str


@dataclass(frozen=True, slots=True)
class OrderChange:
    seq: int
    event: str
    order: WorkOrder


def _message_for(row: WorkOrderRow, at: float) -> ResponderMessageRow:
    """The outbox row telling the newly assigned responder, in the dispatch's own
    transaction: no dispatch without its message, and one message per assignment."""
    return ResponderMessageRow(
        order_id=row.id, attempt=row.attempt, responder=row.responder, at=at, done=[], tries=0
    )


def _new_id() -> str:
    return "wo-" + secrets.token_hex(8)


class OrderStore:
    def __init__(self, sessions: Sessions, policy: FieldPolicy | None = None) -> None:
        self._sessions = sessions
        self.policy = policy or FieldPolicy()

    # --- people's steps ------------------------------------------------------------------

    async def dispatch(
        self,
        *,
        site: Site,
        resident_id: str | None,
        alert_id: str | None,
        requested_at: float,
        responder: str,
        actor: str,
        at: float,
        kind: str = "dispatch",
        alert_kind: str | None = None,
    ) -> WorkOrder:
        """Open an order sending `responder` to `site`. The arrival promise runs from
        `requested_at` (when the need arose), the accept timeout from now."""
        if resident_id is not None and site.resident(resident_id) is None:
            raise OrderNotFound(f"no resident {resident_id!r} at site {site.id!r}")
        accept_timeout = self.policy.accept_timeout(site.org_path)
        row = WorkOrderRow(
            id=_new_id(),
            kind=kind,
            site_id=site.id,
            resident_id=resident_id,
            alert_id=alert_id,
            alert_kind=alert_kind,
            responder=responder,
            state=OrderState.DISPATCHED.value,
            attempt=1,
            created_by=actor,
            requested_at=requested_at,
            first_dispatched_at=at,
            dispatched_at=at,
            accept_timeout_s=accept_timeout,
            accept_due=at + accept_timeout,
            arrive_due=requested_at + self.policy.arrival_promise(site.kind, site.org_path),
            accept_overdue=False,
            late=False,
            updated_at=at,
        )
        async with self._sessions() as session:
            session.add(row)
            session.add(
                OrderEventRow(
                    order_id=row.id, at=at, event="dispatched", actor=actor,
                    details={"responder": responder},
                )
            )  # fmt: skip
            session.add(_message_for(row, at))
            await session.commit()
            return WorkOrder.from_row(row)

    async def open_request(
        self,
        *,
        site: Site,
        resident_id: str | None,
        kind: RequestKind,
        note: str | None,
        requested_by: str,
        at: float,
    ) -> WorkOrder:
        """A service request: waiting for the operator to send someone (within the
        dispatch timeout), to be done at the door within the kind's deadline."""
        if resident_id is not None and site.resident(resident_id) is None:
            raise OrderNotFound(f"no resident {resident_id!r} at site {site.id!r}")
        row = WorkOrderRow(
            id=_new_id(), kind=REQUEST_ORDER_KIND, site_id=site.id, resident_id=resident_id,
            alert_id=None, alert_kind=None, responder="", request_kind=kind.value,
            requested_by=requested_by, request_note=(note or "").strip()[:500] or None,
            state=OrderState.REQUESTED.value, attempt=1, created_by=requested_by,
            requested_at=at, first_dispatched_at=at, dispatched_at=at,
            accept_timeout_s=self.policy.accept_timeout(site.org_path),
            accept_due=at + DISPATCH_TIMEOUT_S, arrive_due=at + REQUEST_DEADLINE_S[kind],
            accept_overdue=False, late=False, updated_at=at,
        )  # fmt: skip
        async with self._sessions() as session:
            session.add(row)
            session.add(
                OrderEventRow(
                    order_id=row.id, at=at, event="requested", actor=requested_by,
                    details={"kind": kind.value},
                )
            )  # fmt: skip
            await session.commit()
            return WorkOrder.from_row(row)

    async def step(
        self,
        order_id: str,
        step: Step,
        *,
        actor: str,
        at: float,
        reason: str | None = None,
        outcome: str | None = None,
        note: str | None = None,
        responder: str | None = None,
    ) -> WorkOrder:
        """Take one step; `StepRefused` when the state does not allow it or a required
        part (decline reason, outcome, new responder) is missing."""
        details: dict[str, Any] = {}
        async with self._sessions() as session:
            row = await session.get(WorkOrderRow, order_id, with_for_update=True)
            if row is None:
                raise OrderNotFound(order_id)
            new_state = next_state(OrderState(row.state), step)
            if step is Step.ACCEPT:
                row.accepted_at = at
            elif step is Step.DECLINE:
                if not reason or not reason.strip():
                    raise StepRefused("a decline needs a reason")
                row.decline_reason = details["reason"] = reason.strip()[:500]
                session.add(
                    FieldNoticeRow(
                        order_id=row.id, kind=NoticeKind.DECLINED, attempt=row.attempt, at=at,
                        text=f"{row.responder} declined: {row.decline_reason}",
                    )
                )  # fmt: skip
            elif step is Step.ON_THE_WAY:
                row.on_the_way_at = at
            elif step is Step.ARRIVE:
                row.arrived_at = at
                details["within_promise"] = at <= row.arrive_due
            elif step is Step.DONE:
                if outcome not in ORDER_OUTCOMES:
                    raise StepRefused(f"outcome must be one of {sorted(ORDER_OUTCOMES)}")
                row.outcome = details["outcome"] = outcome
                row.note = (note or "").strip()[:2000] or None
                row.closed_at = at
            elif step is Step.REDISPATCH:
                if not responder:
                    raise StepRefused("a re-dispatch names the responder")
                details["from"], details["responder"] = row.responder, responder
                if row.state == OrderState.REQUESTED.value:
                    row.first_dispatched_at = at  # the request's first dispatch
                else:
                    row.attempt += 1
                row.responder = responder
                row.dispatched_at = at
                session.add(_message_for(row, at))
                row.accept_due = at + row.accept_timeout_s
                row.accept_overdue = False
                row.accepted_at = None
                row.decline_reason = None
            elif step is Step.CANCEL:
                row.closed_at = at
                row.note = (note or "").strip()[:2000] or None
            if note and step is not Step.DONE and step is not Step.CANCEL:
                details["note"] = note.strip()[:500]
            row.state = new_state.value
            row.updated_at = at
            session.add(
                OrderEventRow(
                    order_id=row.id, at=at, event=step.value, actor=actor, details=details
                )
            )
            await session.commit()
            return WorkOrder.from_row(row)

    # --- deadlines -----------------------------------------------------------------------

    async def advance(self, now: float) -> list[Notice]:
        """Fire every deadline due by `now`: an order not accepted in time goes back to
        the operator, one not arrived within the promise is flagged late. Each fires once,
        stamped with its due time."""
        fired: list[Notice] = []
        async with self._sessions() as session:
            rows = (
                await session.scalars(
                    select(WorkOrderRow).where(
                        or_(
                            and_(
                                WorkOrderRow.state.in_(_WAITING),
                                WorkOrderRow.accept_overdue.is_(False),
                                WorkOrderRow.accept_due <= now,
                            ),
                            and_(
                                WorkOrderRow.state.in_([s.value for s in NOT_ARRIVED]),
                                WorkOrderRow.late.is_(False),
                                WorkOrderRow.arrive_due <= now,
                            ),
                        )
                    )
                )
            ).all()
            for row in rows:
                if row.state in _WAITING and not row.accept_overdue and row.accept_due <= now:
                    row.accept_overdue = True
                    text = (
                        f"{row.responder} has not accepted within the accept time"
                        if row.responder
                        else "service request not dispatched in time"
                    )
                    fired.append(
                        self._fire(session, row, NoticeKind.ACCEPT_OVERDUE, row.accept_due, text)
                    )
                if (
                    row.state in {s.value for s in NOT_ARRIVED}
                    and not row.late
                    and row.arrive_due <= now
                ):
                    row.late = True
                    text = f"nobody at the door within the promise ({row.responder})"
                    fired.append(self._fire(session, row, NoticeKind.LATE, row.arrive_due, text))
            try:
                await session.commit()
            except IntegrityError:
                # Another process fired the same deadline first: it owns the notice.
                await session.rollback()
                log.info("field deadlines fired by another process; skipped")
                return []
        return fired

    def _fire(
        self, session: AsyncSession, row: WorkOrderRow, kind: str, due: float, text: str
    ) -> Notice:
        row.updated_at = max(row.updated_at, due)
        session.add(
            OrderEventRow(
                order_id=row.id, at=due, event=kind, actor=None, details={"attempt": row.attempt}
            )
        )
        notice = FieldNoticeRow(order_id=row.id, kind=kind, attempt=row.attempt, at=due, text=text)
        session.add(notice)
        return Notice(0, row.id, kind, row.attempt, due, text)

    # --- notices outbox ------------------------------------------------------------------

    async def pending_notices(self, limit: int = 100) -> list[Notice]:
        async with self._sessions() as session:
            rows = (
                await session.scalars(
                    select(FieldNoticeRow)
                    .where(FieldNoticeRow.delivered_at.is_(None))
                    .order_by(FieldNoticeRow.id)
                    .limit(limit)
                )
            ).all()
        return [Notice(r.id, r.order_id, r.kind, r.attempt, r.at, r.text) for r in rows]

    async def mark_notice(self, notice_id: int, *, delivered_at: float | None) -> None:
        async with self._sessions() as session:
            row = await session.get(FieldNoticeRow, notice_id)
            if row is None:
                return
            row.tries += 1
            if delivered_at is not None:
                row.delivered_at = delivered_at
            await session.commit()

    async def all_notices(self) -> list[Notice]:
        async with self._sessions() as session:
            rows = (await session.scalars(select(FieldNoticeRow).order_by(FieldNoticeRow.id))).all()
        return [Notice(r.id, r.order_id, r.kind, r.attempt, r.at, r.text) for r in rows]

    # --- reading -------------------------------------------------------------------------

    async def get(self, order_id: str) -> WorkOrder | None:
        async with self._sessions() as session:
            row = await session.get(WorkOrderRow, order_id)
            return WorkOrder.from_row(row) if row is not None else None

    async def list_orders(
        self,
        *,
        responder: str | None = None,
        site_ids: Sequence[str] | None = None,
        resident: tuple[str, str] | None = None,
        alert_id: str | None = None,
        open_only: bool = False,
        since: float | None = None,
        until: float | None = None,
        limit: int = 200,
    ) -> list[WorkOrder]:
        stmt = select(WorkOrderRow).order_by(WorkOrderRow.dispatched_at.desc()).limit(limit)
        if responder is not None:
            stmt = stmt.where(WorkOrderRow.responder == responder)
        if site_ids is not None:
            stmt = stmt.where(WorkOrderRow.site_id.in_(list(site_ids)))
        if resident is not None:
            stmt = stmt.where(
                WorkOrderRow.site_id == resident[0], WorkOrderRow.resident_id == resident[1]
            )
        if alert_id is not None:
            stmt = stmt.where(WorkOrderRow.alert_id == alert_id)
        if open_only:
            stmt = stmt.where(WorkOrderRow.state.in_([s.value for s in OPEN_STATES]))
        if since is not None:
            stmt = stmt.where(WorkOrderRow.requested_at >= since)
        if until is not None:
            stmt = stmt.where(WorkOrderRow.requested_at < until)
        async with self._sessions() as session:
            rows = (await session.scalars(stmt)).all()
        return [WorkOrder.from_row(r) for r in rows]

    async def history(self, order_id: str) -> list[OrderEvent]:
        async with self._sessions() as session:
            rows = (
                await session.scalars(
                    select(OrderEventRow)
                    .where(OrderEventRow.order_id == order_id)
                    .order_by(OrderEventRow.seq)
                )
            ).all()
        return [
            OrderEvent(r.seq, r.order_id, r.at, r.event, r.actor, dict(r.details)) for r in rows
        ]

    async def latest_seq(self) -> int:
        async with self._sessions() as session:
            value = await session.scalar(select(func.max(OrderEventRow.seq)))
        return int(value or 0)

    async def changes_since(self, seq: int, *, limit: int = 500) -> list[OrderChange]:
        """Events after `seq`, each with its order as it is now (the pages redraw it)."""
        async with self._sessions() as session:
            events = (
                await session.scalars(
                    select(OrderEventRow)
                    .where(OrderEventRow.seq > seq)
                    .order_by(OrderEventRow.seq)
                    .limit(limit)
                )
            ).all()
            ids = {e.order_id for e in events}
            rows = (
                (await session.scalars(select(WorkOrderRow).where(WorkOrderRow.id.in_(ids)))).all()
                if ids
                else []
            )
        orders = {r.id: WorkOrder.from_row(r) for r in rows}
        return [
            OrderChange(e.seq, e.event, orders[e.order_id]) for e in events if e.order_id in orders
        ]
