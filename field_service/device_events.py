"""What devices tell the field service: their own tests, and residents' requests.

A reading sink beside the detectors (ingest hands it every batch after them, so an SOS
never waits for it):

- `device_test` (a test press, a self-check): recorded as the device's test, source
  `device`, passed or failed (a failed self-check opens a fault like a failed test on
  site). It counts toward the weekly schedule (JGJ/T 484). The detectors never see a
  test press as an SOS: the codecs decode it to this stream, not to `sos`.
- `service_request` (a button's second pattern, a terminal's "I need help"): a service
  request of that kind for the device's resident, on the same path as one opened by
  the family or the operator, requested by `device:<id>`.

Both are idempotent by device and event time, as ingest's at-least-once delivery needs:
a redelivered message records nothing twice. While a request of a kind from a device is
open, another press asks nothing new (an anxious resident pressing again does not fill
the operator's list).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from eldercare.domain import Reading, Stream
from eldercare.logs import get_logger
from eldercare.registry_index import RegistryIndex
from field_service.device_tests import record_test
from field_service.lifecycle import OPEN_STATES
from field_service.models import DeviceTestRow, WorkOrderRow
from field_service.orders import OrderStore
from field_service.requests import REQUEST_ORDER_KIND, RequestKind
from field_service.visit_store import Sessions

log = get_logger(__name__)

DEVICE_SOURCE = "device"
_STREAMS = frozenset((Stream.DEVICE_TEST, Stream.SERVICE_REQUEST))


def requester(device_id: str) -> str:
    return f"device:{device_id}"


class DeviceEventSink:
    """Takes ingest's readings; acts on device tests and service requests only."""

    name = "field-device-events"

    def __init__(
        self, sessions: Sessions, orders: OrderStore, index: Callable[[], RegistryIndex]
    ) -> None:
        self._sessions = sessions
        self._orders = orders
        self._index = index
        self.tests_recorded = 0
        self.requests_opened = 0
        # Ingest's main session and its emergency lane both carry native `sos` topics and
        # hand batches on concurrently: one at a time here, so "seen already?" holds.
        self._lock = asyncio.Lock()

    async def handle_readings(self, readings: Sequence[Reading]) -> None:
        for reading in readings:
            if reading.stream not in _STREAMS:
                continue
            async with self._lock:
                await self._handle(reading)

    async def _handle(self, reading: Reading) -> None:
        try:
            if reading.stream is Stream.DEVICE_TEST:
                await self._test(reading)
            else:
                await self._request(reading)
        except DBAPIError:
            raise  # the store is away: not acknowledged, redelivered later
        except Exception:
            # A bug here must not hold up every later message of every home.
            log.exception(
                "device event not handled",
                extra={"site": reading.site_id, "device": reading.device_id},
            )

    async def _test(self, reading: Reading) -> None:
        async with self._sessions() as session:
            seen = await session.scalar(
                select(DeviceTestRow.id).where(
                    DeviceTestRow.site_id == reading.site_id,
                    DeviceTestRow.device_id == reading.device_id,
                    DeviceTestRow.at == reading.ts,
                    DeviceTestRow.source == DEVICE_SOURCE,
                )
            )
        if seen is not None:
            return
        passed = reading.fields.get("passed") is not False
        await record_test(
            self._sessions, site_id=reading.site_id, device_id=reading.device_id, at=reading.ts,
            passed=passed, source=DEVICE_SOURCE, by=None,
            note=None if passed else "the device reported a failed self-check",
        )  # fmt: skip
        self.tests_recorded += 1

    async def _request(self, reading: Reading) -> None:
        value = reading.fields.get("kind")
        try:
            kind = RequestKind(value) if isinstance(value, str) else RequestKind.OTHER
        except ValueError:
            kind = RequestKind.OTHER
        site = self._index().sites.get(reading.site_id)
        if site is None:
            return  # removed from the registry since ingest resolved it
        resident_id = reading.resident_id
        if resident_id is None and len(site.residents) == 1:
            resident_id = site.residents[0].id  # a home of one: it is hers
        by = requester(reading.device_id)
        async with self._sessions() as session:
            same = await session.scalar(
                select(WorkOrderRow.id)
                .where(
                    WorkOrderRow.kind == REQUEST_ORDER_KIND,
                    WorkOrderRow.site_id == site.id,
                    WorkOrderRow.requested_by == by,
                    WorkOrderRow.request_kind == kind.value,
                )
                .where(
                    (WorkOrderRow.requested_at == reading.ts)
                    | WorkOrderRow.state.in_([s.value for s in OPEN_STATES])
                )
                .limit(1)
            )
        if same is not None:
            return
        await self._orders.open_request(
            site=site, resident_id=resident_id, kind=kind, requested_by=by, at=reading.ts,
            note=f"来自设备 {reading.device_id} 的按键 / from the device {reading.device_id}",
        )  # fmt: skip
        self.requests_opened += 1
        log.info(
            "service request from a device",
            extra={"site": site.id, "device": reading.device_id, "kind": kind.value},
        )
