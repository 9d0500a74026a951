"""The detector runtime: routes readings to per-site detectors and drives their timers.

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
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from detectors.base import Detector
from detectors.catalogue import build_site_detectors, site_context
from detectors.emergencies import EMERGENCIES, LATE_MARK_S, emergency_kinds
from detectors.resident_state import NAME as PICTURE_NAME
from detectors.resident_state import ResidentStateModel
from detectors.settings import DetectorSettingsError, Overrides
from detectors.snapshot_store import SiteStates, SnapshotStore
from eldercare import metrics
from eldercare.clock import Clock, WallClock
from eldercare.domain import (
    AlertKind,
    FieldValue,
    Reading,
    Severity,
    Stream,
    Transition,
    TransitionAction,
)
from eldercare.logs import get_logger
from eldercare.periodic import Periodic
from eldercare.registry_index import RegistryIndex
from eldercare.registry_model import Site
from eldercare.stage_contracts import TransitionSink

log = get_logger(__name__)

ClockMode = Literal["wall", "event"]
RUNTIME_ENTRY = "_runtime"  # reserved snapshot name for the site's own bookkeeping

_readings = metrics.counter("detector_readings_total", "Readings given to detectors")
_dropped = metrics.counter(
    "detector_readings_dropped_total",
    "Readings not given to detectors, by cause",
    ["cause"],
)
_late = metrics.counter(
    "detector_readings_late_total", "Readings older than their site's clock, applied at it"
)
_transitions = metrics.counter(
    "detector_transitions_total", "Transitions emitted, by kind and action", ["kind", "action"]
)
_timer_lag = metrics.gauge(
    "detector_timer_lag_seconds",
    "Wall mode: how long after its due time the latest timer transition was emitted",
)
_sites = metrics.gauge("detector_sites", "Sites with a detector set in this worker")
_errors = metrics.counter(
    "detector_errors_total",
    "Detector failures (build, restore, update, advance, next_due, tick), by cause and detector",
    ["cause", "detector"],
)

_late_emergencies = metrics.counter(
    "detector_late_emergencies_total",
    "Emergencies (SOS, reported falls) applied over a minute after their event time",
)
EMERGENCY_MEMORY_S = 31 * 86400.0  # ingest accepts readings up to 30 days old
MAX_EMERGENCY_KEYS = 256  # per site: a stuck button cannot grow a snapshot without end

ErrorReporter = Callable[[str, str, Exception], None]  # (detector, cause, error)


def _unreported(detector: str, cause: str, error: Exception) -> None:
    _errors.inc(cause=cause, detector=detector)
    log.error("detector failed", extra={"detector": detector, "cause": cause, "error": repr(error)})


class DetectorSet(dict[str, Detector]):
    """A site's detectors by name, in canonical order; counts its own changes so the
    site's routing table follows a detector added or replaced after the build."""

    version = 0

    def _changed(self) -> None:
        self.version += 1

    def __setitem__(self, key: str, value: Detector) -> None:
        super().__setitem__(key, value)
        self._changed()

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self._changed()

    def pop(self, key: str, *default: Any) -> Any:
        self._changed()
        return super().pop(key, *default)

    def clear(self) -> None:
        super().clear()
        self._changed()

    def update(self, *args: Any, **kwargs: Any) -> None:
        super().update(*args, **kwargs)
        self._changed()

    def setdefault(self, key: str, default: Any = None) -> Any:
        self._changed()
        return super().setdefault(key, default)

    def popitem(self) -> tuple[str, Detector]:
        self._changed()
        return super().popitem()


class _Layout:
    """Which detectors (by position) take a reading of each stream; shared by every site
    with the same detectors (names and stream declarations), so it costs no memory per site."""

    __slots__ = ("event_time", "names", "routes")

    def __init__(self, detectors: Mapping[str, Detector]) -> None:
        self.names = tuple(detectors)
        declared = [getattr(d, "streams", None) for d in detectors.values()]
        self.routes: dict[Stream, tuple[int, ...]] = {
            stream: tuple(i for i, s in enumerate(declared) if s is None or stream in s)
            for stream in Stream
        }
        self.event_time = tuple(
            bool(getattr(d, "event_time_streams", ())) for d in detectors.values()
        )


