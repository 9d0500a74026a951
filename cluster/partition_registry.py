"""The registry as a detector worker needs it: only the sites of the partitions it holds.

A worker follows a share of the homes; holding the whole registry cost every worker the
same memory whatever its share (~37 MB per 1,000 registered homes at 10,000 homes), so a
city's workers could not be made smaller by adding more of them. Here a partition's sites
are read from the store when the partition is taken (`hold`, before its runtime starts)
and dropped when it is given up (`release`, after its runtime stopped), and the held
sites are read again when the registry's version moves.

`current()` is a `RegistryIndex` of the held sites only, swapped whole like
`eldercare.registry_watch.RegistryWatcher`'s. A runtime must never see an index without
its own partition's sites (it would take them for removed from the registry and clear
their alerts), hence the order: hold, then start; stop, then release.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from sqlalchemy import select

from cluster.partitions import partition_of
from eldercare.logs import get_logger
from eldercare.periodic import Periodic
from eldercare.registry_index import PlannedAbsence, RegistryIndex
from eldercare.registry_model import RegistryDocument, Site
from eldercare.registry_store import (
    VERSION_KEY,
    RegistryMetaRow,
    Sessions,
    SiteRow,
    read_document,
    read_planned_absences,
    registry_version,
)

log = get_logger(__name__)

SITES_PER_READ = 100


class PartitionRegistry:
    name = "partition-registry"

    def __init__(self, sessions: Sessions, partitions: int, *, poll_s: float = 2.0) -> None:
        self.sessions = sessions
        self.partitions = partitions
        self._sites: dict[int, RegistryIndex] = {}  # held partition → its sites
        self._absences: dict[tuple[str, str], PlannedAbsence] = {}  # of the held sites
        self._version = 0  # the registry version every held site was read at (or older)
        self._index = RegistryIndex.empty()
        # Gains run side by side (`cluster.ownership.GAINS_AT_ONCE`): one read at a time,
        # and the partitions asked for meanwhile are read together by the next one.
        self._lock = asyncio.Lock()
        self._wanted: set[int] = set()
        self._loop = Periodic("partition-registry-watch", self.refresh, poll_s)

    def current(self) -> RegistryIndex:
        return self._index

    @property
    def held(self) -> frozenset[int]:
        return frozenset(self._sites)

    async def hold(self, partition: int) -> None:
        """Read the partition's sites into `current()` (at once if held already)."""
        await self.hold_all([partition])

    async def hold_all(self, partitions: Iterable[int]) -> None:
        """Read these partitions' sites into `current()`, in one read (a worker taking
        dozens of partitions read them a few at a time, ~0.5 s a read under load)."""
        missing = {p for p in partitions if p not in self._sites}
        if not missing:
            return
        self._wanted |= missing
        async with self._lock:
            wanted = {p for p in self._wanted if p not in self._sites}
            self._wanted -= wanted
            if not wanted:
                return  # read by the call that held the lock before
            if await registry_version(self.sessions) != self._version:
                wanted |= set(self._sites)  # the others are stale: read them again too
            await self._read(wanted)

    async def release(self, partition: int) -> None:
        """Drop the partition's sites (its runtime has stopped)."""
        async with self._lock:
            if self._sites.pop(partition, None) is None:
                return
            held = self._site_ids()
            self._absences = {k: v for k, v in self._absences.items() if k[0] in held}
            self._publish()

    async def refresh(self) -> RegistryIndex:
        """Read the held sites again if the registry changed since they were read."""
        async with self._lock:
            if self._sites and await registry_version(self.sessions) != self._version:
                await self._read(set(self._sites))
        return self._index

    async def start(self) -> None:
        # A store hiccup does not stop the watch: the loop logs it and polls again.
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    def _site_ids(self) -> set[str]:
        return {site_id for part in self._sites.values() for site_id in part.sites}

    async def _read(self, partitions: set[int]) -> None:
        async with self.sessions() as session, session.begin():
            # The ids only (a few bytes a site) to pick the partitions' sites, then those.
            ids = (await session.scalars(select(SiteRow.id))).all()
            wanted = [i for i in ids if partition_of(i, self.partitions) in partitions]
            # A few hundred sites a read: the rows and their decoded JSON are garbage once
            # validated, and read all at once they spread the long-lived models over far
            # more memory than they need, which the process then keeps (measured: +45 MB
            # for 2,000 sites read at once, ~15 MB of it live).
            sites: list[Site] = []
            for start in range(0, len(wanted), SITES_PER_READ):
                part = await read_document(session, wanted[start : start + SITES_PER_READ])
                sites.extend(part.sites)
            absences = await read_planned_absences(session)
            version = int(
                await session.scalar(
                    select(RegistryMetaRow.value).where(RegistryMetaRow.key == VERSION_KEY)
                )
                or 0
            )
        if partitions >= set(self._sites) or version == self._version:
            self._version = version
        # else the sites held before were read at an older version: `_version` stays
        # theirs, so the next `refresh` reads them all again.
        read: dict[int, list[Site]] = {p: [] for p in partitions}
        for site in sites:
            read[partition_of(site.id, self.partitions)].append(site)
        for partition, sites in read.items():
            self._sites[partition] = RegistryIndex(
                RegistryDocument.model_construct(sites=sites), version, devices_now=False
            )
        held = self._site_ids()
        self._absences = {k: v for k, v in absences.items() if k[0] in held}
        self._publish()
        log.info(
            "partition sites read",
            extra={"partitions": sorted(partitions), "sites": len(sites)},
        )

    def _publish(self) -> None:
        # Sites already held keep their objects: a runtime compares a site's entry by
        # identity first, so an unchanged site costs no comparison and no rebuild. The
        # sites passed every check when they were applied, and partitions never share a
        # site: the parts are merged without validating again.
        parts = [self._sites[p] for p in sorted(self._sites)]
        # Devices resolved only if asked: the worker's readings name their site.
        self._index = RegistryIndex.merged(parts, self._version, self._absences, devices_now=False)
