"""Telling a responder of a new order when their phone page is closed.

Every assignment (a dispatch, a re-dispatch, a service request sent to someone) writes
an outbox row with the order itself (`orders._message_for`). `deliver_responder_messages`
sends each undelivered row to the responder's channels: their own Apprise URLs
(`notify`: an SMS provider's, WeCom, e-mail ...) and, when the centre set one, an SMS
URL template with `{phone}` filled from their record (`field_responder_sms_url`). The
row keeps the channels already sent to, so a failed channel is retried at the next tick
without sending the others again, and a restart resends nothing that went out. A row
whose order is no longer this responder's, or is closed, is settled unsent.

The message is short and says where to look: the resident, the address, what happened,
and the link to the order on the phone page.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from alerts.channels.templates import MAX_VARIABLE_LEN, TemplateParams
from alerts.sender import DeliveryError, NotificationSender
from alerts.terms import KIND_TERMS
from eldercare.domain import AlertKind
from eldercare.logs import get_logger
from eldercare.registry_index import RegistryIndex
from field_service.models import ResponderMessageRow
from field_service.orders import WorkOrder
from field_service.requests import REQUEST_ORDER_KIND
from field_service.responders import Responder, get_responder
from field_service.visit_store import Sessions

log = get_logger(__name__)

MAX_TRIES = 10  # then given up (logged); the order is still on the page and the console
SEND_TIMEOUT_S = 15.0
REQUEST_TERMS = {
    "meal": "助餐",
    "medicine": "送药",
    "cleaning": "保洁",
    "accompany_hospital": "陪同就医",
    "repair": "维修",
    "other": "求助",
}


@dataclass(frozen=True, slots=True)
class ResponderMessage:
    title: str
    body: str
    params: TemplateParams  # the SMS providers' template variables


def channel_key(url: str) -> str:
    """A channel's identity in the outbox without its secrets."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:32]


def responder_channels(responder: Responder, sms_url_template: str | None) -> list[str]:
    urls = list(responder.notify)
    if sms_url_template and responder.phone:
        urls.append(sms_url_template.replace("{phone}", responder.phone))
    return urls


def order_link(public_url: str, order_id: str) -> str:
    return f"{public_url.rstrip('/')}/field#order={order_id}"


def compose(order: WorkOrder, index: RegistryIndex, public_url: str) -> ResponderMessage:
    """zh-CN first (responders' language), with the link to the order."""
    site = index.sites.get(order.site_id)
    resident = site.resident(order.resident_id) if site is not None else None
    who = resident.name if resident is not None else (site.name if site else order.site_id)
    where = site.address if site is not None and site.address else ""
    if order.kind == REQUEST_ORDER_KIND:
        what = "服务需求：" + REQUEST_TERMS.get(order.request_kind or "other", "求助")
    else:
        kind = _alert_kind(order.alert_kind)
        what = KIND_TERMS[kind]["zh-CN"] if kind in KIND_TERMS else "上门协助"
    zone = ZoneInfo(site.timezone) if site is not None else ZoneInfo("Asia/Shanghai")
    clock = datetime.fromtimestamp(order.dispatched_at, zone).strftime("%H:%M")
    link = order_link(public_url, order.id)
    title = f"【派单】{who}（{what}）"
    place = f"（{where}）" if where else ""
    body = f"{who}{place}{what}，{clock}派单，请尽快接单：{link}"
    # SMS template variables hold 35 characters: the link when it fits, else the order's
    # id (the approved template carries the phone page's address).
    action = (
        f"接单：{link}" if len(link) + 3 <= MAX_VARIABLE_LEN else f"请打开派单页接单 {order.id}"
    )
    params = TemplateParams(who, f"派单：{what}", clock, action)
    return ResponderMessage(title, body, params)


def _alert_kind(value: str | None) -> AlertKind | None:
    try:
        return AlertKind(value) if value else None
    except ValueError:
        return None


