"""Detector workers on a real three-node NATS cluster: partition leases, handover after a
worker dies, the same alerts at the same event times as an uninterrupted run, and no
duplicate transition; a new worker rebalancing partitions."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Collection
from pathlib import Path

from cluster.jetstream import JetStream, open_jetstream
from cluster.partition_registry import PartitionRegistry
from cluster.partitions import partition_of
from cluster.publishers import JetStreamReadings, _duplicates
from eldercare.clock import WallClock
from eldercare.db import create_engine, session_factory
from eldercare.domain import Reading, Stream
from eldercare.registry_apply import apply_document
from eldercare.registry_model import RegistryDocument
from eldercare.settings import Settings
from eldercare_app.cluster_roles import DetectorWorker
from eldercare_app.local_services import NatsCluster
from eldercare_app.wiring import prepare_store
from ingest.site_status import SiteStatusTracker
from tests.helpers.cluster import stored_transitions, wipe
from tests.helpers.detectors import home_site
from tests.helpers.polling import wait_for

PARTITIONS = 4
SITES = 12
T0 = 1_780_000_000.0
TTL = 1.5


def registry_document() -> RegistryDocument:
    sites = [
        home_site(
            site_id=f"home-{i}",
            devices=[{"id": "sos", "kind": "sos_button", "room": "bedroom"}],
            device_suffix=f"-{i}",
        )
        for i in range(SITES)
    ]
    return RegistryDocument(sites=sites)


def presses(first: int, last: int) -> list[Reading]:
    """SOS presses every minute, numbers first..last-1, at every site."""
    return [
        Reading(f"home-{i}", f"sos-{i}", Stream.SOS, T0 + k * 60.0, {"pressed": True})
        for k in range(first, last)
        for i in range(SITES)
    ]


def cluster_settings(url: str, tmp: Path) -> Settings:
    return Settings(
        run_dir=tmp / "run",
        nats_url=url,
        cluster_partitions=PARTITIONS,
        cluster_replicas=3,
        cluster_lease_ttl_s=TTL,
        cluster_snapshot_every_s=3600.0,  # the test says when to checkpoint
        clock_mode="event",
        database_url=f"sqlite+aiosqlite:///{tmp / 'store.db'}",
    )


class Harness:
    def __init__(self, settings: Settings, stream: JetStream) -> None:
        self.settings = settings
        self.stream = stream
        self.engine = create_engine(settings.database_url)
        self.sessions = session_factory(self.engine)
        self.workers: list[DetectorWorker] = []
        self._applied = False

    def registry(self) -> PartitionRegistry:
        """A worker's registry: the sites of the partitions it holds, from the store."""
        return PartitionRegistry(self.sessions, PARTITIONS)

    async def worker(
        self,
        name: str,
        status: SiteStatusTracker | None = None,
        registry: PartitionRegistry | None = None,
    ) -> DetectorWorker:
        if not self._applied:
            await prepare_store(self.engine)
            await apply_document(self.sessions, registry_document())
            self._applied = True
        w = DetectorWorker(
            self.settings,
            self.stream,
            registry or self.registry(),
            self.engine,
            WallClock(),
            name,
            status,
        )
        await w.start()
        self.workers.append(w)
        return w

    async def publish(self, readings: list[Reading]) -> int:
        await JetStreamReadings(self.stream.js, PARTITIONS).handle_readings(readings)
        info = await self.stream.js.stream_info("ELDERCARE_READINGS")
        return int(info.state.last_seq)

    async def caught_up(self, workers: list[DetectorWorker], seq: int) -> None:
        """Every partition is owned by one of `workers`, each runner past `seq`'s last
        message of its partition (nothing left to fetch)."""

        async def done() -> bool:
            runners = {p: r for w in workers for p, r in w.runners.items()}
            if len(runners) != PARTITIONS:
                return False
            for p, r in runners.items():
                last = await self.stream.js.get_last_msg(
                    "ELDERCARE_READINGS", f"eldercare.readings.{p}"
                )
                if r.position < min(seq, last.seq or 0):
                    return False
            return True

        await wait_for(done, 20, f"workers caught up with sequence {seq}")

    async def close(self) -> None:
        for w in self.workers:
            with contextlib.suppress(Exception):
                await w.stop()
        await self.stream.close()
        await self.engine.dispose()


def die(worker: DetectorWorker) -> None:
    """What kill -9 leaves: no snapshot saved, no lease released, nothing said."""
    loops = [worker.ownership._turns, worker.ownership._renewals, worker.registry._loop]
    tasks = []
    for runner in worker.runners.values():
        tasks.append(runner._task)
        loops += runner.runtime._loops
    tasks += [loop._task for loop in loops if loop is not None]
    for task in tasks:
        if task is not None:
            task.cancel()
    worker.runners.clear()
    worker.ownership.held.clear()


