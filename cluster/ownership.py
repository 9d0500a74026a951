"""Which detector worker owns which partition: leases, a fair share, rebalancing.

Every worker runs the same loop, a third of the lease TTL apart: it says it is alive
(a key in the workers bucket, expiring with the TTL), renews the partition leases it
holds, gives up what is above its fair share (partitions ÷ live workers, rounded up)
and takes free partitions up to it. A new worker therefore makes the others give
partitions up at their next turn; a dead one stops renewing and its partitions come
free a TTL later, to be taken by whoever looks first. No worker decides for another.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import zlib
from collections.abc import Awaitable, Callable

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from cluster.jetstream import WORKERS_BUCKET, JetStream
from cluster.leases import Lease
from cluster.partitions import fair_share
from eldercare.logs import get_logger
from eldercare.metrics import gauge
from eldercare.periodic import Periodic

log = get_logger(__name__)

_owned = gauge("eldercare_cluster_partitions_owned", "partitions this worker holds leases for")

# Called with a partition just taken (restore and consume) or about to be released
# (`graceful`: save and stop; not graceful: the lease was lost, stop without saving).
OnGain = Callable[[int], Awaitable[None]]
OnLoss = Callable[[int, bool], Awaitable[None]]
# Called with every partition a turn took, before their `OnGain`s: what they all need
# (their sites) is read in one go instead of once per partition.
OnTaking = Callable[[list[int]], Awaitable[None]]


GAINS_AT_ONCE = 8
# A turn's surplus is handed over side by side, this many at a time, each saved before its
# lease is released. One after another, four a turn, a second worker took ~68 s to get its
# share on a loaded machine (BENCHMARKS.md, "Hand-over pace").
RELEASES_AT_ONCE = 8


class LostBeforeStart(Exception):
    """A partition's lease was lost while its start waited for the others'."""


# Core NATS (not stored): a worker released partitions; the others take them at once
# instead of at their next turn (a third of a TTL later). A missed one costs only that wait.
RELEASED_SUBJECT = "eldercare.partitions.released"


def lease_key(partition: int) -> str:
    return f"partition.{partition}"


class PartitionOwnership:
    def __init__(
        self,
        stream: JetStream,
        worker_id: str,
        partitions: int,
        ttl_s: float,
        on_gain: OnGain,
        on_loss: OnLoss,
        on_taking: OnTaking | None = None,
    ) -> None:
        self.stream = stream
        self.worker_id = worker_id
        self.partitions = partitions
        self.ttl_s = ttl_s
        self.on_gain = on_gain
        self.on_loss = on_loss
        self.on_taking = on_taking
        self.held: dict[int, Lease] = {}
        self._turns: Periodic | None = None
        self._renewals: Periodic | None = None
        self._released: Subscription | None = None
        # Each worker looks at free partitions from its own starting point, so workers
        # starting together do not all race for partition 0.
        start = zlib.crc32(worker_id.encode()) % partitions
        self._order = [(start + i) % partitions for i in range(partitions)]

    async def start(self) -> None:
        # Both are `Periodic`s, watched in `eldercare.health`: a stuck turn or renewal
        # shows on the role's health. Renewals on their own, and running before the first
        # turn: a turn restoring many partitions (a lone worker takes them all) or handing
        # them over (each saved first) may take longer than a TTL on a loaded machine, and
        # must not let the leases taken or kept expire meanwhile.
        self._renewals = Periodic(
            f"lease-renewal:{self.worker_id}",
            self._renew_once,
            self.ttl_s / 4,
            overdue_after_s=self.ttl_s,  # failing that long, the leases have expired
        )
        self._renewals.start()
        await self.turn()
        self._turns = Periodic(
            f"partition-ownership:{self.worker_id}", self._turn_once, self.ttl_s / 3
        )
        self._turns.start()
        self._released = await self.stream.nc.subscribe(RELEASED_SUBJECT, cb=self._on_released)

    async def _on_released(self, msg: Msg) -> None:
        if msg.data.decode() != self.worker_id and self._turns is not None:
            self._turns.wake()

    async def stop(self) -> None:
        """Hand every partition back (saved) so the others take them without waiting."""
        if self._released is not None:
            with contextlib.suppress(nats.errors.Error):
                await self._released.unsubscribe()
            self._released = None
        for loop in (self._turns, self._renewals):
            if loop is not None:
                await loop.stop()
        self._turns = self._renewals = None
        await self._give_up_all(sorted(self.held), deadline=None)
        await self._say_released()
        with contextlib.suppress(nats.js.errors.Error):
            await self.stream.workers.delete(self.worker_id)

    async def _turn_once(self) -> None:
        # A failure (NATS away for a moment) is logged by `Periodic`; the next turn retries.
        await self.turn()

    async def _renew_once(self) -> None:
        await self.stream.workers.put(self.worker_id, b"alive")
        await self._renew_all()

    async def live_workers(self) -> int:
        # One snapshot of the bucket's keys (its stream's subjects), each looked up for a
        # delete marker. Not nats-py's `keys()`: it lists through a watcher, which also
        # hands on the puts made while it reads (a worker counted twice) and may stop
        # before the last key (one missed); the fair share then moved turn to turn, and
        # workers gave partitions up and took them back.
        prefix = f"$KV.{WORKERS_BUCKET}."
        info = await self.stream.js.stream_info(f"KV_{WORKERS_BUCKET}", subjects_filter=">")
        keys = [s.removeprefix(prefix) for s in info.state.subjects or {}]
        alive = await asyncio.gather(*(self._alive(key) for key in keys))
        return sum(alive)

    async def _alive(self, worker: str) -> bool:
        try:
            await self.stream.workers.get(worker)
        except nats.js.errors.NotFoundError:  # deleted (a worker stopped) or aged out
            return False
        return True

    async def turn(self) -> None:
        began = time.monotonic()
        await self.stream.workers.put(self.worker_id, b"alive")
        await self._renew_all()
        share = fair_share(self.partitions, max(1, await self.live_workers()))
        surplus = sorted(self.held, reverse=True)[: max(0, len(self.held) - share)]
        # Releases not begun within a TTL wait for the next turn, which counts the live
        # workers again (one may have died or joined meanwhile).
        await self._give_up_all(surplus, deadline=began + self.ttl_s)
        if surplus:
            await self._say_released()
        taken: dict[int, Lease] = {}
        try:
            # Tried a wanting's worth at a time, side by side: one after another, the
            # first leases of dozens taken on a loaded NATS expired before the last was
            # (they are renewed only once held, below).
            candidates = [p for p in self._order if p not in self.held]
            while candidates and len(self.held) + len(taken) < share:
                wanted = share - len(self.held) - len(taken)
                batch, candidates = candidates[:wanted], candidates[wanted:]
                leases = [Lease(self.stream.leases, lease_key(p), self.worker_id) for p in batch]
                got = await asyncio.gather(*(lease.take() for lease in leases))
                taken.update(
                    (p, lease) for p, lease, ok in zip(batch, leases, got, strict=True) if ok
                )
        finally:
            # Whatever was taken is ours to start (or to release if it fails), even when
            # NATS stopped answering halfway through the loop.
            if taken:
                await self._start(taken)
        _owned.set(len(self.held))

    async def _start(self, taken: dict[int, Lease]) -> None:
        # Restored side by side (a few at a time, each creates a consumer): one after
        # another, a dead worker's dozens of partitions would take many seconds.
        self.held.update(taken)
        if self.on_taking is not None:
            try:
                await self.on_taking(list(taken))
            except Exception:  # each gain reads what it needs itself
                log.exception(
                    "reading the partitions taken failed", extra={"partitions": list(taken)}
                )
        limit = asyncio.Semaphore(GAINS_AT_ONCE)

        async def gain(partition: int) -> None:
            async with limit:
                # Lost while waiting its turn (its renewal refused): another worker may
                # hold it now, so it is not started here. No await between this check and
                # `on_gain`, which notes a loss from then on.
                if self.held.get(partition) is not taken[partition]:
                    raise LostBeforeStart(partition)
                await self.on_gain(partition)

        outcomes = await asyncio.gather(*(gain(p) for p in taken), return_exceptions=True)
        for partition, outcome in zip(taken, outcomes, strict=True):
            if isinstance(outcome, LostBeforeStart):
                log.warning(
                    "partition lease lost before it started", extra={"partition": partition}
                )
                # Said again: what `on_taking` read for it may have come after the first.
                await self.on_loss(partition, False)
            elif isinstance(outcome, BaseException):
                log.error(
                    "partition start failed",
                    exc_info=outcome,
                    extra={"partition": partition},
                )
                lease = self.held.pop(partition, None)  # None: lost meanwhile
                if lease is not None:
                    await lease.release()
            else:
                log.info("partition taken", extra={"partition": partition})
        await self._renew_all()  # the restores may have taken a good part of the TTL

    async def _renew_all(self) -> None:
        # All at once: one round trip, not one per lease (64 renewals one after another
        # on a loaded NATS outlasted the TTL, and the last ones expired while renewing).
        held = list(self.held.items())
        renewed = await asyncio.gather(*(lease.renew() for _, lease in held))
        for (partition, lease), ok in zip(held, renewed, strict=True):
            if ok or self.held.get(partition) is not lease:
                continue  # kept, or handed over meanwhile (turns and renewals interleave)
            del self.held[partition]
            log.warning("partition lease lost", extra={"partition": partition})
            await self.on_loss(partition, False)

    async def _say_released(self) -> None:
        with contextlib.suppress(nats.errors.Error):  # the others' turns come anyway
            await self.stream.nc.publish(RELEASED_SUBJECT, self.worker_id.encode())

    async def _give_up_all(self, partitions: list[int], deadline: float | None) -> None:
        """Hand these partitions over, `RELEASES_AT_ONCE` side by side; none begun after
        `deadline` (monotonic). The leases stay renewed meanwhile by their own task."""
        limit = asyncio.Semaphore(RELEASES_AT_ONCE)

        async def give_up(partition: int) -> None:
            async with limit:
                if deadline is not None and time.monotonic() >= deadline:
                    return  # still held: given up at a later turn
                await self._give_up(partition)

        outcomes = await asyncio.gather(*(give_up(p) for p in partitions), return_exceptions=True)
        errors = [o for o in outcomes if isinstance(o, BaseException)]
        if errors:  # after the others ended: none is left half-saved by a sibling's error
            raise errors[0]

    async def _give_up(self, partition: int) -> None:
        # Still held (and renewed) while it is saved, so no one restores it half-saved.
        try:
            await self.on_loss(partition, True)
        finally:
            lease = self.held.pop(partition, None)
            if lease is not None:
                await lease.release()
        log.info("partition released", extra={"partition": partition})
