"""The detector runtime: routes readings to per-site detectors and drives their timers.

Two parts: the pure host (`detectors.detector_host.DetectorHost`, over each site's
`detectors.site_detectors.SiteDetectors`) feeds readings to the rules and collects
their transitions with no I/O; `DetectorRuntime` here is the async side: the lock,
the timer and snapshot loops, snapshot saves and loads, and the hand-on to the sink.
The rules below hold for both.

Partitioning: the site id is the partition key. Every reading of a site goes to
that site's detector set (`SiteDetectors`), built lazily from the registry and
rebuilt, carrying its detectors' state over, when the site's registry entry
changes. A deployment that splits sites across workers splits by site id.

Time:
- `wall` mode (live): a timer task advances every site with a timer due by the
  wall clock; a transition from a timer is stamped with its due time. A site with
  nothing due keeps its clock (its last event), so the next reading, published a
  moment before the tick, still counts at its own time.
- `event` mode (replay, simulation): a site's clock advances with its own
  readings; after each batch, sites that have fallen behind the global watermark
  (the newest event time seen anywhere) by more than `lateness_s` are advanced to
  `watermark - lateness_s`, so a silent site's silence is judged against the rest
  of the world. Timers fire stamped with their due time, so the same readings
  give the same transitions whatever the batch boundaries.

Order and duplicates: a batch is sorted by event time per site. A reading seen
before (same device, stream and event time) within the last `dedupe_s` is dropped
(the keys are kept in arrival order and forgotten from the front).
A reading older than its site's clock (a slow device clock, a redelivery, a spool
draining) is applied at the site's current time: its effect counts, its timers
start now, and nothing already emitted moves back in time. Exception: a detector
that declares a stream in `event_time_streams` (the wearable fall detector, for
ACCEL batches) gets such readings with their own `ts`, because its samples are
timed from it; a 1 s batch routinely starts before another sensor's latest event.
One older than `dedupe_s` cannot be told from a redelivery and is left out of
detection (ingest still stores it), unless it is a momentary emergency
(`detectors.emergencies`: an SOS press, a reported fall): those are always applied,
their keys kept apart for `EMERGENCY_MEMORY_S` to tell a redelivery, and what they
raise or update carries `details["late_s"]` when they came over a minute late.
In `event` mode a reading without its own event time (`Reading.time_from_payload`
false: ingest stamped it with the receive time, e.g. a plain-string availability)
neither moves a site's clock nor the watermark: it is applied at the site's clock (or
the watermark), and left out before either exists. All counted in
`eldercare_detector_readings_late_total` and
`eldercare_detector_readings_dropped_total{cause}`.

Containment: an exception inside one detector's `update`, `advance` or `next_due`
is caught per detector (logged once per site, detector and cause; counted in
`eldercare_detector_errors_total{cause,detector}`); that reading or timer is skipped
for that detector only, and `handle_readings` returns normally, so one bad reading
can never become a poison message that ingest redelivers forever.

Removal: a site that disappears from a loaded registry (not the empty placeholder a
process starts with) loses its detector set; each of its open conditions (the runtime
keeps the raised, not yet cleared (kind, resident) of every site, in its snapshot) is
cleared with a `clear` transition at the site's clock, and its snapshot rows are
deleted at the next snapshot save. A site removed while the process was down is
handled the same way from its stored snapshot.

Handing on (at least once): transitions go to the sink (the alert pipeline) before
`handle_readings`, `tick` or `advance_to` returns, and a batch returns only once the
sink has stored them, so ingest acknowledges a reading only after its transitions
are durable. Transitions the sink did not take (it raised, or the call was cancelled,
e.g. ingest reconnecting) are kept, in order, and handed on before anything newer:
a redelivered reading is then rightly a duplicate (its transitions are on their way),
and `handle_readings` does not return, so nothing is acknowledged, until they are
stored. A site with such transitions is not snapshotted: after a crash its last
snapshot predates the unacknowledged readings, which the broker redelivers and the
detectors apply afresh.

Persistence: detector snapshots go to the `detector_snapshots` table every
`snapshot_every_s` (sites that changed) and on stop, in chunks of `snapshot_chunk`
sites with readings handled in between, and are restored when a site's detectors
are first built, so a restart resumes open conditions without re-raising or losing
them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence

from detectors.detector_host import ClockMode, DetectorHost
from detectors.settings import Overrides
from detectors.site_detectors import SiteDetectors, _errors
from detectors.snapshot_store import SiteStates, SnapshotStore
from eldercare import metrics
from eldercare.clock import Clock, WallClock
from eldercare.domain import Reading, Transition
from eldercare.logs import get_logger
from eldercare.periodic import Periodic
from eldercare.registry_index import RegistryIndex
from eldercare.stage_contracts import TransitionSink

log = get_logger(__name__)

__all__ = ["ClockMode", "DetectorRuntime", "SiteDetectors"]

_transitions = metrics.counter(
    "detector_transitions_total", "Transitions emitted, by kind and action", ["kind", "action"]
)
_timer_lag = metrics.gauge(
    "detector_timer_lag_seconds",
    "Wall mode: how long after its due time the latest timer transition was emitted",
)


class DetectorRuntime:
    """Implements `ReadingSink` and `Component`; emits to a `TransitionSink`."""

    name = "detectors"

    def __init__(
        self,
        index_provider: Callable[[], RegistryIndex],
        sink: TransitionSink,
        *,
        clock_mode: ClockMode = "wall",
        clock: Clock | None = None,
        snapshot_store: SnapshotStore | None = None,
        global_overrides: Overrides | None = None,
        lateness_s: float = 120.0,
        dedupe_s: float = 900.0,
        tick_s: float = 1.0,
        snapshot_every_s: float = 60.0,
        on_growth: Callable[[], None] | None = None,
        snapshot_chunk: int = 100,
    ) -> None:
        if clock_mode not in ("wall", "event"):
            raise ValueError(f"clock_mode must be 'wall' or 'event', not {clock_mode!r}")
        self.index_provider = index_provider
        self.sink = sink
        self.clock_mode: ClockMode = clock_mode
        self.clock: Clock = clock or WallClock()
        self.snapshot_store = snapshot_store
        self.global_overrides = global_overrides
        self.lateness_s = lateness_s
        self.dedupe_s = max(dedupe_s, lateness_s)
        self.tick_s = tick_s
        self.snapshot_every_s = snapshot_every_s
        self.snapshot_chunk = max(1, snapshot_chunk)
        # The sites' detectors, fed and advanced with no I/O (`DetectorHost`).
        self.host = DetectorHost(
            index_provider,
            clock_mode=clock_mode,
            clock=self.clock,
            global_overrides=global_overrides,
            lateness_s=lateness_s,
            dedupe_s=self.dedupe_s,
            on_growth=on_growth,
        )
        self._lock = asyncio.Lock()
        self._loops: list[Periodic] = []  # timer ticks (wall mode), snapshot saves
        # Emitted, not yet taken by the sink (stored): handed on first, never dropped.
        self._unstored: list[Transition] = []

    @property
    def sites(self) -> dict[str, SiteDetectors]:
        return self.host.sites

    @property
    def watermark(self) -> float | None:
        return self.host.watermark

    @watermark.setter
    def watermark(self, value: float | None) -> None:
        self.host.watermark = value

    def restore_site(self, site_id: str, states: SiteStates) -> bool:
        """See `DetectorHost.restore_site`."""
        return self.host.restore_site(site_id, states)

    # --- Component ------------------------------------------------------------------------

    async def start(self) -> None:
        if self.snapshot_store is not None:
            self.host.stored_states = await self.snapshot_store.load_all()
            loaded = len(self.host.stored_states)
            log.info("detector snapshots loaded", extra={"sites": loaded})
            self._loops.append(
                Periodic("detector-snapshots", self.save_snapshots, self.snapshot_every_s)
            )
        if self.clock_mode == "wall":  # event mode: readings and `advance_to` move time
            self._loops.append(Periodic("detector-ticks", self._timer_tick, self.tick_s))
        for loop in self._loops:
            loop.start()

    async def _save_chunk(self, site_ids: list[str]) -> None:
        assert self.snapshot_store is not None
        states: dict[str, SiteStates] = {}
        async with self._lock:
            held = self.unstored_sites()
            for site_id in site_ids:
                site = self.sites.get(site_id)
                if site is None:  # removed meanwhile: its rows go at the next save
                    continue
                if site_id in held:  # its state is ahead of the store: saved once stored
                    continue
                states[site_id] = site.snapshot()
                site.dirty = False
        try:
            await self.snapshot_store.save(states)
        except BaseException:
            for site_id in states:
                if (site := self.sites.get(site_id)) is not None:
                    site.dirty = True
            raise
        await asyncio.sleep(0)  # a write of few sites may not have yielded at all

    async def _timer_tick(self) -> None:
        try:
            await self.tick()
        except Exception:  # counted here as before; `Periodic` logs it and goes on
            _errors.inc(cause="tick", detector="")
            raise

    async def stop(self, unstored_wait_s: float = 5.0, save: bool = True) -> None:
        """Stop the loops, hand on what is unstored and save every site; `save=False` when
        this runtime lost its sites to another process (a lost lease), whose snapshots must
        not be overwritten with these older states (and whose unacknowledged readings the
        new owner is given again)."""
        for loop in self._loops:
            await loop.stop()
        self._loops = []
        if not save:
            return
        if self.clock_mode == "event" and self.watermark is not None:
            # A replay has ended: everything received is handled, so timers due up to the
            # last event time fire (readings only advance them to it minus the lateness).
            # The alert pipeline stops after the detectors and still takes them. A store
            # that refuses them leaves them unstored: handled (and logged) just below.
            with contextlib.suppress(Exception):
                await self.advance_to(self.watermark)
        if self._unstored:
            try:
                async with self._lock:
                    await asyncio.wait_for(self._hand_on_unstored(), unstored_wait_s)
            except Exception:  # TimeoutError included
                # Their readings were never acknowledged: the broker redelivers them, and
                # these sites' snapshots (not saved below) predate them.
                log.error(
                    "transitions not stored at stop; their readings will be redelivered",
                    extra={"transitions": len(self._unstored), "sites": len(self.unstored_sites())},
                )
        await self.save_snapshots(only_dirty=False)

    # --- ReadingSink ----------------------------------------------------------------------

    async def handle_readings(self, readings: Sequence[Reading]) -> None:
        async with self._lock:
            await self._emit(self.host.feed(readings))

    async def tick(self) -> None:
        """Wall mode: fire every timer due by the wall clock (the timer task calls this)."""
        async with self._lock:
            now = self.clock.now()
            removed, fired = self.host.fire_due(now)
            if fired:
                _timer_lag.set(max(now - t.ts for t in fired))
            await self._emit(removed + fired)

    async def advance_to(self, now: float) -> None:
        """Event mode: the whole replay has reached `now` (e.g. its end); fire timers due."""
        async with self._lock:
            await self._emit(self.host.advance_to(now))

    # --- internals ------------------------------------------------------------------------

    async def _emit(self, transitions: list[Transition]) -> None:
        """Hand on these transitions, after any an earlier call could not (see the module
        docstring); returns once the sink took them all."""
        for t in transitions:
            _transitions.inc(kind=t.kind.value, action=t.action.value)
        self.host.note(transitions)
        self._unstored.extend(transitions)
        await self._hand_on_unstored()

    async def _hand_on_unstored(self) -> None:
        if not self._unstored:
            return
        batch = list(self._unstored)
        # Raises (or is cancelled) with the batch still kept: nothing here is dropped.
        await self.sink.handle_transitions(batch)
        del self._unstored[: len(batch)]

    def unstored_sites(self) -> set[str]:
        """Sites with transitions the sink has not stored yet."""
        return {t.site_id for t in self._unstored}

    async def save_snapshots(self, only_dirty: bool = True) -> None:
        """Save the sites that changed (every site with `only_dirty` false), in chunks of
        `snapshot_chunk` sites: each chunk is taken under the lock (a site's snapshot is
        atomic) and written in its own transaction, and readings are handled between
        chunks, so thousands of sites never hold the event loop for seconds at once."""
        if self.snapshot_store is None:
            return
        async with self._lock:
            todo = [sid for sid, site in self.sites.items() if site.dirty or not only_dirty]
            removed, self.host.to_delete = self.host.to_delete, set()
        try:
            for start in range(0, len(todo), self.snapshot_chunk):
                await self._save_chunk(todo[start : start + self.snapshot_chunk])
            for site_id in sorted(removed):
                await self.snapshot_store.delete_site(site_id)
        except BaseException:  # not written (database down, or stopping): again next time
            self.host.to_delete |= removed
            raise
