"""Synthetic wearable accelerometer signals for the wearable fall tests (no datasets needed).

A `Signal` is a (n, 3) array in g sampled at `rate_hz`, starting at `start`
(event time). Builders append physically plausible segments: standing, walking,
a fall (free-fall dip while the body rotates, an impact spike, lying still),
sitting down hard, a bump, getting up. The device's "up" axis is -y when the
wearer stands, as on SisFall's waist sensor.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import pytest

from detectors.accel_features import angle_deg, smoothed_magnitude
from eldercare.domain import Reading, Stream

UPRIGHT = np.array([0.0, -1.0, 0.0])
LYING = np.array([0.0, 0.0, 1.0])
SITE, RESIDENT, DEVICE, ROOM = "site-1", "res-1", "pendant-1", "living"
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def tilted(deg: float) -> np.ndarray:
    """Gravity `deg` away from upright, towards lying."""
    r = math.radians(deg)
    return np.array([0.0, -math.cos(r), math.sin(r)])


@dataclass
class Signal:
    rate_hz: float = 50.0
    start: float = T0
    seed: int = 7
    parts: list[np.ndarray] = field(default_factory=list)
    marks: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)

    @property
    def n(self) -> int:
        return sum(len(p) for p in self.parts)

    @property
    def now(self) -> float:
        """Event time of the next sample to be appended."""
        return self.start + self.n / self.rate_hz

    def _count(self, seconds: float) -> int:
        return max(1, round(seconds * self.rate_hz))

    def _noise(self, n: int, sd: float) -> np.ndarray:
        return self.rng.normal(0.0, sd, size=(n, 3))

    def still(self, seconds: float, gravity: np.ndarray = UPRIGHT, noise: float = 0.01) -> Signal:
        n = self._count(seconds)
        self.parts.append(np.tile(gravity, (n, 1)) + self._noise(n, noise))
        return self

    def walk(self, seconds: float, gravity: np.ndarray = UPRIGHT, vigour: float = 1.0) -> Signal:
        """Gait: ~0.3 g vertical bounce at 2 steps/s, sway at 1 Hz, peaks ~1.4 g (× vigour)."""
        n = self._count(seconds)
        tt = np.arange(n) / self.rate_hz
        up = -gravity / np.linalg.norm(gravity)
        side = np.array([1.0, 0.0, 0.0])
        bounce = 0.3 * vigour * np.sin(2 * math.pi * 2.0 * tt)[:, None] * up
        sway = 0.12 * vigour * np.sin(2 * math.pi * 1.0 * tt)[:, None] * side
        self.parts.append(np.tile(gravity, (n, 1)) - bounce + sway + self._noise(n, 0.03))
        return self

    def impact(self, peak_g: float, direction: np.ndarray, samples: int = 2) -> Signal:
        """A short spike (0-padded by the caller's segments)."""
        d = direction / np.linalg.norm(direction)
        spike = np.tile(d * peak_g, (samples, 1))
        spike[0] *= 0.7  # rising edge
        self.marks["impact"] = self.now + 1 / self.rate_hz  # the highest sample
        self.parts.append(spike)
        return self

    def rotate(
        self, seconds: float, frm: np.ndarray, to: np.ndarray, magnitude: float = 0.4
    ) -> Signal:
        """Gravity turns from `frm` to `to` while the magnitude dips (a fall's free fall)."""
        n = self._count(seconds)
        w = np.linspace(0.0, 1.0, n)[:, None]
        dirs = (1 - w) * frm + w * to
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
        self.parts.append(dirs * magnitude + self._noise(n, 0.02))
        return self

    def fall(self, peak_g: float = 4.5, lie_s: float = 20.0, to: np.ndarray = LYING) -> Signal:
        """Walking person falls: 0.6 s tumble, impact, a bounce, then lies still."""
        self.rotate(0.6, UPRIGHT, to)
        self.impact(peak_g, to)
        self.rotate(0.3, to, to, magnitude=1.3)  # bounce
        self.still(lie_s, to, noise=0.02)
        return self

    def sit_down_hard(self, peak_g: float = 3.2, sit_s: float = 15.0) -> Signal:
        """Drops into a chair: a short dip, a thump; the trunk tilts ~20°, then rests."""
        sitting = tilted(20.0)
        self.rotate(0.4, UPRIGHT, sitting, magnitude=0.6)
        self.impact(peak_g, sitting)
        self.still(sit_s, sitting, noise=0.01)
        return self

    def get_up(self, seconds: float = 2.0, frm: np.ndarray = LYING) -> Signal:
        self.rotate(seconds, frm, UPRIGHT, magnitude=1.0)
        self.marks["up"] = self.now
        return self

    @property
    def samples(self) -> np.ndarray:
        return np.vstack(self.parts)

    def t(self, i: int) -> float:
        return self.start + i / self.rate_hz


def reading(ts: float, xyz: np.ndarray, rate_hz: float, device_id: str = DEVICE) -> Reading:
    return Reading(
        site_id=SITE,
        device_id=device_id,
        stream=Stream.ACCEL,
        ts=ts,
        fields={
            "rate_hz": rate_hz,
            "x": tuple(float(v) for v in xyz[:, 0]),
            "y": tuple(float(v) for v in xyz[:, 1]),
            "z": tuple(float(v) for v in xyz[:, 2]),
        },
        room_id=ROOM,
        resident_id=RESIDENT,
    )


def batches(sig: Signal, sizes: Sequence[int] | int | None = None, first: int = 0) -> list[Reading]:
    """The signal cut into readings: `first` samples, then `sizes` (default 1 s) repeated."""
    xyz = sig.samples
    cuts: list[int] = [0]
    if first:
        cuts.append(first)
    one_second = round(sig.rate_hz)
    seq: Iterator[int] = iter(sizes) if isinstance(sizes, Sequence) else iter(())
    fixed = sizes if isinstance(sizes, int) else one_second
    while cuts[-1] < len(xyz):
        cuts.append(min(len(xyz), cuts[-1] + max(1, next(seq, fixed))))
    return [reading(sig.t(a), xyz[a:b], sig.rate_hz) for a, b in itertools.pairwise(cuts)]


def samples_in(r: Reading) -> int:
    x = r.fields["x"]
    assert isinstance(x, tuple)
    return len(x)


# ---- sanity of the generators themselves ----------------------------------------


def test_standing_is_one_g_upright() -> None:
    xyz = Signal().still(5).samples
    assert np.allclose(xyz.mean(axis=0), UPRIGHT, atol=0.01)


def test_walking_peaks_stay_well_below_an_impact() -> None:
    svm = smoothed_magnitude(Signal().walk(20).samples, 1)
    assert 1.2 < svm.max() < 1.6
    assert svm.mean() == pytest.approx(1.0, abs=0.1)


def test_fall_has_spike_and_turns_gravity_by_ninety_degrees() -> None:
    sig = Signal().walk(5).fall(peak_g=4.5)
    xyz = sig.samples
    i = int(np.argmax(smoothed_magnitude(xyz, 1)))
    assert sig.t(i) == pytest.approx(sig.marks["impact"])
    assert angle_deg(xyz[: 4 * 50].mean(axis=0), xyz[-100:].mean(axis=0)) > 85


def test_batches_cover_every_sample_once() -> None:
    sig = Signal().walk(3.3)
    for first in (0, 1, 17, 49):
        rs = batches(sig, first=first)
        assert sum(samples_in(r) for r in rs) == sig.n
        assert rs[0].ts == sig.start