_LAYOUTS: dict[tuple[tuple[str, frozenset[Stream] | None], ...], _Layout] = {}


def _layout(detectors: Mapping[str, Detector]) -> _Layout:
    key = tuple((name, getattr(d, "streams", None)) for name, d in detectors.items())
    found = _LAYOUTS.get(key)
    if found is None:
        found = _LAYOUTS[key] = _Layout(detectors)
    return found


_NO_DUE = float("inf")


class SiteDetectors:
    """One site's detector set and its event clock.

    Routing: a reading goes only to the detectors that declare its stream (`streams`;
    none declared: every stream), except the first reading after the set is built or
    restored, which every detector gets (a rule may settle state carried over from a
    snapshot, or start its day, on whatever reading comes first). Timers of every
    detector due by the reading's time fire first, whoever the reading goes to.
    Due times: each detector's is cached here and recomputed only for detectors that
    took a reading (or after an `advance` or `restore`), so a reading costs the due
    computation of the few rules it concerns, not of all of them."""

    def __init__(
        self,
        site: Site,
        detectors: dict[str, Detector],
        on_error: ErrorReporter = _unreported,
    ) -> None:
        self.site = site
        self.detectors = DetectorSet(detectors)
        self.on_error = on_error
        self.clock: float | None = None
        # Keys within the dedupe window → the reading's fields (None: restored from a
        # snapshot, content unknown): a duplicate is the same key *and* the same content.
        self.recent: dict[tuple[str, str, float], Mapping[str, FieldValue] | None] = {}
        # Emergencies' keys, kept far longer than `recent`: a late SOS is applied, so its
        # redelivery must still be told apart.
        self.emergency_keys: dict[tuple[str, str, float], None] = {}
        self.dirty = True
        # Raised and not yet cleared: (kind, resident) → severity, to clear them on removal.
        self.open: dict[tuple[str, str | None], str] = {}
        self._relayout()

    def _relayout(self) -> None:
        self._version = self.detectors.version
        self._layout = _layout(self.detectors)
        self._dets: tuple[Detector, ...] = tuple(self.detectors.values())
        self._dues: list[float] = [_NO_DUE] * len(self._dets)
        self._stale: set[int] | None = None  # None: every detector's due is stale
        self._next_due: float | None = None
        self._fresh = True  # the next reading goes to every detector

    def note(self, t: Transition) -> None:
        key = (t.kind.value, t.resident_id)
        if t.action == TransitionAction.CLEAR:
            self.open.pop(key, None)
        else:
            self.open[key] = t.severity.value

    def next_due(self) -> float | None:
        if self._version != self.detectors.version:
            self._relayout()
        stale = self._stale
        if stale is None or stale:
            dets, dues = self._dets, self._dues
            for i in range(len(dets)) if stale is None else stale:
                try:
                    due = dets[i].next_due()
                except Exception as exc:  # one broken detector must not stop the site
                    self.on_error(self._layout.names[i], "next_due", exc)
                    due = None
                dues[i] = _NO_DUE if due is None else due
            self._stale = set()
            least = min(dues, default=_NO_DUE)
            self._next_due = None if least == _NO_DUE else least
        return self._next_due

    def apply(self, reading: Reading, own_time: Reading | None = None) -> list[Transition]:
        """Apply `reading` (stamped at most at the site's clock); `own_time` is the same
        reading with its own, older event time, for detectors that ask for it."""
        # Timers due first, in one canonical order, then the reading's own effects: the same
        # order whether the timers fire here or in an earlier `advance`.
        due = self.next_due()  # also follows a changed detector set
        out = self.advance(reading.ts) if due is not None and due <= reading.ts else []
        layout, dets = self._layout, self._dets
        targets: Sequence[int]
        if self._fresh:
            targets = range(len(dets))
            self._fresh = False
        else:
            targets = layout.routes[reading.stream]
        stale = self._stale
        for i in targets:
            det = dets[i]
            given = reading
            if (
                own_time is not None
                and layout.event_time[i]
                and own_time.stream in getattr(det, "event_time_streams", ())
            ):
                given = own_time
            try:
                out.extend(det.update(given))
            except Exception as exc:  # skip this reading for this detector only
                self.on_error(layout.names[i], "update", exc)
            if stale is not None:
                stale.add(i)
        self.clock = reading.ts if self.clock is None else max(self.clock, reading.ts)
        self.dirty = True
        return out

    def advance(self, now: float) -> list[Transition]:
        out: list[Transition] = []
        for name, det in self.detectors.items():
            try:
                out.extend(det.advance(now))
            except Exception as exc:
                self.on_error(name, "advance", exc)
        self.clock = now if self.clock is None else max(self.clock, now)
        self.dirty = True
        self._stale = None  # cheap: a rule's own cached due survives an advance that fired nothing
        out.sort(key=lambda t: t.ts)  # stable: keeps each detector's own order
        return out

    def forget_before(self, horizon: float) -> None:
        """Forget keys older than `horizon`. Keys are kept in arrival order, which is nearly
        time order, so the old ones are at the front: stop at the first one to keep (a late
        key behind it waits for the next call that reaches it, a little longer than needed)."""
        expired = []
        for key in self.recent:
            if key[2] >= horizon:
                break
            expired.append(key)
        for key in expired:
            del self.recent[key]

    def remember_emergency(self, key: tuple[str, str, float]) -> None:
        self.emergency_keys[key] = None
        horizon = (self.clock or key[2]) - EMERGENCY_MEMORY_S
        old = [k for k in self.emergency_keys if k[2] < horizon]
        old += list(self.emergency_keys)[: max(0, len(self.emergency_keys) - MAX_EMERGENCY_KEYS)]
        for k in old:
            self.emergency_keys.pop(k, None)

    def snapshot(self) -> SiteStates:
        states: SiteStates = {}
        for name, det in self.detectors.items():
            try:
                states[name] = det.snapshot()
            except Exception as exc:  # its previous row stays; the others are still saved
                self.on_error(name, "snapshot", exc)
        states[RUNTIME_ENTRY] = {
            "clock": self.clock,
            "recent": [list(k) for k in self.recent],
            "emergencies": [list(k) for k in self.emergency_keys],
            "open": [
                [kind, resident, sev]
                for (kind, resident), sev in sorted(self.open.items(), key=lambda i: str(i[0]))
            ],
        }
        return states

    def restore(self, states: Mapping[str, Any]) -> None:
        picture = self.detectors.get(PICTURE_NAME)
        if isinstance(picture, ResidentStateModel) and PICTURE_NAME not in states:
            picture.restore_from_rules(states)  # a snapshot from before the shared picture
        for name, det in self.detectors.items():
            if name not in states:
                continue
            try:
                det.restore(states[name])
            except Exception:  # a snapshot of an older schema must not stop the site
                _errors.inc(cause="restore", detector=name)
                log.exception("detector snapshot not restored", extra={"detector": name})
        own = states.get(RUNTIME_ENTRY) or {}
        clock = own.get("clock")
        self.clock = float(clock) if isinstance(clock, int | float) else None
        self.recent = {
            (str(k[0]), str(k[1]), float(k[2])): None
            for k in own.get("recent", [])
            if isinstance(k, list) and len(k) == 3
        }
        self.emergency_keys = {
            (str(k[0]), str(k[1]), float(k[2])): None
            for k in own.get("emergencies", [])
            if isinstance(k, list) and len(k) == 3
        }
        self.open = _open_conditions(own)
        self._stale = None
        self._fresh = True