def key(t: object) -> tuple[object, ...]:
    return (t.site_id, t.resident_id, t.kind, t.action, t.ts)  # type: ignore[attr-defined]


async def run_scenario(url: str, tmp: Path, *, kill: bool) -> list[tuple[object, ...]]:
    await wipe(url)
    settings = cluster_settings(url, tmp)
    h = Harness(settings, await open_jetstream(settings, name="test"))
    try:
        a = await h.worker("worker-a")
        assert len(a.runners) == PARTITIONS, "a lone worker takes every partition"
        seq = await h.publish(presses(0, 3))
        await h.caught_up([a], seq)
        for runner in a.runners.values():
            await runner.checkpoint()
        seq = await h.publish(presses(3, 6))
        await h.caught_up([a], seq)
        if kill:
            die(a)
            h.workers.remove(a)
        seq = await h.publish(presses(6, 9))
        if kill:
            b = await h.worker("worker-b")
            assert not b.runners, "the dead worker's leases still live"
            start = time.monotonic()
            await wait_for(lambda: len(b.runners) == PARTITIONS, TTL * 6, "takeover")
            assert time.monotonic() - start <= TTL * 6
            await h.caught_up([b], seq)
        else:
            await h.caught_up([a], seq)
        # Nothing more may come: the stream is compared as it stands.
        await asyncio.sleep(0)
        stored = await stored_transitions(url)
    finally:
        await h.close()
    return [key(t) for t in stored]


async def test_handover_gives_the_same_alerts_at_the_same_times_without_duplicates(
    nats_cluster: NatsCluster, tmp_path: Path
) -> None:
    reference = await run_scenario(nats_cluster.url, tmp_path / "uninterrupted", kill=False)
    replayed_before = _duplicates.value()
    handed_over = await run_scenario(nats_cluster.url, tmp_path / "killed", kill=True)
    # The new owner replayed the readings after the last checkpoint (presses 3-5), so it
    # published their transitions again, and JetStream dropped them as duplicates.
    assert _duplicates.value() - replayed_before == SITES * 3
    assert len(reference) == SITES * 9, "one raise and eight updates per site"
    assert sorted(reference, key=repr) == sorted(handed_over, key=repr)
    assert len(set(handed_over)) == len(handed_over), "no transition twice"


async def test_a_new_worker_takes_its_share_and_a_stopped_one_hands_back(
    nats_cluster: NatsCluster, tmp_path: Path
) -> None:
    await wipe(nats_cluster.url)
    settings = cluster_settings(nats_cluster.url, tmp_path)
    h = Harness(settings, await open_jetstream(settings, name="test"))
    try:
        a = await h.worker("worker-a")
        assert len(a.runners) == PARTITIONS
        b = await h.worker("worker-b")
        await wait_for(
            lambda: len(a.runners) == len(b.runners) == PARTITIONS // 2, TTL * 6, "rebalance"
        )
        assert not set(a.runners) & set(b.runners), "no partition owned twice"
        seq = await h.publish(presses(0, 2))
        await h.caught_up([a, b], seq)
        await b.stop()  # graceful: saved and released at once, no TTL to wait for
        h.workers.remove(b)
        await wait_for(lambda: len(a.runners) == PARTITIONS, TTL * 3, "hand back")
    finally:
        await h.close()


def sites_of(partitions: Collection[int]) -> set[str]:
    return {
        f"home-{i}" for i in range(SITES) if partition_of(f"home-{i}", PARTITIONS) in partitions
    }


def runtime_sites(worker: DetectorWorker) -> set[str]:
    return {site for runner in worker.runners.values() for site in runner.runtime.sites}


async def test_a_worker_holds_only_its_partitions_sites_and_gains_them_on_takeover(
    nats_cluster: NatsCluster, tmp_path: Path
) -> None:
    """The memory of a detector worker follows its share: its registry and its runtimes
    hold the sites of its partitions only; it drops those it gives up at a rebalance and
    reads those it takes over from a dead worker, whose alerts it then raises."""
    await wipe(nats_cluster.url)
    settings = cluster_settings(nats_cluster.url, tmp_path)
    h = Harness(settings, await open_jetstream(settings, name="test"))
    everything = sites_of(range(PARTITIONS))
    try:
        a = await h.worker("worker-a")
        assert set(a.registry.current().sites) == everything, "alone: every partition's sites"
        b = await h.worker("worker-b")
        await wait_for(
            lambda: len(a.runners) == len(b.runners) == PARTITIONS // 2, TTL * 6, "rebalance"
        )
        # Given up at the rebalance: gone from the registry of the worker that held them.
        assert set(a.registry.current().sites) == sites_of(list(a.runners))
        assert set(b.registry.current().sites) == sites_of(list(b.runners))
        assert sites_of(list(a.runners)) and sites_of(list(b.runners)), "homes on both sides"
        seq = await h.publish(presses(0, 1))
        await h.caught_up([a, b], seq)
        assert runtime_sites(a) == sites_of(list(a.runners))
        assert runtime_sites(b) == sites_of(list(b.runners))

        # A site added to the registry reaches only the worker holding its partition.
        added = next(
            f"home-new-{i}"
            for i in range(100)
            if partition_of(f"home-new-{i}", PARTITIONS) in b.runners
        )
        extra = home_site(
            site_id=added,
            devices=[{"id": "sos", "kind": "sos_button", "room": "bedroom"}],
            device_suffix=f"-{added}",
        )
        await apply_document(h.sessions, RegistryDocument(sites=[extra]))
        await a.registry.refresh()
        await b.registry.refresh()
        assert added in b.registry.current().sites
        assert added not in a.registry.current().sites

        die(b)
        h.workers.remove(b)
        await wait_for(lambda: len(a.runners) == PARTITIONS, TTL * 6, "takeover")
        assert set(a.registry.current().sites) == everything | {added}
        seq = await h.publish(presses(1, 2))
        await h.caught_up([a], seq)
        assert runtime_sites(a) == everything
        raised = {t.site_id for t in await stored_transitions(nats_cluster.url)}
        assert raised == everything, "the taken-over homes' presses raised too"
    finally:
        await h.close()


