"""The detectors of a worker's sites, hosted: readings in, transitions out, with no
I/O and no asyncio (`detectors.runtime` adds the loops, the lock, snapshot saves and
the hand-on to the alert pipeline).

`DetectorHost` builds each site's `SiteDetectors` lazily from the registry (and
rebuilds it, carrying state over, when the site's entry changes), routes every
reading of a site to it in event-time order, drops duplicates and readings too old to
judge, applies late ones at the site's clock, moves the watermark (event mode), fires
timers, and clears what a site removed from the registry had open. The module
docstring of `detectors.runtime` gives the rules for time, order and duplicates.

To feed more per-site state from readings, extend `SiteDetectors` (or host it in the
detector set, first, as a rule-like part): the host only decides which reading reaches
which site at what time.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Sequence
from typing import Literal

from detectors.catalogue import build_site_detectors, site_context
from detectors.emergencies import EMERGENCIES, LATE_MARK_S, emergency_kinds
from detectors.settings import DetectorSettingsError, Overrides
from detectors.site_detectors import (
    RUNTIME_ENTRY,
    SiteDetectors,
    _errors,
    _open_conditions,
    content_hash,
    removal_clears,
)
from detectors.snapshot_store import SiteStates
from eldercare import metrics
from eldercare.clock import Clock
from eldercare.domain import AlertKind, Reading, Transition, TransitionAction
from eldercare.logs import get_logger
from eldercare.registry_index import RegistryIndex
from eldercare.registry_model import Site

log = get_logger(__name__)

ClockMode = Literal["wall", "event"]

_readings = metrics.counter("detector_readings_total", "Readings given to detectors")
_dropped = metrics.counter(
    "detector_readings_dropped_total",
    "Readings not given to detectors, by cause",
    ["cause"],
)
_late = metrics.counter(
    "detector_readings_late_total", "Readings older than their site's clock, applied at it"
)
_sites = metrics.gauge("detector_sites", "Sites with a detector set in this worker")
_late_emergencies = metrics.counter(
    "detector_late_emergencies_total",
    "Emergencies (SOS, reported falls) applied over a minute after their event time",
)


class DetectorHost:
    """Every site of this worker: `feed` readings, `advance` timers; pure."""

    def __init__(
        self,
        index_provider: Callable[[], RegistryIndex],
        *,
        clock_mode: ClockMode,
        clock: Clock,
        global_overrides: Overrides | None,
        lateness_s: float,
        dedupe_s: float,
        on_growth: Callable[[], None] | None = None,
        builds_per_tick: int = 200,
    ) -> None:
        """`builds_per_tick`: sites restored from snapshots built at most at each tick."""
        self.index_provider = index_provider
        self.builds_per_tick = max(1, builds_per_tick)
        self.clock_mode: ClockMode = clock_mode
        self.clock = clock
        self.global_overrides = global_overrides
        self.lateness_s = lateness_s
        self.dedupe_s = dedupe_s
        # Called when the detector sets have grown by a quarter since the last call (the
        # platform freezes them out of garbage collection).
        self.on_growth = on_growth
        self._sites_at_growth = 0
        self.sites: dict[str, SiteDetectors] = {}
        self.watermark: float | None = None
        # Snapshots loaded at start, not yet built into a site (see `restore_site`).
        self.stored_states: dict[str, SiteStates] = {}
        self._logged: set[tuple[str, str]] = set()  # (site, cause) already logged
        self._bad_sites: dict[str, Site] = {}  # sites whose overrides are invalid, as logged
        self._checked_index: RegistryIndex | None = None  # the last index checked for removals
        self.to_delete: set[str] = set()  # removed sites whose snapshot rows are to go

    def feed(self, readings: Sequence[Reading]) -> list[Transition]:
        """Apply a batch of readings of any sites; the transitions they cause, in order."""
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
        return out

    def fire_due(self, now: float) -> tuple[list[Transition], list[Transition]]:
        """Wall mode: (clears of removed sites, timers fired) by `now`; sites restored
        from a snapshot are built first."""
        removed = self._drop_removed(self.index_provider())
        self._refresh_sites()
        return removed, self._advance_all(now)

    def advance_to(self, now: float) -> list[Transition]:
        """Event mode: the whole replay has reached `now`; the timers due by then."""
        self.watermark = now if self.watermark is None else max(self.watermark, now)
        removed = self._drop_removed(self.index_provider())
        return removed + self._advance_all(now)

    def note(self, transitions: Sequence[Transition]) -> None:
        """Keep each site's open conditions (cleared on the site's removal)."""
        for t in transitions:
            site = self.sites.get(t.site_id)
            if site is not None:
                site.note(t)

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
            content = content_hash(r.fields)
            if key in site.recent:
                seen = site.recent[key]
                if seen is None or seen == content:
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
                site.recent[key] = content
                emitted = site.apply(dataclasses.replace(r, ts=site.clock), own_time=r)
            else:
                site.recent[key] = content
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
            self.to_delete.add(site_id)
            self._bad_sites.pop(site_id, None)
            log.info("site removed from the registry: detectors dropped", extra={"site": site_id})
        for site_id in [s for s in self.stored_states if s not in index.sites]:
            own = self.stored_states.pop(site_id).get(RUNTIME_ENTRY) or {}
            clock = own.get("clock")
            ts = float(clock) if isinstance(clock, int | float) else self.clock.now()
            out.extend(removal_clears(site_id, _open_conditions(own), ts))
            self.to_delete.add(site_id)
        _sites.set(len(self.sites))
        return out

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
        elif site_id in self.stored_states:
            built.restore(self.stored_states.pop(site_id))  # first build after a restart
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
        self.stored_states[site_id] = states
        return self._site(index, site_id) is not None

    def _refresh_sites(self) -> None:
        index = self.index_provider()
        for site_id in list(self.sites):
            self._site(index, site_id)
        # Sites restored from a snapshot are built at the first ticks, not at their next
        # reading: a possible fall open when the process died must still become a fall
        # in a home that stays silent. A few hundred a tick: a worker taking over
        # partitions of thousands of homes must not hold its event loop (its lease
        # renewals, its readers) for the seconds building them all takes.
        stored = (s for s in self.stored_states if s in index.sites)
        for site_id in list(itertools.islice(stored, self.builds_per_tick)):
            self._site(index, site_id)
