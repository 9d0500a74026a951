"""Fall detection from one resident's wearable accelerometer stream (`wearable_fall`).

Rule (three physically motivated thresholds, tuned subject-wise on SisFall by
`eldercare eval wearable-fall`):

- **impact**: the acceleration magnitude peaks at >= `impact_g` (the highest
  value within ±`peak_merge_s`);
- **posture change**: the mean acceleration vector (gravity, in the device's
  coordinates) over [impact+`settle_s`, +`observe_s`] differs from the one over
  [impact-`pre_impact_from_s`, impact-`pre_impact_to_s`] by >= `posture_change_deg`;
- **stillness**: over that same observation window the wearer moves little
  (RMS deviation of the vector from its mean <= `stillness_g`).

All three must hold, so a single spike (a bump, a jump, dropping into a chair)
never raises.

**The wearer's upright**, learned from her walking (one-second blocks with gait-like
movement; `upright_learn_s` of them), sharpens the rule once known:

- the wearer was upright before the impact (within `upright_before_deg` of it): a
  roll in bed or a bump while lying is no fall;
- a **soft fall** counts too: a peak of at least `soft_impact_g` (older people fall
  softer; a peak just under 2 g is common), with a posture change of at least
  `soft_posture_deg`, lying afterwards (at least `lying_after_deg` from upright) and
  very still (`soft_stillness_g`). Sitting down hard ends upright-ish, not lying.

**A sensor at its range** (`sensor_range_g`, per axis, when the device's is known:
cheap phones and pendants clip at ±2 g) cannot report a higher peak: a peak with an
axis at the range counts as reaching `impact_g`.

The alert is raised when the observation window is complete (impact + settle_s +
observe_s), stamped with the impact time.

**A second fall** while the alarm is open raises again: an impact that looks like a
fall, after the wearer moved again (a one-second block with movement >=
`clear_active_g`) since the last one, is a new event whatever her posture; a further
thump of the same fall, with no movement between, is not.

**Clear**: the wearer is clearly up and active again: `clear_upright_s`
consecutive one-second blocks whose mean vector is within `clear_upright_deg` of
the pre-impact gravity direction, at least `clear_active_s` of them with
movement >= `clear_active_g` (e.g. walking). Lying, sitting hunched or no data
never clears.

Stream hygiene: batches are put in order of their start time; a batch wholly
before the samples already consumed is a duplicate (counted as such if its start
was seen) or late, and is dropped; overlapping samples are trimmed. A missing
stretch is waited for until a batch starting `reorder_wait_s` after its end
arrives (or, with the device silent, until `advance` is `silence_wait_s` past
it), then accepted as a gap. Gaps up to `max_gap_s` are tolerated (windows use
the samples present, if enough); longer ones reset the signal history (an open
alert stays open). So a host must hand ACCEL batches over with their own `ts`
(the first sample's time), never restamped to a site clock: sample times are
`ts + i / rate_hz`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from pydantic import Field, model_validator

from detectors.accel_features import (
    FloatArray,
    ImpactAssessment,
    angle_deg,
    assess_impact,
    movement_rms,
    smoothed_magnitude,
    window,
)
from detectors.settings import RuleSettings
from eldercare.domain import (
    DEFAULT_SEVERITY,
    AlertKind,
    Evidence,
    Reading,
    Stream,
    Transition,
    TransitionAction,
)
from eldercare.errors import EldercareError
from eldercare.evidence import EvidenceCode, Observation, seen
from eldercare.logs import get_logger

log = get_logger(__name__)

SNAPSHOT_VERSION = 1
_MAX_IN_FLIGHT = 64  # impacts awaiting their observation window (jogging makes ~3/s)
_RECENT_BATCHES = 256  # start times of consumed batches remembered to tell duplicates


class WearableFallSettings(RuleSettings):
    """Thresholds of the wearable fall rule; overridable per site and resident
    (extra keys forbidden, frozen, `enabled` as every rule's settings)."""

    impact_g: float = Field(
        2.2, gt=1.0, le=16.0, description="an impact is an acceleration peak of at least this (g)"
    )
    posture_change_deg: float = Field(
        40.0,
        gt=0.0,
        lt=180.0,
        description="gravity after the impact differs from before by at least this (degrees)",
    )
    stillness_g: float = Field(
        0.3,
        gt=0.0,
        le=2.0,
        description="after the impact the wearer moves at most this (RMS, g): lying, not walking",
    )
    peak_merge_s: float = Field(
        0.5, gt=0.0, le=2.0, description="an impact is the highest peak within ± this (s)"
    )
    smoothing_s: float = Field(
        0.02, ge=0.0, le=0.2, description="moving average before the peak search (s)"
    )
    pre_impact_from_s: float = Field(
        2.5, gt=0.0, le=10.0, description="gravity before = mean from this long before the impact"
    )
    pre_impact_to_s: float = Field(
        1.0, ge=0.0, le=10.0, description="... to this long before it (the tumble excluded)"
    )
    settle_s: float = Field(
        1.5, ge=0.0, le=10.0, description="after the impact, skip this long (bounces, rolling)"
    )
    observe_s: float = Field(
        3.0, gt=0.0, le=30.0, description="then judge posture and stillness over this long"
    )
    min_coverage: float = Field(
        0.5, gt=0.0, le=1.0, description="a window needs at least this share of its samples"
    )
    clear_upright_deg: float = Field(
        30.0, gt=0.0, lt=180.0, description="clear: back within this of pre-impact gravity"
    )
    clear_active_g: float = Field(
        0.1, gt=0.0, le=2.0, description="clear: a second counts as active at this movement (g)"
    )
    clear_upright_s: int = Field(
        10, ge=1, le=600, description="clear: this many consecutive upright seconds"
    )
    clear_active_s: int = Field(
        5, ge=0, le=600, description="clear: of which at least this many active"
    )
    reorder_wait_s: float = Field(
        2.0,
        ge=0.0,
        le=60.0,
        description="a batch starting this long after a hole's end: give the hole up as a gap",
    )
    silence_wait_s: float = Field(
        30.0,
        gt=0.0,
        le=3600.0,
        description="no samples for this long (by advance): judge impacts on the samples there are",
    )
    max_gap_s: float = Field(
        2.0, gt=0.0, le=60.0, description="a longer gap in the samples resets the history"
    )
    max_rate_hz: float = Field(
        400.0, gt=0.0, le=4000.0, description="readings with a higher rate_hz are rejected"
    )
    max_batch_s: float = Field(
        60.0, gt=0.0, le=600.0, description="readings longer than this are rejected"
    )
    max_abs_g: float = Field(
        64.0, gt=1.0, le=1000.0, description="samples beyond ±this are not physical: rejected"
    )
    soft_impact_g: float = Field(
        1.6, gt=1.0, le=16.0, description="soft fall: a peak of at least this (g), if lying after"
    )
    soft_posture_deg: float = Field(
        35.0, gt=0.0, lt=180.0, description="soft fall: posture changed by at least this"
    )
    soft_stillness_g: float = Field(
        0.08, gt=0.0, le=2.0, description="soft fall: and at most this movement (RMS, g)"
    )
    lying_after_deg: float = Field(
        60.0, gt=0.0, le=180.0, description="soft fall: at least this far from upright after"
    )
    upright_before_deg: float = Field(
        80.0, gt=0.0, le=180.0, description="any fall: at most this far from upright before"
    )
    upright_learn_s: int = Field(
        10, ge=1, le=3600, description="walking seconds before the wearer's upright is known"
    )
    walk_min_g: float = Field(
        0.08, gt=0.0, le=2.0, description="a second counts as walking from this movement (g)"
    )
    walk_max_g: float = Field(
        0.6, gt=0.0, le=4.0, description="...up to this (more is running, thrashing)"
    )
    sensor_range_g: float | None = Field(
        None, gt=1.0, le=64.0, description="the sensor's range per axis, if known (e.g. 2)"
    )

    @model_validator(mode="after")
    def _windows(self) -> WearableFallSettings:
        if self.pre_impact_to_s >= self.pre_impact_from_s:
            raise ValueError("pre_impact_to_s must be less than pre_impact_from_s")
        if self.clear_active_s > self.clear_upright_s:
            raise ValueError("clear_active_s must not exceed clear_upright_s")
        return self

    @property
    def scan_g(self) -> float:
        """Peaks from this height are impacts to assess (either kind of fall, or a peak
        at the sensor's range)."""
        lowest = min(self.impact_g, self.soft_impact_g)
        if self.sensor_range_g is not None:
            lowest = min(lowest, 0.98 * self.sensor_range_g)
        return lowest

    @property
    def decision_delay_s(self) -> float:
        """From the impact to the end of its observation window."""
        return self.settle_s + self.observe_s

    @property
    def history_s(self) -> float:
        """How much signal the ring buffer keeps: every window of an impact in flight."""
        return self.pre_impact_from_s + self.decision_delay_s + self.peak_merge_s + 2.0


def looks_like_fall(a: ImpactAssessment, s: WearableFallSettings) -> bool:
    """The fall rule on one assessed impact (named so evaluation can tune it)."""
    hard = (
        (a.peak_g >= s.impact_g or a.saturated)
        and a.posture_change_deg >= s.posture_change_deg
        and a.stillness_g <= s.stillness_g
    )
    if a.upright_before_deg is None or a.upright_after_deg is None:
        return hard  # the wearer's upright is not known yet: the plain rule
    if a.upright_before_deg > s.upright_before_deg:
        return False  # was not upright: rolling over in bed, a bump while lying
    soft = (
        a.peak_g >= s.soft_impact_g
        and a.posture_change_deg >= s.soft_posture_deg
        and a.stillness_g <= s.soft_stillness_g
        and a.upright_after_deg >= s.lying_after_deg
    )
    return hard or soft


class BadAccelReading(EldercareError, ValueError):
    """An accelerometer reading that cannot be used; the message says why."""


@dataclass(slots=True)
class _Batch:
    ts: float
    rate_hz: float
    xyz: FloatArray  # (n, 3), g

    @property
    def end(self) -> float:
        return self.ts + len(self.xyz) / self.rate_hz


@dataclass(slots=True)
class _Alarm:
    impact_ts: float
    pre_gravity: tuple[float, float, float]
    next_block: float  # start of the next one-second block judged for clearing
    upright_run: int = 0
    active_in_run: int = 0
    moved_at: float | None = None  # first one-second block with movement since the fall
    falls: int = 1  # falls raised while this alarm stayed open


def parse_accel(reading: Reading, s: WearableFallSettings) -> _Batch:
    """Validate an ACCEL reading into a batch, or raise BadAccelReading."""
    f = reading.fields
    rate = f.get("rate_hz")
    if isinstance(rate, bool) or not isinstance(rate, int | float):
        raise BadAccelReading("rate_hz missing or not a number")
    rate = float(rate)
    if not math.isfinite(rate) or rate <= 0 or rate > s.max_rate_hz:
        raise BadAccelReading(f"rate_hz out of range (0, {s.max_rate_hz}]")
    if not math.isfinite(reading.ts):
        raise BadAccelReading("ts not finite")
    axes = []
    for name in ("x", "y", "z"):
        values = f.get(name)
        if not isinstance(values, tuple | list) or not values:
            raise BadAccelReading(f"{name} missing or empty")
        axes.append(values)
    n = len(axes[0])
    if any(len(a) != n for a in axes):
        raise BadAccelReading("x, y, z differ in length")
    if n / rate > s.max_batch_s:
        raise BadAccelReading(f"batch longer than {s.max_batch_s} s")
    try:
        xyz = np.array(axes, dtype=np.float64).T
    except (TypeError, ValueError) as exc:
        raise BadAccelReading("x, y, z must hold numbers") from exc
    if not np.all(np.isfinite(xyz)) or float(np.max(np.abs(xyz))) > s.max_abs_g:
        raise BadAccelReading(f"samples not finite or beyond ±{s.max_abs_g} g")
    return _Batch(ts=float(reading.ts), rate_hz=rate, xyz=np.ascontiguousarray(xyz))


class WearableFallDetector:
    """`wearable_fall` for one resident's wearable; see the module doc for the rule."""

    kinds: tuple[AlertKind, ...] = (AlertKind.WEARABLE_FALL,)

    def __init__(
        self,
        site_id: str,
        resident_id: str | None,
        device_id: str,
        room_id: str | None,
        settings: WearableFallSettings | None = None,
        *,
        on_assessment: Callable[[ImpactAssessment], None] | None = None,
    ) -> None:
        self.site_id = site_id
        self.resident_id = resident_id
        self.device_id = device_id
        self.room_id = room_id
        self.settings = settings or WearableFallSettings()
        # Sees every assessed impact, fall or not (evaluation tunes thresholds on them).
        self._on_assessment = on_assessment
        self._logged_causes: set[str] = set()
        self._reset_state()

    # ---- state -----------------------------------------------------------------

    def _reset_state(self) -> None:
        self._data_clock = -math.inf  # start of the newest batch seen
        self._now = -math.inf  # latest time given to advance
        self._frontier: float | None = None  # signal is settled (consumed or given up) before this
        self._last_sample_ts: float | None = None
        self._rate_hz = 50.0  # of the latest batch: sizes windows' expected sample counts
        self._t: FloatArray = np.empty(0)
        self._xyz: FloatArray = np.empty((0, 3))
        self._scanned_until = -math.inf  # peaks before this were looked at
        self._in_flight: list[tuple[float, float]] = []  # (impact_ts, peak_g)
        self._pending: list[_Batch] = []
        self._recent_batches: list[float] = []
        self._alarm: _Alarm | None = None
        # The wearer's upright: a decaying sum of gravity directions while walking.
        self._upright_sum: FloatArray = np.zeros(3)
        self._walk_blocks = 0
        self._learn_next: float | None = None  # start of the next block to learn from
        self.counters: dict[str, int] = {
            "batches": 0,
            "duplicates": 0,
            "late": 0,
            "rejected": 0,
            "gap_resets": 0,
            "impacts": 0,
            "impacts_without_data": 0,
            "falls": 0,
            "clears": 0,
        }

    # ---- protocol --------------------------------------------------------------

    def update(self, reading: Reading) -> list[Transition]:
        if (
            reading.stream is not Stream.ACCEL
            or reading.device_id != self.device_id
            or not self.settings.enabled
        ):
            return []
        try:
            batch = parse_accel(reading, self.settings)
        except BadAccelReading as exc:
            self.counters["rejected"] += 1
            self._log_once(f"rejected:{exc}", f"accel reading rejected: {exc}")
            return []
        self._data_clock = max(self._data_clock, batch.ts)
        if self._frontier is not None and batch.end <= self._frontier + 0.5 / batch.rate_hz:
            self._count_stale(batch.ts)
            return []
        if any(p.ts == batch.ts for p in self._pending):
            self.counters["duplicates"] += 1
            return []
        self._pending.append(batch)
        self._pending.sort(key=lambda b: b.ts)
        return self._drain()

    def advance(self, now: float) -> list[Transition]:
        if not self.settings.enabled:
            return []
        self._now = max(self._now, now)
        return self._drain()

    def next_due(self) -> float | None:
        """When waiting for missing batches ends and an impact in flight can be judged."""
        if self._frontier is None:
            return None
        s = self.settings
        wants: list[float] = []
        if self._pending:
            wants.append(self._pending[0].ts)
        if self._in_flight:
            wants.append(self._in_flight[0][0] + s.decision_delay_s)
        # An exceedance not yet scanned becomes an impact once its neighbourhood is settled.
        lo = int(np.searchsorted(self._t, self._scanned_until, side="right"))
        if lo < len(self._t):
            svm = self._magnitude()
            hits = np.nonzero(svm[lo:] >= s.scan_g)[0]
            if len(hits):
                wants.append(float(self._t[lo + hits[0]]) + s.peak_merge_s)
        settled_by = [w for w in wants if w > self._frontier]
        if not settled_by:
            return None
        return min(settled_by) + s.silence_wait_s

    def snapshot(self) -> dict[str, Any]:
        alarm = None
        if self._alarm is not None:
            a = self._alarm
            alarm = {
                "impact_ts": a.impact_ts,
                "pre_gravity": list(a.pre_gravity),
                "next_block": a.next_block,
                "upright_run": a.upright_run,
                "active_in_run": a.active_in_run,
                "moved_at": a.moved_at,
                "falls": a.falls,
            }
        return {
            "version": SNAPSHOT_VERSION,
            "data_clock": _finite_or_none(self._data_clock),
            "now": _finite_or_none(self._now),
            "frontier": self._frontier,
            "last_sample_ts": self._last_sample_ts,
            "rate_hz": self._rate_hz,
            "t": [float(v) for v in self._t],
            "x": [float(v) for v in self._xyz[:, 0]],
            "y": [float(v) for v in self._xyz[:, 1]],
            "z": [float(v) for v in self._xyz[:, 2]],
            "scanned_until": _finite_or_none(self._scanned_until),
            "in_flight": [[ts, peak] for ts, peak in self._in_flight],
            "pending": [
                {
                    "ts": b.ts,
                    "rate_hz": b.rate_hz,
                    "x": [float(v) for v in b.xyz[:, 0]],
                    "y": [float(v) for v in b.xyz[:, 1]],
                    "z": [float(v) for v in b.xyz[:, 2]],
                }
                for b in self._pending
            ],
            "recent_batches": list(self._recent_batches),
            "alarm": alarm,
            "upright_sum": [float(v) for v in self._upright_sum],
            "walk_blocks": self._walk_blocks,
            "learn_next": self._learn_next,
            "counters": dict(self.counters),
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        if state.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"unknown wearable_fall snapshot version {state.get('version')!r}")
        self._reset_state()
        self._data_clock = _float_or_minus_inf(state["data_clock"])
        self._now = _float_or_minus_inf(state["now"])
        self._frontier = None if state["frontier"] is None else float(state["frontier"])
        last = state["last_sample_ts"]
        self._last_sample_ts = None if last is None else float(last)
        self._rate_hz = float(state["rate_hz"])
        self._t = np.array(state["t"], dtype=np.float64)
        self._xyz = _stack(state["x"], state["y"], state["z"])
        self._scanned_until = _float_or_minus_inf(state["scanned_until"])
        self._in_flight = [(float(ts), float(peak)) for ts, peak in state["in_flight"]]
        self._pending = [
            _Batch(float(b["ts"]), float(b["rate_hz"]), _stack(b["x"], b["y"], b["z"]))
            for b in state["pending"]
        ]
        self._recent_batches = [float(v) for v in state["recent_batches"]]
        a = state["alarm"]
        if a is not None:
            gx, gy, gz = (float(v) for v in a["pre_gravity"])
            self._alarm = _Alarm(
                impact_ts=float(a["impact_ts"]),
                pre_gravity=(gx, gy, gz),
                next_block=float(a["next_block"]),
                upright_run=int(a["upright_run"]),
                active_in_run=int(a["active_in_run"]),
                moved_at=None if a.get("moved_at") is None else float(a["moved_at"]),
                falls=int(a.get("falls", 1)),
            )
        self._upright_sum = np.array(state.get("upright_sum", [0.0, 0.0, 0.0]), dtype=np.float64)
        self._walk_blocks = int(state.get("walk_blocks", 0))
        learn_next = state.get("learn_next")
        self._learn_next = None if learn_next is None else float(learn_next)
        self.counters.update({k: int(v) for k, v in state["counters"].items()})

    @property
    def alarm_active(self) -> bool:
        return self._alarm is not None

    # ---- stream ordering -------------------------------------------------------

    def _drain(self) -> list[Transition]:
        out: list[Transition] = []
        s = self.settings
        # A hole before this is given up: batches well after it came, or the device went silent.
        watermark = max(self._data_clock - s.reorder_wait_s, self._now - s.silence_wait_s)
        while self._pending:
            batch = self._pending[0]
            contiguous = self._frontier is None or batch.ts <= self._frontier + 1.5 / batch.rate_hz
            if not contiguous and batch.ts > watermark:
                break  # a batch before it may still arrive
            self._pending.pop(0)
            out += self._consume(batch)
        # The device is silent (no hole waits for filling): settle the signal up to the watermark.
        if not self._pending and self._frontier is not None and watermark > self._frontier:
            self._frontier = watermark
            out += self._evaluate()
        return out

    def _count_stale(self, ts: float) -> None:
        if ts in self._recent_batches:
            self.counters["duplicates"] += 1
        else:
            self.counters["late"] += 1
            self._log_once("late", "accel batch arrived after its time was settled", ts=ts)

    def _consume(self, batch: _Batch) -> list[Transition]:
        s = self.settings
        t = batch.ts + np.arange(len(batch.xyz)) / batch.rate_hz
        xyz = batch.xyz
        if self._frontier is not None:
            keep = t >= self._frontier - 0.5 / batch.rate_hz  # overlap with what we have
            if not np.any(keep):
                self._count_stale(batch.ts)
                return []
            t, xyz = t[keep], xyz[keep]
        self.counters["batches"] += 1
        self._recent_batches.append(batch.ts)
        del self._recent_batches[:-_RECENT_BATCHES]
        first = float(t[0])
        if self._last_sample_ts is not None and first - self._last_sample_ts > s.max_gap_s:
            self._reset_history(first)
        self._rate_hz = batch.rate_hz
        self._t = np.concatenate([self._t, t])
        self._xyz = np.concatenate([self._xyz, xyz])
        self._last_sample_ts = float(t[-1])
        end = float(t[-1]) + 1.0 / batch.rate_hz
        self._frontier = end if self._frontier is None else max(self._frontier, end)
        out = self._evaluate()
        self._trim()
        return out

    def _trim(self) -> None:
        """Keep only the samples a future decision can look at (small snapshots)."""
        assert self._frontier is not None
        s = self.settings
        margin = 2.0 / self._rate_hz
        # Impacts not yet found look back over their pre-impact window and their
        # neighbourhood (smoothed); impacts in flight over their pre-impact window;
        # clearing over the current one-second block.
        needed = [self._scanned_until - max(s.pre_impact_from_s, s.peak_merge_s + s.smoothing_s)]
        if self._in_flight:
            needed.append(self._in_flight[0][0] - s.pre_impact_from_s)
        if self._alarm is not None:
            needed.append(self._alarm.next_block)
        if self._learn_next is not None:
            needed.append(self._learn_next)
        keep_since = max(min(needed) - margin, self._frontier - s.history_s)
        first = int(np.searchsorted(self._t, keep_since, side="left"))
        if first:
            self._t = self._t[first:]
            self._xyz = self._xyz[first:]

    def _reset_history(self, resume_at: float) -> None:
        """A long gap: the signal before it tells nothing about what comes after."""
        self.counters["gap_resets"] += 1
        self.counters["impacts_without_data"] += len(self._in_flight)
        self._log_once("gap", "accel stream gap: history reset", resume_at=resume_at)
        self._t = np.empty(0)
        self._xyz = np.empty((0, 3))
        self._in_flight = []
        self._scanned_until = resume_at - 1e-9
        self._learn_next = resume_at  # the upright learned so far is kept
        if self._alarm is not None:
            self._alarm.next_block = resume_at
            self._alarm.upright_run = self._alarm.active_in_run = 0

    # ---- detection -------------------------------------------------------------

    def _magnitude(self) -> FloatArray:
        samples = max(1, round(self._rate_hz * self.settings.smoothing_s))
        return smoothed_magnitude(self._xyz, samples)

    def _evaluate(self) -> list[Transition]:
        assert self._frontier is not None
        out: list[Transition] = []
        self._scan_impacts()
        s = self.settings
        while self._in_flight and self._in_flight[0][0] + s.decision_delay_s <= self._frontier:
            impact_ts, peak = self._in_flight.pop(0)
            # What the wearer did before this impact (walked, got up, moved) decides what
            # it means.
            self._learn_upright(until=impact_ts - s.pre_impact_to_s)
            out += self._judge_clear(until=impact_ts)
            out += self._judge(impact_ts, peak)
        self._learn_upright(until=self._frontier)
        out += self._judge_clear()
        return out

    def _scan_impacts(self) -> None:
        """Find peaks >= impact_g that are the highest within ±peak_merge_s."""
        assert self._frontier is not None
        s = self.settings
        scan_to = self._frontier - s.peak_merge_s
        if scan_to <= self._scanned_until:
            return
        t = self._t
        lo = int(np.searchsorted(t, self._scanned_until, side="right"))
        hi = int(np.searchsorted(t, scan_to, side="right"))
        self._scanned_until = scan_to
        if hi <= lo:
            return
        svm = self._magnitude()
        # Edges a quarter sample inside: float noise in sample times must not move them.
        q = 0.25 / self._rate_hz
        for k in lo + np.nonzero(svm[lo:hi] >= s.scan_g)[0]:
            tk = float(t[k])
            before = window(t, tk - s.peak_merge_s + q, tk - q)
            after_end = int(np.searchsorted(t, tk + s.peak_merge_s - q, side="left"))
            peak = float(svm[k])
            # Strictly above what precedes, at least what follows: the first of equal maxima.
            if before.stop > before.start and float(svm[before].max()) >= peak:
                continue
            if float(svm[k:after_end].max()) > peak:
                continue
            self.counters["impacts"] += 1
            self._in_flight.append((tk, peak))
        if len(self._in_flight) > _MAX_IN_FLIGHT:
            dropped = len(self._in_flight) - _MAX_IN_FLIGHT
            self.counters["impacts_without_data"] += dropped
            # Keep the strongest: a fall's impact outranks the gait peaks around it.
            strongest = sorted(self._in_flight, key=lambda p: -p[1])[:_MAX_IN_FLIGHT]
            self._in_flight = sorted(strongest)

    def _judge(self, impact_ts: float, peak: float) -> list[Transition]:
        s = self.settings
        assessment = assess_impact(
            self._t,
            self._xyz,
            impact_ts,
            peak,
            pre_from_s=s.pre_impact_from_s,
            pre_to_s=s.pre_impact_to_s,
            settle_s=s.settle_s,
            observe_s=s.observe_s,
            rate_hz=self._rate_hz,
            min_coverage=s.min_coverage,
        )
        if assessment is None:
            self.counters["impacts_without_data"] += 1
            return []
        assessment = self._against_upright(assessment)
        if self._on_assessment is not None:
            self._on_assessment(assessment)
        if not looks_like_fall(assessment, s):
            return []
        falls = 1
        if self._alarm is not None:
            # While a fall alarm is open, a new impact is a new fall only once the wearer
            # has moved again since the last one (not the same fall's second thump),
            # whether or not she came back to the posture she had before.
            moved_at = self._alarm.moved_at
            if moved_at is None or moved_at + 1.0 > impact_ts:
                return []
            falls = self._alarm.falls + 1
        self.counters["falls"] += 1
        self._alarm = _Alarm(
            impact_ts=impact_ts,
            pre_gravity=assessment.pre_gravity,
            next_block=impact_ts + s.decision_delay_s,
            falls=falls,
        )
        return [self._raise(assessment, falls)]

    @property
    def upright(self) -> FloatArray | None:
        """The wearer's learned upright gravity direction (unit), once known."""
        if self._walk_blocks < self.settings.upright_learn_s:
            return None
        norm = float(np.linalg.norm(self._upright_sum))
        return self._upright_sum / norm if norm > 1e-9 else None

    def _learn_upright(self, until: float) -> None:
        """Learn from one-second blocks of walking up to `until`: gait-like movement, about
        1 g on average, and (once known) not far from the upright learned so far, so that
        crawling or rolling on the floor does not teach "lying" as upright."""
        if self._frontier is None or len(self._t) == 0:
            return
        s = self.settings
        if self._learn_next is None:
            self._learn_next = float(self._t[0])
        half = 0.5 / self._rate_hz
        end = min(self._frontier, until)
        while self._learn_next + 1.0 <= end:
            start = self._learn_next
            nxt = int(np.searchsorted(self._t, start - half, side="left"))
            if nxt >= len(self._t) or float(self._t[nxt]) >= start + 1.0:
                # No samples in this block: skip at once to the next sample (or the end),
                # not second by second through a silent device's hours.
                ahead = float(self._t[nxt]) if nxt < len(self._t) else end
                self._learn_next = max(start + 1.0, start + math.floor(ahead - start))
                continue
            self._learn_next = start + 1.0
            block = self._xyz[window(self._t, start - half, start + 1.0 - half)]
            if len(block) < max(2.0, 0.8 * self._rate_hz):
                continue
            moving = movement_rms(block)
            mean = block.mean(axis=0)
            size = float(np.linalg.norm(mean))
            if not (s.walk_min_g <= moving <= s.walk_max_g and 0.8 <= size <= 1.2):
                continue
            known = self.upright
            if known is not None and angle_deg(mean, known) > 40.0:
                continue
            # Decay: the last ~15 minutes of walking speak for how the device sits now.
            self._upright_sum = self._upright_sum * 0.999 + mean / size
            self._walk_blocks += 1

    def _against_upright(self, a: ImpactAssessment) -> ImpactAssessment:
        s = self.settings
        saturated = False
        if s.sensor_range_g is not None:
            reach = 1.5 / self._rate_hz  # the peak sample and its neighbours
            near = window(self._t, a.impact_ts - reach, a.impact_ts + reach)
            rail = 0.98 * s.sensor_range_g
            saturated = bool(len(self._xyz[near]) and np.max(np.abs(self._xyz[near])) >= rail)
        up = self.upright
        if up is None:
            return replace(a, saturated=saturated)
        return replace(
            a,
            upright_before_deg=angle_deg(np.array(a.pre_gravity), up),
            upright_after_deg=angle_deg(np.array(a.post_gravity), up),
            saturated=saturated,
        )

    def _judge_clear(self, until: float = math.inf) -> list[Transition]:
        """One-second blocks after the fall (up to `until`): clear once the wearer is up and
        moving again; note when she first moved at all."""
        alarm = self._alarm
        if alarm is None or self._frontier is None:
            return []
        s = self.settings
        gravity = np.array(alarm.pre_gravity)
        half = 0.5 / self._rate_hz  # block edges between samples, not on them
        while alarm.next_block + 1.0 <= min(self._frontier, until):
            start = alarm.next_block
            if len(self._t) == 0 or self._t[-1] < start:
                # No samples since (device silent): skip the empty blocks at once.
                skipped = max(1.0, math.floor(self._frontier - start))
                alarm.next_block = start + skipped
                alarm.upright_run = alarm.active_in_run = 0
                continue
            alarm.next_block = start + 1.0
            block = self._xyz[window(self._t, start - half, start + 1.0 - half)]
            enough = len(block) >= max(1.0, s.min_coverage * self._rate_hz)
            active = enough and movement_rms(block) >= s.clear_active_g
            if active and alarm.moved_at is None:
                alarm.moved_at = start
            upright = enough and angle_deg(block.mean(axis=0), gravity) <= s.clear_upright_deg
            if not upright:
                alarm.upright_run = alarm.active_in_run = 0
                continue
            alarm.upright_run += 1
            if active:
                alarm.active_in_run += 1
            if alarm.upright_run >= s.clear_upright_s and alarm.active_in_run >= s.clear_active_s:
                self._alarm = None
                self.counters["clears"] += 1
                return [self._clear(alarm, start + 1.0)]
        return []

    # ---- transitions -----------------------------------------------------------

    def _raise(self, a: ImpactAssessment, falls: int = 1) -> Transition:
        s = self.settings
        details = {
            "impact_ts": a.impact_ts,
            "falls_while_open": falls,
            "peak_g": round(a.peak_g, 2),
            "posture_change_deg": round(a.posture_change_deg, 1),
            "stillness_g": round(a.stillness_g, 3),
            "upright_after_deg": None
            if a.upright_after_deg is None
            else round(a.upright_after_deg, 1),
            "saturated": a.saturated,
            "observed_s": s.observe_s,
            "thresholds": {
                "impact_g": s.impact_g,
                "posture_change_deg": s.posture_change_deg,
                "stillness_g": s.stillness_g,
            },
        }
        evidence = (
            self._evidence(a.impact_ts, seen(EvidenceCode.IMPACT, g=round(a.peak_g, 1))),
            self._evidence(
                a.impact_ts + s.decision_delay_s,
                seen(
                    EvidenceCode.POSTURE_STILL,
                    deg=round(a.posture_change_deg),
                    g=round(a.stillness_g, 2),
                    s=s.observe_s,
                ),
            ),
        )
        return Transition(
            action=TransitionAction.RAISE,
            kind=AlertKind.WEARABLE_FALL,
            site_id=self.site_id,
            ts=a.impact_ts,
            severity=DEFAULT_SEVERITY[AlertKind.WEARABLE_FALL],
            resident_id=self.resident_id,
            room_id=self.room_id,
            device_id=self.device_id,
            evidence=evidence,
            details=details,
        )

    def _evidence(self, ts: float, observation: Observation) -> Evidence:
        return Evidence(
            ts=ts,
            device_id=self.device_id,
            stream=Stream.ACCEL.value,
            summary=observation.english(),
            room_id=self.room_id,
            observations=(observation,),
        )

    def _clear(self, alarm: _Alarm, ts: float) -> Transition:
        s = self.settings
        return Transition(
            action=TransitionAction.CLEAR,
            kind=AlertKind.WEARABLE_FALL,
            site_id=self.site_id,
            ts=ts,
            severity=DEFAULT_SEVERITY[AlertKind.WEARABLE_FALL],
            resident_id=self.resident_id,
            room_id=self.room_id,
            device_id=self.device_id,
            evidence=(self._evidence(ts, seen(EvidenceCode.UPRIGHT_AGAIN, s=s.clear_upright_s)),),
            details={"impact_ts": alarm.impact_ts, "upright_s": alarm.upright_run},
        )

    def _log_once(self, cause: str, message: str, **extra: Any) -> None:
        if cause in self._logged_causes:
            return
        self._logged_causes.add(cause)
        log.warning(
            message,
            extra={"site_id": self.site_id, "device_id": self.device_id, **extra},
        )


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _float_or_minus_inf(value: float | None) -> float:
    return -math.inf if value is None else float(value)


def _stack(x: Sequence[float], y: Sequence[float], z: Sequence[float]) -> FloatArray:
    if not x:
        return np.empty((0, 3))
    return np.ascontiguousarray(np.array([x, y, z], dtype=np.float64).T)
