"""The current registry for a running process: one snapshot, swapped whole on change.

Ingest, detectors and alerts read `current()` on their hot paths, so it is a
plain attribute read; a background task checks the store's version counter and
reloads the index only when it moved (an `apply` or an API edit). Parts that must
act on a change (e.g. the broker's ACL, wired in `eldercare_app.wiring`) register an
`on_change` callback; the watcher itself knows nothing of them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from eldercare.logs import get_logger
from eldercare.periodic import Periodic
from eldercare.registry_index import RegistryIndex
from eldercare.registry_store import Sessions, load_index, registry_version

log = get_logger(__name__)

OnChange = Callable[[RegistryIndex], Awaitable[None]]


class RegistryWatcher:
    name = "registry"

    def __init__(
        self, sessions: Sessions, *, poll_s: float = 2.0, on_change: Sequence[OnChange] = ()
    ) -> None:
        self.sessions = sessions
        self.poll_s = poll_s
        self.on_change: list[OnChange] = list(on_change)  # called after each new version
        self._index = RegistryIndex.empty()
        self._notified: int | None = None  # the version the callbacks last saw
        self._loop = Periodic("registry-watch", self.refresh, poll_s)

    def current(self) -> RegistryIndex:
        return self._index

    async def refresh(self) -> RegistryIndex:
        version = await registry_version(self.sessions)
        if version != self._index.version or not self._index.sites:
            self._index = await load_index(self.sessions)
            log.info(
                "registry loaded",
                extra={"version": self._index.version, "sites": len(self._index.sites)},
            )
        if self._index.version != self._notified:
            self._notified = self._index.version
            await self._notify(self._index)
        return self._index

    async def _notify(self, index: RegistryIndex) -> None:
        for callback in self.on_change:
            try:
                await callback(index)
            except Exception:  # one listener's failure must not stop the reload or the others
                log.exception("registry change listener failed")

    async def start(self) -> None:
        await self.refresh()
        # A store hiccup does not stop the watch: the loop logs it and polls again.
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
