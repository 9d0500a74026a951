"""Partition ownership on a real three-node NATS cluster, under a slow restore."""

from __future__ import annotations

import asyncio
from pathlib import Path

from cluster.jetstream import open_jetstream
from cluster.ownership import PartitionOwnership
from eldercare.settings import Settings
from eldercare_app.local_services import NatsCluster
from tests.helpers.cluster import wipe

PARTITIONS = 4
TTL = 1.5


async def test_leases_taken_stay_renewed_while_a_slow_first_turn_restores_them(
    nats_cluster: NatsCluster, tmp_path: Path
) -> None:
    """A lone worker on a loaded machine restores every partition in its first turn; that
    outlasting the TTL must not cost it the leases it is restoring (it did: the renewals
    started only after the first turn, and the worker lost every partition it took)."""
    await wipe(nats_cluster.url)
    settings = Settings(
        run_dir=tmp_path / "run",
        nats_url=nats_cluster.url,
        cluster_partitions=PARTITIONS,
        cluster_replicas=3,
        cluster_lease_ttl_s=TTL,
    )
    stream = await open_jetstream(settings, name="test")
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
