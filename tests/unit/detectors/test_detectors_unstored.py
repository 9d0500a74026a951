"""Transitions the alert store did not take are never lost by the detector runtime:
kept and handed on before anything newer (so a redelivered reading, rightly a
duplicate, still gets its alert), and a site holding such transitions is not
snapshotted (after a crash, its readings are applied afresh). Real SQLite."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest

from detectors.runtime import DetectorRuntime
from detectors.snapshot_store import SnapshotStore
from eldercare.db import create_all, create_engine
from eldercare.domain import AlertKind, Stream, Transition, TransitionAction
from eldercare.registry_index import RegistryIndex
from eldercare.registry_model import RegistryDocument, Site
from tests.helpers.detectors import home_site, local_ts, reading

SH = "Asia/Shanghai"
T = local_ts(SH, 2024, 5, 10, 14, 0)


class FlakySink:
    """Stores transitions; fails (or hangs) while told to."""

    def __init__(self) -> None:
        self.stored: list[Transition] = []
        self.failing = False
        self.hanging = False
        self.calls = 0
        self.called = asyncio.Event()

    async def handle_transitions(self, transitions: Sequence[Transition]) -> None:
        self.calls += 1
        self.called.set()
        if self.hanging:
            await asyncio.Event().wait()  # a store write that never returns (cancelled)
        if self.failing:
            raise ConnectionError("alert store unavailable")
        self.stored.extend(transitions)

    def sos(self) -> list[tuple[TransitionAction, float]]:
        return [(t.action, t.ts) for t in self.stored if t.kind == AlertKind.SOS]


def _runtime(sink: FlakySink, site: Site, **kw: object) -> DetectorRuntime:
    index = RegistryIndex(RegistryDocument(sites=[site]))
    return DetectorRuntime(lambda: index, sink, clock_mode="event", **kw)  # type: ignore[arg-type]


async def test_a_redelivery_after_a_failed_first_processing_is_not_dropped() -> None:
    site = home_site(SH)
    sink = FlakySink()
    rt = _runtime(sink, site)
    press = reading(site, "sos-1", Stream.SOS, T, pressed=True)
    sink.failing = True
    with pytest.raises(ConnectionError):
        await rt.handle_readings([press])  # not acknowledged: the broker redelivers it
    sink.failing = False
    await rt.handle_readings([press])  # the redelivery: a duplicate for the detectors
    assert sink.sos() == [(TransitionAction.RAISE, T)]
    await rt.handle_readings([press])  # once stored, nothing is handed on twice
    assert sink.sos() == [(TransitionAction.RAISE, T)]


async def test_a_cancelled_hand_on_keeps_the_transitions_in_order() -> None:
    """Ingest's connection drops while the store holds the batch: the call is cancelled."""
    site = home_site(SH)
    sink = FlakySink()
    rt = _runtime(sink, site)
    sink.hanging = True
    first = asyncio.create_task(
        rt.handle_readings([reading(site, "sos-1", Stream.SOS, T, pressed=True)])
    )
    await asyncio.wait_for(sink.called.wait(), 5)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert rt.unstored_sites() == {site.id}
    sink.hanging = False
    later = reading(site, "sos-1", Stream.SOS, T + 5, pressed=True)
    await rt.handle_readings([later])
    assert sink.sos() == [(TransitionAction.RAISE, T), (TransitionAction.UPDATE, T + 5)]
    assert rt.unstored_sites() == set()


async def test_a_site_with_unstored_transitions_is_not_snapshotted(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/snap.db")
    await create_all(engine)
    site = home_site(SH)
    press = reading(site, "sos-1", Stream.SOS, T, pressed=True)

    sink1 = FlakySink()
    rt1 = _runtime(sink1, site, snapshot_store=SnapshotStore(engine))
    await rt1.start()
    sink1.failing = True
    with pytest.raises(ConnectionError):
        await rt1.handle_readings([press])
    await rt1.stop(unstored_wait_s=0.5)  # the store still refuses: nothing saved for it
    assert await SnapshotStore(engine).load_all() == {}

    # After the restart the broker redelivers the unacknowledged press: applied afresh.
    sink2 = FlakySink()
    rt2 = _runtime(sink2, site, snapshot_store=SnapshotStore(engine))
    await rt2.start()
    await rt2.handle_readings([press])
    await rt2.stop()
    assert sink2.sos() == [(TransitionAction.RAISE, T)]
    await engine.dispose()
