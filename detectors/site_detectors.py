"""One site's detectors and its event clock (`SiteDetectors`): routes a reading to the
rules that declare its stream, fires their timers first, keeps the keys that tell a
redelivery, the conditions it has open and its snapshot. Pure: no I/O, no asyncio;
time is the readings' event time and the `now` an advance is given.

The worker's sites are hosted by `detectors.detector_host.DetectorHost`; the async
loops, snapshot saves and hand-on to the alert pipeline are `detectors.runtime`'s.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from detectors.base import Detector
from detectors.recent_keys import RecentKeys
from detectors.resident_state import NAME as PICTURE_NAME
from detectors.resident_state import ResidentStateModel
from detectors.snapshot_store import SiteStates
from eldercare import metrics
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
from eldercare.registry_model import Site

log = get_logger(__name__)

RUNTIME_ENTRY = "_runtime"  # reserved snapshot name for the site's own bookkeeping

_errors = metrics.counter(
    "detector_errors_total",
    "Detector failures (build, restore, update, advance, next_due, tick), by cause and detector",
    ["cause", "detector"],
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
        # Keys within the dedupe window → a hash of the reading's fields (None: restored
        # from a snapshot, content unknown): a duplicate is the same key *and* the same
        # content. A hash, not the fields: a site keeps a quarter hour of keys, and a
        # worker thousands of sites (hence columns, not a dict: `recent_keys`).
        self.recent = RecentKeys()
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
        # Detectors whose due is stale (None: every one); a list, not a set: one a site,
        # by the thousand sites (an empty set is 216 bytes), and a reading's targets are distinct.
        self._stale: list[int] | None = None
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
            self._stale = []
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
                stale.append(i)
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
        self.recent.forget_before(horizon)

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
        self.recent = RecentKeys(
            (str(k[0]), str(k[1]), float(k[2]))
            for k in own.get("recent", [])
            if isinstance(k, list) and len(k) == 3
        )
        self.emergency_keys = {
            (str(k[0]), str(k[1]), float(k[2])): None
            for k in own.get("emergencies", [])
            if isinstance(k, list) and len(k) == 3
        }
        self.open = _open_conditions(own)
        self._stale = None
        self._fresh = True


def content_hash(fields: Mapping[str, FieldValue]) -> int:
    """The reading's content as `recent` keeps it: equal fields, equal hash (every field
    value is hashable); two contents of one key (device, stream, event time) sharing a
    64-bit hash by chance is not a case to design for."""
    try:
        return hash(frozenset(fields.items()))
    except TypeError:  # a value that is not (a list where a tuple belongs): by its text
        return hash(repr(sorted(fields.items())))


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
