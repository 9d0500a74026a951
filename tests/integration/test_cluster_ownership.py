"""Partition ownership on a real three-node NATS cluster, under a slow restore and a
slow NATS; leases renewed and released from two tasks at once."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from cluster.jetstream import JetStream, open_jetstream
from cluster.leases import Lease
from cluster.ownership import GAINS_AT_ONCE, PartitionOwnership, lease_key
from eldercare.settings import Settings
from eldercare_app.local_services import NatsCluster
from tests.helpers.cluster import wipe
from tests.helpers.polling import wait_for

PARTITIONS = 4
TTL = 1.5


async def test_leases_taken_stay_renewed_while_a_slow_first_turn_restores_them(
    nats_cluster: NatsCluster, tmp_path: Path
) -> None:
    """A lone worker on a loaded machine restores every partition in its first turn; that
    outlasting the TTL must not cost it the leases it is restoring (it did: the renewals
    started only after the first turn, and the worker lost every partition it took)."""
    stream = await _leases_bucket(nats_cluster, tmp_path, PARTITIONS)
    lost: list[int] = []

    async def slow_restore(partition: int) -> None:
        # Real time, not a fake clock: the leases expire on the NATS servers' clocks.
        await asyncio.sleep(TTL * 3)

    async def on_loss(partition: int, graceful: bool) -> None:
        if not graceful:
            lost.append(partition)

    ownership = PartitionOwnership(stream, "slow", PARTITIONS, TTL, slow_restore, on_loss)
    try:
        await ownership.start()
        assert lost == [], "leases lost while their partitions were restored"
        assert set(ownership.held) == set(range(PARTITIONS))
        assert all([await lease.renew() for lease in ownership.held.values()])
    finally:
        await ownership.stop()
        await stream.close()


async def _fresh_cluster(
    nats_cluster: NatsCluster, tmp_path: Path, partitions: int, ttl: float = TTL
) -> Settings:
    """Settings for a cluster whose buckets and streams were just wiped."""
    await wipe(nats_cluster.url)
    return Settings(
        run_dir=tmp_path / "run",
        nats_url=nats_cluster.url,
        cluster_partitions=partitions,
        cluster_replicas=3,
        cluster_lease_ttl_s=ttl,
    )


async def _leases_bucket(nats_cluster: NatsCluster, tmp_path: Path, partitions: int) -> JetStream:
    return await open_jetstream(
        await _fresh_cluster(nats_cluster, tmp_path, partitions), name="test"
    )


async def test_two_renewals_of_a_lease_at_once_keep_it(
    nats_cluster: NatsCluster, tmp_path: Path
) -> None:
    """A worker's renewal loop and its ownership turn both renew its leases; when they
    met on one lease, both against the same revision, the second was refused whenever
    the first was applied before it was checked (1 pair in 10 in a probe on the R3
    bucket), and the worker took its own lease for lost: the partition stopped unsaved,
    and could not be taken back until the key aged out."""
    stream = await _leases_bucket(nats_cluster, tmp_path, 1)
    try:
        lease = Lease(stream.leases, lease_key(0), "worker")
        assert await lease.take()
        for _ in range(40):
            assert list(await asyncio.gather(lease.renew(), lease.renew())) == [True, True]
        assert await lease.holder_now() == "worker"
    finally:
        await stream.close()


async def test_releasing_a_lease_someone_else_took_meanwhile_leaves_theirs(
    nats_cluster: NatsCluster, tmp_path: Path
) -> None:
    """A worker stopping gracefully releases its leases; one that expired under load and
    was taken by another worker is no longer its own. The release raised (nats-py's
    delete gives the bare 400 "wrong last sequence", not the error its update gives),
    and the stop failed half-way, its other partitions neither saved nor released (seen
    in the cluster detector tests on a loaded machine)."""
    stream = await _leases_bucket(nats_cluster, tmp_path, 1)
    try:
        mine = Lease(stream.leases, lease_key(0), "worker-a")
        assert await mine.take()
        # As if it had expired and worker-b had taken it: the key has a newer revision.
        await stream.leases.put(lease_key(0), b"worker-b")
        await mine.release()
        assert not mine.held
        assert await mine.holder_now() == "worker-b", "the other holder's lease is left alone"
    finally:
        await stream.close()


async def test_many_leases_stay_held_on_a_nats_slow_to_answer(
    nats_cluster: NatsCluster, tmp_path: Path
) -> None:
    """A loaded NATS answering each lease write in 0.1 s: a worker taking and renewing 32
    leases one after another spent 3.2 s a round, twice the TTL, and its first leases
    expired before it reached its last (the lone worker of `bench cluster` lost dozens)."""
    partitions = 32
    stream = await _leases_bucket(nats_cluster, tmp_path, partitions)
    bucket = stream.leases
    create, update = bucket.create, bucket.update

    async def slow_create(*args: Any, **kwargs: Any) -> int:
        await asyncio.sleep(0.1)
        return await create(*args, **kwargs)

    async def slow_update(*args: Any, **kwargs: Any) -> int:
        await asyncio.sleep(0.1)
        return await update(*args, **kwargs)

    bucket.create = slow_create  # type: ignore[method-assign]
    bucket.update = slow_update  # type: ignore[method-assign]
    lost: list[int] = []

    async def on_gain(partition: int) -> None:
        return None

    async def on_loss(partition: int, graceful: bool) -> None:
        if not graceful:
            lost.append(partition)

    ownership = PartitionOwnership(stream, "w", partitions, TTL, on_gain, on_loss)
    try:
        await ownership.start()
        assert set(ownership.held) == set(range(partitions)), "the lone worker takes all"
        renewals = ownership._renewals
        assert renewals is not None
        # Renewed over three TTLs (outcomes, not time: each tick is a renewal round).
        await wait_for(lambda: renewals.ticks >= 12, within_s=60, what="12 renewal rounds")
        assert lost == [], "leases lost while their holder renewed them"
    finally:
        await ownership.stop()
        await stream.close()


async def test_live_workers_counted_once_while_they_say_they_are_alive(
    nats_cluster: NatsCluster, tmp_path: Path
) -> None:
    """Two workers renewing their alive keys while a third counts them: the listing
    also handed on the puts made while it read, a worker was counted twice, the fair
    share fell below what the workers held, and they gave partitions up and took them
    back (seen in `bench cluster` on a loaded machine); it could also stop before the
    last key and count one too few."""
    stream = await _leases_bucket(nats_cluster, tmp_path, 64)
    ownership = PartitionOwnership(stream, "counter", 64, TTL, _nothing, _nothing_lost)
    stop = asyncio.Event()

    async def alive(name: str) -> None:
        while not stop.is_set():
            await stream.workers.put(name, b"alive")

    for name in ("a", "b"):
        await stream.workers.put(name, b"alive")
    putters = [asyncio.create_task(alive(name)) for name in ("a", "b")]
    try:
        counts = [await ownership.live_workers() for _ in range(40)]
        assert counts == [2] * 40
        stop.set()
        await asyncio.gather(*putters)
        await stream.workers.delete("a")  # a worker stopped
        assert await ownership.live_workers() == 1
    finally:
        stop.set()
        await asyncio.gather(*putters)
        await stream.close()


async def _nothing(partition: int) -> None:
    return None


async def _nothing_lost(partition: int, graceful: bool) -> None:
    return None


async def test_a_turn_hands_its_whole_surplus_over_side_by_side_each_saved_first(
    nats_cluster: NatsCluster, tmp_path: Path
) -> None:
    """A second worker joins a lone one holding 16 partitions: the lone one hands its 8
    surplus over in one turn, saving several at once, each still holding its lease until
    saved. It gave up four a turn, one after another (~68 s for a second worker to get
    its share in `bench cluster` on a loaded machine)."""
    partitions = 16
    stream = await _leases_bucket(nats_cluster, tmp_path, partitions)
    saving: set[int] = set()
    most_at_once = 0
    saved: list[int] = []
    lost: list[int] = []
    held_while_saved: list[bool] = []

    async def slow_save(partition: int, graceful: bool) -> None:
        nonlocal most_at_once
        if not graceful:
            lost.append(partition)
            return
        saving.add(partition)
        most_at_once = max(most_at_once, len(saving))
        # Real time: a save on a loaded store, while the leases age on the NATS servers.
        await asyncio.sleep(0.2)
        holder = await Lease(stream.leases, lease_key(partition), "probe").holder_now()
        held_while_saved.append(holder == "lone")
        saving.discard(partition)
        saved.append(partition)

    ownership = PartitionOwnership(stream, "lone", partitions, TTL, _nothing, slow_save)
    try:
        await ownership.start()
        assert len(ownership.held) == partitions
        turns = ownership._turns
        assert turns is not None
        await turns.stop()  # the turn below is the only one (the renewals go on)
        await stream.workers.put("newcomer", b"alive")  # share: 16 / 2
        await ownership.turn()
        assert len(saved) == partitions // 2, "the whole surplus in one turn"
        assert sorted(ownership.held) == sorted(set(range(partitions)) - set(saved))
        assert most_at_once > 1, "saved side by side"
        assert all(held_while_saved), "each lease held until its partition was saved"
        for partition in saved:
            free = Lease(stream.leases, lease_key(partition), "probe")
            assert await free.holder_now() is None, "released once saved"
        assert lost == []
    finally:
        await ownership.stop()
        await stream.close()


async def test_a_partition_whose_lease_is_lost_while_waiting_to_start_is_not_started(
    nats_cluster: NatsCluster, tmp_path: Path
) -> None:
    """Taken partitions start a few at a time; one whose lease was lost while it waited
    (another worker holds it now) must not start here: it did, and two workers consumed
    and saved the same sites."""
    partitions = GAINS_AT_ONCE + 2
    stream = await _leases_bucket(nats_cluster, tmp_path, partitions)
    started: list[int] = []
    lost: list[int] = []
    stolen: list[int] = []
    first_wave = asyncio.Event()

    async def slow_start(partition: int) -> None:
        started.append(partition)
        if len(started) == GAINS_AT_ONCE:
            first_wave.set()
        if partition not in stolen:
            # Real time: the renewal loop must see the stolen lease before this wave ends.
            await wait_for(lambda: bool(lost), within_s=30, what="the stolen lease seen lost")

    async def on_loss(partition: int, graceful: bool) -> None:
        if not graceful:
            lost.append(partition)

    async def steal() -> None:
        await first_wave.wait()
        waiting = next(p for p in range(partitions) if p not in started)
        stolen.append(waiting)
        await stream.leases.put(lease_key(waiting), b"thief")

    ownership = PartitionOwnership(stream, "w", partitions, TTL, slow_start, on_loss)
    thief = asyncio.create_task(steal())
    try:
        await ownership.start()
        await thief
        assert lost and set(lost) == set(stolen)
        assert stolen[0] not in started, "a partition started without its lease"
        assert stolen[0] not in ownership.held
        assert set(ownership.held) == set(range(partitions)) - set(stolen)
    finally:
        thief.cancel()
        await ownership.stop()
        await stream.close()


async def test_partitions_released_are_taken_at_once_not_at_the_next_turn(
    nats_cluster: NatsCluster, tmp_path: Path
) -> None:
    """A worker handing partitions over says so, and the others take them at once: they
    waited for their next turn, a third of a TTL later, at each step of a hand-over."""
    ttl = 60.0  # turns 20 s apart: a take within 10 s is the word, not a turn
    partitions = 4
    settings = await _fresh_cluster(nats_cluster, tmp_path, partitions, ttl)
    stream = await open_jetstream(settings, name="test-a")
    other = await open_jetstream(settings, name="test-b")
    a = PartitionOwnership(stream, "a", partitions, ttl, _nothing, _nothing_lost)
    b = PartitionOwnership(other, "b", partitions, ttl, _nothing, _nothing_lost)
    try:
        await a.start()
        await b.start()  # alive, but every partition is a's
        assert len(a.held) == partitions and not b.held
        await a.turn()  # two live workers: half handed over
        assert len(a.held) == partitions // 2
        await wait_for(lambda: len(b.held) == partitions // 2, within_s=ttl / 6, what="taken")
    finally:
        await b.stop()
        await a.stop()
        await other.close()
        await stream.close()
