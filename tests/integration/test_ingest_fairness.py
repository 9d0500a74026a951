"""Per-site fairness at ingest: a site over its rate is throttled and counted, never at
the expense of other sites, and its emergencies still go through, first; unregistered
devices are tracked in bounded memory and flushed in batches of any size; repeated log
lines are rate-limited with a count."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlalchemy import func, select

from eldercare import metrics
from eldercare.db import create_engine, session_factory
from eldercare.domain import Reading, Stream
from eldercare.registry_index import RegistryIndex
from eldercare.registry_model import RegistryDocument
from eldercare.settings import Settings
from ingest import unregistered as unregistered_module
from ingest.decoded import NativeIdentity
from ingest.log_limit import LogLimiter
from ingest.mqtt_session import InboundMessage
from ingest.service import IngestService
from ingest.site_limits import BURST_S, DEVICE_RATE, EMERGENCY_STREAMS, UNREGISTERED
from ingest.unregistered import (
    MAX_PENDING,
    UnregisteredDeviceRow,
    UnregisteredDevices,
    init_unregistered_store,
)
from tests.helpers.ingest import Publisher, RecordingSink, unique
from tests.helpers.polling import wait_for

T0 = 1_770_000_000.0


def _home(site_id: str, n_devices: int) -> dict[str, object]:
    return {
        "id": site_id,
        "kind": "home",
        "name": site_id,
        "organisation": "滨州市/滨城区",
        "rooms": [{"id": "bedroom", "kind": "bedroom"}],
        "devices": [{"id": f"{site_id}-sos", "kind": "sos_button", "room": "bedroom"}]
        + [
            {"id": f"{site_id}-pir{i}", "kind": "motion", "room": "bedroom"}
            for i in range(n_devices - 1)
        ],
    }


INDEX = RegistryIndex(
    RegistryDocument.model_validate({"sites": [_home("flood", 10), _home("quiet", 10)]}),
    version=1,
)


def _msg(topic: str, payload: dict[str, object], at: float) -> InboundMessage:
    return InboundMessage(topic, json.dumps(payload).encode(), 1, 0, False, at, 1)


def _motion(site: str, i: int, at: float) -> InboundMessage:
    return _msg(f"eldercare/{site}/{site}-pir{i % 9}/motion", {"ts": at, "motion": True}, at)


def _sos(site: str, at: float) -> InboundMessage:
    return _msg(f"eldercare/{site}/{site}-sos/sos", {"ts": at, "pressed": True}, at)


def _service(tmp_path: Path, **settings: object) -> IngestService:
    cfg = Settings(
        run_dir=tmp_path / "run",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/e.db",
        **settings,  # type: ignore[arg-type]
    )
    return IngestService(cfg, lambda: INDEX, RecordingSink())


def test_a_flooding_site_is_throttled_and_the_others_are_not(tmp_path: Path) -> None:
    service = _service(tmp_path)
    before = metrics.counter(
        "ingest_throttled_total", "messages dropped: their site was over its rate", ("site",)
    ).value(site="flood")
    # One second of arrivals: 20,000 from the flooding home, 10 from a quiet one, and
    # an SOS at each after the flood has spent the flooding home's credit.
    batch = [_motion("flood", i, T0 + i / 20_000) for i in range(20_000)]
    batch[10_000:10_000] = [_motion("quiet", i, T0 + 0.5) for i in range(10)]
    batch += [_sos("flood", T0 + 0.99), _sos("quiet", T0 + 0.99)]
    readings, lines = service.prepare_batch(batch)

    by_site: dict[str, int] = {}
    for r in readings:
        by_site[r.site_id] = by_site.get(r.site_id, 0) + 1
    credit = DEVICE_RATE * 10 * BURST_S  # 10 devices: 300 messages saved up
    assert by_site["quiet"] == 11  # every one of the quiet home's messages
    # The flooding home: its credit plus what one second refills, and its SOS.
    assert credit <= by_site["flood"] - 1 <= credit + DEVICE_RATE * 10 + 1
    assert service.throttled == 20_000 - (by_site["flood"] - 1)
    # Emergencies go first in the batch, whichever home they come from.
    assert {r.stream for r in readings[:2]} == {Stream.SOS}
    assert len(lines) == len(readings)
    after = metrics.counter(
        "ingest_throttled_total", "messages dropped: their site was over its rate", ("site",)
    ).value(site="flood")
    assert after - before == service.throttled


def test_a_sites_rate_can_be_set_by_hand(tmp_path: Path) -> None:
    service = _service(tmp_path, ingest_site_rates={"flood": 1000.0})
    batch = [_motion("flood", i, T0 + i / 20_000) for i in range(20_000)]
    readings, _ = service.prepare_batch(batch)
    # 1000 msg/s with 30 s of credit: the whole second's 20,000 (by default ~310).
    assert len(readings) == 20_000 and service.throttled == 0


def test_replays_on_the_event_clock_are_not_throttled(tmp_path: Path) -> None:
    service = _service(tmp_path, clock_mode="event")
    batch = [_motion("flood", i, T0 + i / 20_000) for i in range(5_000)]
    readings, _ = service.prepare_batch(batch)
    assert len(readings) == 5_000 and service.throttled == 0


def test_made_up_sites_share_one_budget(tmp_path: Path) -> None:
    service = _service(tmp_path)
    service.unregistered = UnregisteredDevices(
        session_factory(create_engine("sqlite+aiosqlite://"))
    )
    batch = [
        _msg(f"eldercare/fake-{i}/dev-{i}/motion", {"ts": T0, "motion": True}, T0)
        for i in range(10_000)
    ]
    service.prepare_batch(batch)
    assert service.limiter is not None
    assert service.unregistered.pending < 10_000  # the shared bucket let only its credit in
    assert service.throttled == 10_000 - service.unregistered.pending
    assert set(service.limiter.take_throttled()) == {UNREGISTERED}


@pytest.mark.asyncio
async def test_unregistered_tracking_is_bounded_and_flushes_any_size(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/u.db")
    await init_unregistered_store(engine)
    sessions = session_factory(engine)
    tracker = UnregisteredDevices(sessions)
    # More distinct ids than SQLite takes bound variables in one statement (32,766).
    for i in range(40_000):
        tracker.note(NativeIdentity("site", f"made-up-{i}"), "native", f"t/{i}", b"{}", T0 + i)
    assert tracker.pending == MAX_PENDING
    assert tracker.untracked == 40_000 - MAX_PENDING
    assert await tracker.flush() == MAX_PENDING
    # Seen again: counted on the same rows, in several statements of bounded size.
    for i in range(MAX_PENDING):
        tracker.note(NativeIdentity("site", f"made-up-{i}"), "native", f"t/{i}", b"{}", T0 + i)
    assert await tracker.flush() == MAX_PENDING
    async with sessions() as session:
        rows = await session.scalar(select(func.count()).select_from(UnregisteredDeviceRow))
        total = await session.scalar(select(func.sum(UnregisteredDeviceRow.count)))
    assert rows == MAX_PENDING and total == 2 * MAX_PENDING
    await engine.dispose()


@pytest.mark.asyncio
async def test_a_failed_flush_keeps_the_rest_for_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/u.db")
    await init_unregistered_store(engine)
    tracker = UnregisteredDevices(session_factory(engine))
    for i in range(1200):
        tracker.note(NativeIdentity("site", f"d{i}"), "native", "t", b"{}", T0)
    calls = 0
    upsert = tracker._upsert

    async def second_chunk_fails(pending):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("store busy")
        await upsert(pending)

    monkeypatch.setattr(tracker, "_upsert", second_chunk_fails)
    with pytest.raises(RuntimeError):
        await tracker.flush()
    assert tracker.pending == 1200 - unregistered_module.FLUSH_CHUNK  # the rest kept
    assert await tracker.flush() == 1200 - unregistered_module.FLUSH_CHUNK
    async with tracker.sessions() as session:
        rows = await session.scalar(select(func.count()).select_from(UnregisteredDeviceRow))
    assert rows == 1200
    await engine.dispose()


def test_repeated_log_lines_come_once_a_minute_with_a_count() -> None:
    limits = LogLimiter(every_s=60.0)
    assert limits.allow("flush", 0.0) == 0
    assert [limits.allow("flush", t) for t in (5.0, 10.0, 59.0)] == [None, None, None]
    assert limits.allow("other", 10.0) == 0  # keys are independent
    assert limits.allow("flush", 60.0) == 3  # the three held back, reported
    assert limits.allow("flush", 61.0) is None


class GatedSink:
    """Holds every batch without an emergency at a gate (a main session stuck behind a
    flood); records what it is handed."""

    def __init__(self) -> None:
        self.readings: list[Reading] = []
        self.gate = asyncio.Event()
        self.held = asyncio.Event()

    async def handle_readings(self, readings: Sequence[Reading]) -> None:
        self.readings.extend(readings)
        if not any(r.stream in EMERGENCY_STREAMS for r in readings):
            self.held.set()
            await self.gate.wait()


@pytest.mark.integration
@pytest.mark.asyncio(loop_scope="session")
async def test_an_sos_passes_a_main_session_stuck_behind_a_flood(
    settings: Settings, mqtt_addr: tuple[str, int], mqtt_credentials: tuple[str, str]
) -> None:
    flood, quiet = unique("flood"), unique("quiet")
    index = RegistryIndex(
        RegistryDocument.model_validate({"sites": [_home(flood, 10), _home(quiet, 10)]}),
        version=1,
    )
    cfg = settings.model_copy(update={"mqtt_client_id": unique("ingest-lane-")})
    sink = GatedSink()
    service = IngestService(cfg, lambda: index, sink)
    assert service.emergency_config is not None
    await service.start()
    publisher = Publisher(*mqtt_addr, client_id=unique("pub-"), credentials=mqtt_credentials)
    try:
        await wait_for(service.ready.is_set, 20, "ingest subscribed", every_s=0.02)
        now = time.time()
        await asyncio.to_thread(
            publisher.publish_all,
            [(m.topic, m.payload) for m in (_motion(flood, i, now) for i in range(2000))],
        )
        # The main session is stuck in the sink.
        await wait_for(sink.held.is_set, 20, "the sink holding a batch", every_s=0.02)
        sos = _sos(quiet, time.time())
        await asyncio.to_thread(publisher.publish_all, [(sos.topic, sos.payload)])
        await wait_for(
            lambda: any(r.site_id == quiet for r in sink.readings),
            20,
            "the quiet home's SOS handed on",
            every_s=0.02,
        )
        assert [r.stream for r in sink.readings if r.site_id == quiet] == [Stream.SOS]
    finally:
        sink.gate.set()
        publisher.close()
        await service.stop()


def test_a_button_pattern_the_registry_makes_an_sos_passes_a_flood(tmp_path: Path) -> None:
    """A generic z2m button registered as an SOS button: its `single` press is the call
    and passes a flooding home's budget like a native SOS; its `double` (a service
    request) is an ordinary message and waits its turn."""
    home = _home("flood", 10)
    home["devices"].append(  # type: ignore[attr-defined]
        {"id": "flood-z", "kind": "sos_button", "room": "bedroom",
         "vendor": {"z2m": {"friendly_name": "flood/sos"}},
         "actions": {"double": {"means": "service_request", "request": "meal"}}}
    )  # fmt: skip
    index = RegistryIndex(RegistryDocument.model_validate({"sites": [home]}), version=1)
    cfg = Settings(run_dir=tmp_path / "run", database_url=f"sqlite+aiosqlite:///{tmp_path}/e.db")
    service = IngestService(cfg, lambda: index, RecordingSink())
    batch = [_motion("flood", i, T0 + i / 20_000) for i in range(20_000)]
    batch += [
        _msg("zigbee2mqtt/flood/sos", {"action": "double"}, T0 + 0.99),
        _msg("zigbee2mqtt/flood/sos", {"action": "single"}, T0 + 0.99),
    ]
    readings, _ = service.prepare_batch(batch)
    assert [r.stream for r in readings if r.device_id == "flood-z"] == [Stream.SOS]
    assert readings[0].stream is Stream.SOS  # and first in the batch