async def deliver_responder_messages(
    sessions: Sessions,
    *,
    order_of: Callable[[str], Awaitable[WorkOrder | None]],
    index: RegistryIndex,
    sender: NotificationSender,
    public_url: str,
    sms_url_template: str | None,
    now: float,
    limit: int = 50,
) -> int:
    """Send every undelivered assignment message; the number of sends that succeeded."""
    async with sessions() as session:
        rows = (
            await session.scalars(
                select(ResponderMessageRow)
                .where(ResponderMessageRow.delivered_at.is_(None))
                .order_by(ResponderMessageRow.id)
                .limit(limit)
            )
        ).all()
        pending = [
            (r.id, r.order_id, r.attempt, r.responder, list(r.done or []), r.tries) for r in rows
        ]
    sent = 0
    for row_id, order_id, attempt, username, done, tries in pending:
        if not await _claim(sessions, row_id, tries):
            continue  # another process (a second gateway) took this try
        order = await order_of(order_id)
        responder = await get_responder(sessions, username)
        if (
            order is None
            or not order.is_open
            or order.responder != username
            or order.attempt != attempt
            or responder is None
        ):
            await _settle(sessions, row_id, done, now, error=None)  # nobody to tell any more
            continue
        urls = responder_channels(responder, sms_url_template)
        if not urls:
            log.info("responder %s has no channel; order %s is on their page", username, order_id)
            await _settle(sessions, row_id, done, now, error="no channel")
            continue
        message = compose(order, index, public_url)
        errors: list[str] = []
        for url in urls:
            key = channel_key(url)
            if key in done:
                continue
            try:
                await sender.send(
                    url, message.title, message.body, SEND_TIMEOUT_S, "warning", message.params
                )
            except (DeliveryError, OSError) as exc:
                errors.append(str(exc)[:200])
                continue
            done.append(key)
            sent += 1
            await _record(sessions, row_id, done)  # at once: a crash now must not resend it
        keys = {channel_key(u) for u in urls}
        if keys <= set(done):
            await _settle(sessions, row_id, done, now, error=None)
        else:
            await _failed(sessions, row_id, "; ".join(errors) or "not sent", now)
    return sent


async def _claim(sessions: Sessions, row_id: int, tries: int) -> bool:
    """Count this try, if nobody else counted it first: one sender per try."""
    async with sessions() as session:
        result = await session.execute(
            update(ResponderMessageRow)
            .where(ResponderMessageRow.id == row_id, ResponderMessageRow.tries == tries)
            .values(tries=tries + 1)
        )
        await session.commit()
    return bool(getattr(result, "rowcount", 0) == 1)


async def _record(sessions: Sessions, row_id: int, done: Sequence[str]) -> None:
    async with sessions() as session:
        row = await session.get(ResponderMessageRow, row_id)
        if row is not None:
            row.done = list(done)
            await session.commit()


async def _settle(
    sessions: Sessions, row_id: int, done: Sequence[str], now: float, error: str | None
) -> None:
    async with sessions() as session:
        row = await session.get(ResponderMessageRow, row_id)
        if row is not None:
            row.done = list(done)
            row.delivered_at = now
            row.last_error = error
            await session.commit()


async def _failed(sessions: Sessions, row_id: int, error: str, now: float) -> None:
    async with sessions() as session:
        row = await session.get(ResponderMessageRow, row_id)
        if row is None:
            return
        row.last_error = error[:300]
        if row.tries >= MAX_TRIES:
            row.delivered_at = now  # given up: said in the log, the order stays on the page
            log.warning(
                "order message to %s given up after %d tries: %s", row.responder, row.tries, error
            )
        await session.commit()


async def messages_of(sessions: Sessions, order_id: str) -> list[ResponderMessageRow]:
    async with sessions() as session:
        return list(
            (
                await session.scalars(
                    select(ResponderMessageRow)
                    .where(ResponderMessageRow.order_id == order_id)
                    .order_by(ResponderMessageRow.id)
                )
            ).all()
        )


class ResponderMessenger:
    """The field timers' messenger: one call sends what is owed as of `now`."""

    def __init__(
        self,
        sessions: Sessions,
        order_of: Callable[[str], Awaitable[WorkOrder | None]],
        index: Callable[[], Awaitable[RegistryIndex]],
        sender: NotificationSender,
        *,
        public_url: str,
        sms_url_template: str | None = None,
    ) -> None:
        self._sessions = sessions
        self._order_of = order_of
        self._index = index
        self.sender = sender
        self._public_url = public_url
        self._sms_url_template = sms_url_template

    async def __call__(self, now: float) -> int:
        return await deliver_responder_messages(
            self._sessions,
            order_of=self._order_of,
            index=await self._index(),
            sender=self.sender,
            public_url=self._public_url,
            sms_url_template=self._sms_url_template,
            now=now,
        )
