"""The field service's parts inside the gateway: the order store, its change hub,
the deadline timers, and how their notices reach the operator.

An accept timeout, a decline or a late arrival is told to the operator on the
alert itself (a note in its history, pushed live by the alert stream) and on the
console's dispatch panel (the order stream).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from alerts.sender import AppriseSender
from eldercare.clock import Clock
from eldercare.logs import get_logger
from field_service.orders import Notice, NoticeKind, OrderStore, WorkOrder
from field_service.responder_messages import ResponderMessenger
from field_service.timers import FieldTimers, PeriodicJob
from gateway.ports import AlertConflict, AlertNotFound, AlertService
from gateway.stream import ChangeHub

log = get_logger(__name__)

NOTICE_ACTOR = "field-service"
_NOTICE_TEXT = {
    NoticeKind.ACCEPT_OVERDUE: "【派单超时未接】{who} 未按时接单，请改派 / [Dispatch] not accepted "
    "in time by {who}: please send someone else",
    NoticeKind.DECLINED: "【派单被拒】{who}：{reason} / [Dispatch] declined by {who}: {reason}",
    NoticeKind.LATE: "【未按时到达】{who} 未在承诺时间内上门 / [Dispatch] {who} not at the door "
    "within the promised time",
}


class AlertNoteSink:
    """Delivers a field notice as a note on the order's alert."""

    def __init__(self, alerts: AlertService, hub: ChangeHub | None = None) -> None:
        self._alerts = alerts
        self._hub = hub

    async def deliver(self, notice: Notice, order: WorkOrder) -> None:
        if order.alert_id is None:
            return  # no alert to note it on: the console's order list shows the flag
        text = _NOTICE_TEXT.get(notice.kind, notice.text).format(
            who=order.responder, reason=order.decline_reason or ""
        )
        try:
            await self._alerts.add_note(order.alert_id, actor=NOTICE_ACTOR, text=text, at=notice.at)
        except (AlertConflict, AlertNotFound):
            log.info(
                "alert %s closed or gone; field notice %s not noted", order.alert_id, notice.kind
            )
        if self._hub is not None:
            self._hub.poke()


@dataclass
class FieldContext:
    store: OrderStore
    hub: ChangeHub
    timers: FieldTimers
    messenger: ResponderMessenger | None = None

    @classmethod
    def build(
        cls,
        store: OrderStore,
        alerts: AlertService,
        alert_hub: ChangeHub,
        clock: Clock,
        *,
        poll_s: float = 0.25,
        timers_every_s: float = 5.0,
        jobs: Sequence[PeriodicJob] = (),
        messenger: ResponderMessenger | None = None,
    ) -> FieldContext:
        hub = ChangeHub(store, poll_s=poll_s)
        timers = FieldTimers(
            store, AlertNoteSink(alerts, alert_hub), clock, timers_every_s, jobs, messenger
        )
        return cls(store, hub, timers, messenger)

    async def start(self) -> None:
        await self.hub.start()
        await self.timers.start()

    async def stop(self) -> None:
        await self.timers.stop()
        await self.hub.stop()
        if self.messenger is not None and isinstance(self.messenger.sender, AppriseSender):
            self.messenger.sender.close()


def get_field(request: Request) -> FieldContext:
    field: FieldContext = request.app.state.field
    return field


Field = Annotated[FieldContext, Depends(get_field)]