def status_tracker(registry: PartitionRegistry) -> SiteStatusTracker:
    async def no_alerts() -> dict[str, int]:
        return {}

    async def unused(lines: list[str]) -> None:
        raise AssertionError("the test reads the points itself")

    return SiteStatusTracker(registry.current, no_alerts, unused, WallClock())


def status_sites(lines: list[str]) -> dict[str, str]:
    """Site id → its `online` field, from `site_status` points."""
    out: dict[str, str] = {}
    for line in lines:
        if line.startswith("site_status,"):
            site = re.search(r",site=([^, ]+)", line)
            online = re.search(r" (?:.*,)?online=(\d+)i?", line)
            assert site and online, line
            out[site.group(1)] = online.group(1)
    return out


async def test_each_worker_writes_the_status_of_the_sites_it_holds_and_none_before_it_heard(
    nats_cluster: NatsCluster, tmp_path: Path
) -> None:
    """The map's site status in a cluster: each detector worker writes the points of the
    sites of its partitions, fed by their readings; no site twice, none left out, and a
    worker that has just taken a partition does not paint its homes offline."""
    await wipe(nats_cluster.url)
    settings = cluster_settings(nats_cluster.url, tmp_path)
    h = Harness(settings, await open_jetstream(settings, name="test"))
    try:
        held_a, held_b = h.registry(), h.registry()
        a = await h.worker("worker-a", status_tracker(held_a), held_a)
        b = await h.worker("worker-b", status_tracker(held_b), held_b)
        await wait_for(
            lambda: len(a.runners) == len(b.runners) == PARTITIONS // 2, TTL * 6, "rebalance"
        )
        assert a.status is not None and b.status is not None
        assert a.status.lines(time.time(), {}) == [], "nothing heard yet: no site written"
        assert b.status.lines(time.time(), {}) == []
        seq = await h.publish(presses(0, 1))
        await h.caught_up([a, b], seq)
        of_a = status_sites(a.status.lines(time.time(), {}))
        of_b = status_sites(b.status.lines(time.time(), {}))
        assert not set(of_a) & set(of_b), "no site written by two workers"
        assert set(of_a) | set(of_b) == {f"home-{i}" for i in range(SITES)}
        for worker, sites in ((a, of_a), (b, of_b)):
            assert {partition_of(s, PARTITIONS) for s in sites} <= set(worker.runners)
        assert set(of_a.values()) == set(of_b.values()) == {"1"}, "every home heard: online"
    finally:
        await h.close()


async def test_a_worker_reads_the_sites_of_the_partitions_it_took_in_one_read(
    nats_cluster: NatsCluster, tmp_path: Path
) -> None:
    """A turn's partitions have their sites read together before they start: started side
    by side, the first read one partition and the next the rest, and a worker taking a
    dead worker's dozens of partitions read them a few at a time (~0.5 s a read under
    load, the newcomer's share of the hand-over time in `bench cluster`)."""
    await wipe(nats_cluster.url)
    settings = cluster_settings(nats_cluster.url, tmp_path)
    h = Harness(settings, await open_jetstream(settings, name="test"))
    registry = h.registry()
    reads: list[set[int]] = []
    read = registry._read

    async def counted(partitions: set[int]) -> None:
        reads.append(set(partitions))
        await read(partitions)

    registry._read = counted  # type: ignore[method-assign]
    try:
        a = await h.worker("worker-a", registry=registry)
        assert set(a.runners) == set(range(PARTITIONS))
        assert reads == [set(range(PARTITIONS))]
        assert set(registry.current().sites) == sites_of(range(PARTITIONS))
    finally:
        await h.close()