def _open_conditions(own: Mapping[str, Any]) -> dict[tuple[str, str | None], str]:
    out: dict[tuple[str, str | None], str] = {}
    for item in own.get("open", []):
        if isinstance(item, list) and len(item) == 3 and isinstance(item[0], str):
            out[(item[0], item[1] if isinstance(item[1], str) else None)] = str(item[2])
    return out


def removal_clears(
    site_id: str, open_conditions: Mapping[tuple[str, str | None], str], ts: float
) -> list[Transition]:
    """`clear` transitions for the open conditions of a site removed from the registry."""
    out: list[Transition] = []
    for (kind, resident), severity in sorted(open_conditions.items(), key=str):
        try:
            out.append(
                Transition(
                    action=TransitionAction.CLEAR,
                    kind=AlertKind(kind),
                    site_id=site_id,
                    ts=ts,
                    severity=Severity(severity),
                    resident_id=resident,
                    details={"reason": "site removed from the registry"},
                )
            )
        except ValueError:  # a kind or severity this version no longer knows
            _errors.inc(cause="removal", detector="")
    return out


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
        # Called when the detector sets have grown by a quarter since the last call (the
        # platform freezes them out of garbage collection).
        self.on_growth = on_growth
        self._sites_at_growth = 0
        self.snapshot_chunk = max(1, snapshot_chunk)
        self.sites: dict[str, SiteDetectors] = {}
        self.watermark: float | None = None
        self._stored: dict[str, SiteStates] = {}
        self._lock = asyncio.Lock()
        self._loops: list[Periodic] = []  # timer ticks (wall mode), snapshot saves
        self._logged: set[tuple[str, str]] = set()  # (site, cause) already logged
        self._bad_sites: dict[str, Site] = {}  # sites whose overrides are invalid, as logged
        self._checked_index: RegistryIndex | None = None  # the last index checked for removals
        self._to_delete: set[str] = set()  # removed sites whose snapshot rows are to go
        # Emitted, not yet taken by the sink (stored): handed on first, never dropped.
        self._unstored: list[Transition] = []

    # --- Component ------------------------------------------------------------------------

    async def start(self) -> None:
        if self.snapshot_store is not None:
            self._stored = await self.snapshot_store.load_all()
            log.info("detector snapshots loaded", extra={"sites": len(self._stored)})
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

    async def stop(self, unstored_wait_s: float = 5.0) -> None:
        for loop in self._loops:
            await loop.stop()
        self._loops = []
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
            out: list[Transition] = []
            by_site: dict[str, list[Reading]] = {}
            for r in readings:
                by_site.setdefault(r.site_id, []).append(r)
            index = self.index_provider()
            out.extend(self._drop_removed(index))
            for site_id, batch in by_site.items():
                site = self._site(index, site_id)
                if site is None:
                    _dropped.inc(len(batch), cause="no_detectors")
                    continue
                out.extend(self._feed(site, sorted(batch, key=lambda r: r.ts)))
            timed = [r.ts for r in readings if r.time_from_payload]
            if self.clock_mode == "event" and timed:
                top = max(timed)
                self.watermark = top if self.watermark is None else max(self.watermark, top)
                out.extend(self._advance_all(self.watermark - self.lateness_s))
            await self._emit(out)

    async def tick(self) -> None:
        """Wall mode: fire every timer due by the wall clock (the timer task calls this)."""
        async with self._lock:
            now = self.clock.now()
            removed = self._drop_removed(self.index_provider())
            self._refresh_sites()
            fired = self._advance_all(now)
            if fired:
                _timer_lag.set(max(now - t.ts for t in fired))
            await self._emit(removed + fired)

    async def advance_to(self, now: float) -> None:
        """Event mode: the whole replay has reached `now` (e.g. its end); fire timers due."""
        async with self._lock:
            self.watermark = now if self.watermark is None else max(self.watermark, now)
            removed = self._drop_removed(self.index_provider())
            await self._emit(removed + self._advance_all(now))

    # --- internals ------------------------------------------------------------------------

    def _feed(self, site: SiteDetectors, batch: list[Reading]) -> list[Transition]:
        out: list[Transition] = []
        fed = 0
        for r in batch:
            if self.clock_mode == "event" and not r.time_from_payload:
                now = site.clock if site.clock is not None else self.watermark
                if now is None:  # no event time reached yet to judge it at
                    _dropped.inc(cause="no_event_time")
                    self._log_once(site.site.id, "no_event_time", r)
                    continue
                # Receive wall time is not event time: judged at the time the site (or the
                # replay) has reached, never ahead of it; no event time to dedupe on.
                out.extend(site.apply(dataclasses.replace(r, ts=now)))
                fed += 1
                continue
            key = (r.device_id, r.stream.value, r.ts)
            if key in site.recent:
                seen = site.recent[key]
                if seen is None or seen == r.fields:
                    _dropped.inc(cause="duplicate")
                    continue
                # Same device, stream and event time, another value (two reports within
                # one second of a payload time): a new reading, not a redelivery.
            elif key in site.emergency_keys:  # an emergency's redelivery, past the window
                _dropped.inc(cause="duplicate")
                continue
            kinds = emergency_kinds(r) if r.stream in EMERGENCIES else frozenset()
            if site.clock is not None and r.ts < site.clock:
                if r.ts < site.clock - self.dedupe_s and not kinds:
                    _dropped.inc(cause="too_old")
                    self._log_once(site.site.id, "too_old", r)
                    continue
                _late.inc()
                site.recent[key] = r.fields
                emitted = site.apply(dataclasses.replace(r, ts=site.clock), own_time=r)
            else:
                site.recent[key] = r.fields
                emitted = site.apply(r)
            if kinds:
                site.remember_emergency(key)
                emitted = self._mark_late(site, r, kinds, emitted)
            out.extend(emitted)
            fed += 1
        if site.clock is not None:
            site.forget_before(site.clock - self.dedupe_s)
        _readings.inc(fed)
        return out

    def _mark_late(
        self,
        site: SiteDetectors,
        r: Reading,
        kinds: frozenset[AlertKind],
        emitted: list[Transition],
    ) -> list[Transition]:
        """Stamp what an emergency raised or updated with how late it reached detection."""
        handled_at = self.clock.now() if self.clock_mode == "wall" else (site.clock or r.ts)
        late_s = handled_at - r.ts
        if late_s < LATE_MARK_S:
            return emitted
        _late_emergencies.inc()
        log.warning(
            "late emergency raised",
            extra={"site": site.site.id, "device": r.device_id, "late_s": round(late_s)},
        )
        return [
            dataclasses.replace(t, details={**t.details, "late_s": round(late_s)})
            if t.kind in kinds and t.action != TransitionAction.CLEAR and t.device_id == r.device_id
            else t
            for t in emitted
        ]

    def _log_once(self, site_id: str, cause: str, r: Reading) -> None:
        if (site_id, cause) in self._logged:
            return
        self._logged.add((site_id, cause))
        log.warning(
            "reading left out of detection",
            extra={"site": site_id, "cause": cause, "device": r.device_id, "ts": r.ts},
        )

    def _advance_all(self, now: float) -> list[Transition]:
        out: list[Transition] = []
        for site in self.sites.values():
            due = site.next_due()
            if due is not None and due <= now:
                out.extend(site.advance(now))
            elif self.clock_mode == "event" and site.clock is not None and site.clock < now:
                # Nothing due: just move the clock on, so the site's silence is judged at the
                # watermark. In wall mode a site that emitted nothing keeps its clock: a
                # reading stamped before this tick then counts at its own time (nothing the
                # site emitted is later), instead of becoming "late" and copied.
                site.clock = now
        return out

    def _drop_removed(self, index: RegistryIndex) -> list[Transition]:
        """Drop the detector sets of sites no longer in the registry; clear what they had
        open. The empty index a process starts with (version 0, no sites) is not a registry
        without sites."""
        if index is self._checked_index or (index.version == 0 and not index.sites):
            return []
        self._checked_index = index
        out: list[Transition] = []
        for site_id in [s for s in self.sites if s not in index.sites]:
            site = self.sites.pop(site_id)
            ts = site.clock if site.clock is not None else self.clock.now()
            if self.clock_mode == "wall":  # the site's clock stays at its last event
                ts = max(ts, self.clock.now())
            out.extend(removal_clears(site_id, site.open, ts))
            self._to_delete.add(site_id)
            self._bad_sites.pop(site_id, None)
            log.info("site removed from the registry: detectors dropped", extra={"site": site_id})
        for site_id in [s for s in self._stored if s not in index.sites]:
            own = self._stored.pop(site_id).get(RUNTIME_ENTRY) or {}
            clock = own.get("clock")
            ts = float(clock) if isinstance(clock, int | float) else self.clock.now()
            out.extend(removal_clears(site_id, _open_conditions(own), ts))
            self._to_delete.add(site_id)
        _sites.set(len(self.sites))
        return out

    async def _emit(self, transitions: list[Transition]) -> None:
        """Hand on these transitions, after any an earlier call could not (see the module
        docstring); returns once the sink took them all."""
        for t in transitions:
            _transitions.inc(kind=t.kind.value, action=t.action.value)
            site = self.sites.get(t.site_id)
            if site is not None:
                site.note(t)
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

    def _build(self, site: Site) -> SiteDetectors | None:
        try:
            ctx = site_context(site, self.global_overrides)
        except DetectorSettingsError as exc:
            if self._bad_sites.get(site.id) is not site:
                self._bad_sites[site.id] = site
                _errors.inc(cause="settings", detector="")
                log.error(
                    "detector settings invalid; site keeps its previous detectors",
                    extra={"site": site.id, "error": str(exc)},
                )
            return None
        except Exception as exc:  # a registry shape no rule expected: keep ingest going
            self._report(site.id, "", "build", exc)
            return None
        self._bad_sites.pop(site.id, None)
        try:
            detectors = build_site_detectors(ctx)
        except Exception as exc:
            self._report(site.id, "", "build", exc)
            return None
        return SiteDetectors(
            site, detectors, lambda det, cause, exc: self._report(site.id, det, cause, exc)
        )

    def _report(self, site_id: str, detector: str, cause: str, exc: Exception) -> None:
        """A detector failed: count every time, log once per site, detector and cause."""
        _errors.inc(cause=cause, detector=detector)
        key = (site_id, f"{detector}:{cause}:{type(exc).__name__}")
        if key in self._logged:
            return
        self._logged.add(key)
        log.error(
            "detector failed; skipped for this reading or timer",
            exc_info=exc,
            extra={"site": site_id, "detector": detector, "cause": cause},
        )

    def _site(self, index: RegistryIndex, site_id: str) -> SiteDetectors | None:
        entry = index.detector_site(site_id)  # with declared absences laid over
        current = self.sites.get(site_id)
        if entry is None:
            return current  # unknown to this registry version: keep what we had, if anything
        if current is not None and (current.site is entry or current.site == entry):
            current.site = entry
            return current
        built = self._build(entry)
        if built is None:
            return current
        if current is not None:
            built.restore(current.snapshot())  # registry edit: carry state over
        elif site_id in self._stored:
            built.restore(self._stored.pop(site_id))  # first build after a restart
        self.sites[site_id] = built
        _sites.set(len(self.sites))
        if self.on_growth is not None and len(self.sites) >= max(64, 1.25 * self._sites_at_growth):
            self._sites_at_growth = len(self.sites)
            self.on_growth()
        return built

    def restore_site(self, site_id: str, states: SiteStates) -> bool:
        """Build a site's detectors now from a snapshot (`SiteDetectors.snapshot`), as the
        first reading after a restart builds them from the stored ones; a replay resumed
        from a checkpoint may bring the site no reading, and its timers must still fire.
        A site already built is restored in place. False when the registry does not know
        the site (nothing kept), or its detectors cannot be built yet (kept for their first
        build, as a stored snapshot is)."""
        current = self.sites.get(site_id)
        if current is not None:
            current.restore(states)
            return True
        index = self.index_provider()
        if index.detector_site(site_id) is None:
            return False
        self._stored[site_id] = states
        return self._site(index, site_id) is not None

    def _refresh_sites(self) -> None:
        index = self.index_provider()
        # Sites restored from a snapshot are built at the first tick, not at their next
        # reading: a possible fall open when the process died must still become a fall
        # in a home that stays silent.
        for site_id in [*self.sites, *(s for s in self._stored if s in index.sites)]:
            self._site(index, site_id)

    async def save_snapshots(self, only_dirty: bool = True) -> None:
        """Save the sites that changed (every site with `only_dirty` false), in chunks of
        `snapshot_chunk` sites: each chunk is taken under the lock (a site's snapshot is
        atomic) and written in its own transaction, and readings are handled between
        chunks, so thousands of sites never hold the event loop for seconds at once."""
        if self.snapshot_store is None:
            return
        async with self._lock:
            todo = [sid for sid, site in self.sites.items() if site.dirty or not only_dirty]
            removed, self._to_delete = self._to_delete, set()
        try:
            for start in range(0, len(todo), self.snapshot_chunk):
                await self._save_chunk(todo[start : start + self.snapshot_chunk])
            for site_id in sorted(removed):
                await self.snapshot_store.delete_site(site_id)
        except BaseException:  # not written (database down, or stopping): again next time
            self._to_delete |= removed
            raise
