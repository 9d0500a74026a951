"""Leases in a NATS key-value bucket whose entries expire with the lease TTL.

Taking a lease creates its key (refused while another holder's key lives); renewing
updates it against the revision this holder last wrote (refused once someone else
took it after an expiry); releasing deletes it the same way. A lease's calls are made
one at a time: two renewals in flight with the same revision (a worker's renewal loop
and its ownership turn) would see the second refused and take the lease, still theirs,
for lost; a release racing a renewal would delete against a stale revision and leave
the key alive for a TTL. A holder that stops
renewing loses the lease when its key ages out: that is how a dead worker's
partitions and a dead pipeline's role come free, without any process deciding it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import nats.js.errors
from nats.js.kv import KeyValue

from eldercare.logs import get_logger

log = get_logger(__name__)

# JetStream's "wrong last sequence" error codes (as nats-py's own update checks them).
WRONG_LAST_SEQUENCE = (10071, 10164)


@dataclass
class Lease:
    bucket: KeyValue
    key: str
    holder: str
    revision: int | None = None  # set while held
    _turn: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False, compare=False)

    @property
    def held(self) -> bool:
        return self.revision is not None

    async def take(self) -> bool:
        """Take the lease if it is free; True if this holder has it now."""
        async with self._turn:
            return await (self._update() if self.held else self._create())

    async def _create(self) -> bool:
        try:
            self.revision = await self.bucket.create(self.key, self.holder.encode())
        except nats.js.errors.KeyWrongLastSequenceError:
            return False
        return True

    async def renew(self) -> bool:
        """Renew the lease; False (and no longer held) if it was lost meanwhile."""
        async with self._turn:
            return await self._update()

    async def _update(self) -> bool:
        if self.revision is None:
            return False
        try:
            self.revision = await self.bucket.update(
                self.key, self.holder.encode(), last=self.revision
            )
        except nats.js.errors.KeyWrongLastSequenceError:
            log.warning("lease lost", extra={"lease": self.key, "holder": self.holder})
            self.revision = None
            return False
        return True

    async def release(self) -> None:
        """Give the lease up so another holder may take it at once (not after the TTL)."""
        async with self._turn:
            await self._delete()

    async def _delete(self) -> None:
        if self.revision is None:
            return
        revision, self.revision = self.revision, None
        try:
            await self.bucket.delete(self.key, last=revision)
        except nats.js.errors.BadRequestError as exc:
            # Already someone else's (it expired and was taken): nothing of ours to
            # release. nats-py's delete, unlike its update, raises the bare 400 for it.
            if exc.err_code not in WRONG_LAST_SEQUENCE:
                raise

    async def holder_now(self) -> str | None:
        """Who holds it according to the bucket (None when free)."""
        try:
            entry = await self.bucket.get(self.key)
        except nats.js.errors.KeyNotFoundError:
            return None
        return entry.value.decode() if entry.value else None
