"""Signal features of a body-worn accelerometer around a suspected impact.

Pure numpy on arrays of samples: `t` (n,) event times in seconds and `xyz` (n, 3)
accelerations in g. Nothing here keeps state or knows about readings; the
wearable fall detector decides *when* to call these and what the numbers mean.

Physical picture of a fall as a pendant, watch or belt clip sees it:

1. before: the wearer is upright (standing, walking or sitting); the mean
   acceleration vector over a second or two is gravity, in device coordinates;
2. impact: a short peak of the acceleration magnitude well above 1 g;
3. after: the wearer lies on the floor, so gravity points another way in
   device coordinates (the posture changed), and they move little.

A bump, a jump or sitting down hard gives (2) without (3), so it never makes a
fall on its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class ImpactAssessment:
    """What happened around one impact: the numbers a fall decision is made on."""

    impact_ts: float  # event time of the peak
    peak_g: float  # acceleration magnitude at the peak
    posture_change_deg: float  # angle between gravity before the impact and after it
    stillness_g: float  # RMS movement after the impact (0 = perfectly still)
    pre_gravity: tuple[float, float, float]  # mean vector before the impact, g
    post_gravity: tuple[float, float, float]  # mean vector in the observation window, g
    # Against the wearer's learned upright (gravity while walking), when known: how far
    # from upright before the impact, and after it (90° = lying flat).
    upright_before_deg: float | None = None
    upright_after_deg: float | None = None
    saturated: bool = False  # an axis was at the sensor's range at the peak


def smoothed_magnitude(xyz: FloatArray, samples: int) -> FloatArray:
    """Magnitude of the causal `samples`-point moving average of the vector.

    Averaging over ~20 ms first makes peaks comparable across sampling rates (a
    200 Hz sensor sees sharper, higher spikes of the same impact than a 50 Hz one).
    """
    if samples <= 1 or len(xyz) == 0:
        plain: FloatArray = np.sqrt(np.einsum("ij,ij->i", xyz, xyz))
        return plain
    csum = np.cumsum(np.vstack([np.zeros((1, 3)), xyz]), axis=0)
    idx = np.arange(1, len(xyz) + 1)
    lo = np.maximum(idx - samples, 0)
    avg = (csum[idx] - csum[lo]) / (idx - lo)[:, None]
    smoothed: FloatArray = np.sqrt(np.einsum("ij,ij->i", avg, avg))
    return smoothed


def window(t: FloatArray, start: float, end: float) -> slice:
    """Index range of the samples with start <= t < end (t sorted)."""
    lo = int(np.searchsorted(t, start, side="left"))
    hi = int(np.searchsorted(t, end, side="left"))
    return slice(lo, hi)


def angle_deg(u: FloatArray, v: FloatArray) -> float:
    """Angle between two vectors in degrees (180 if either is ~zero: no direction known)."""
    nu = float(np.linalg.norm(u))
    nv = float(np.linalg.norm(v))
    if nu < 1e-9 or nv < 1e-9:
        return 180.0
    cos = float(np.dot(u, v)) / (nu * nv)
    return math.degrees(math.acos(max(-1.0, min(1.0, cos))))


def movement_rms(xyz: FloatArray) -> float:
    """RMS distance of the vector from its mean: 0 when still, ~0.2-0.4 g when walking.

    Uses all three axes, so turning over counts as movement, not only shaking.
    """
    if len(xyz) == 0:
        return 0.0
    dev = xyz - xyz.mean(axis=0)
    return float(np.sqrt(np.mean(np.einsum("ij,ij->i", dev, dev))))


def assess_impact(
    t: FloatArray,
    xyz: FloatArray,
    impact_ts: float,
    peak_g: float,
    *,
    pre_from_s: float,
    pre_to_s: float,
    settle_s: float,
    observe_s: float,
    rate_hz: float,
    min_coverage: float,
) -> ImpactAssessment | None:
    """Posture change and stillness around an impact, or None if too few samples.

    Gravity before = mean vector over [impact - pre_from_s, impact - pre_to_s]
    (walking averages out over a second and a half); after = mean over
    [impact + settle_s, impact + settle_s + observe_s] (the tumble is over).
    """
    h = 0.5 / rate_hz  # edges between samples: float noise in sample times must not move them
    pre = window(t, impact_ts - pre_from_s - h, impact_ts - pre_to_s - h)
    post = window(t, impact_ts + settle_s - h, impact_ts + settle_s + observe_s - h)
    n_pre = pre.stop - pre.start
    n_post = post.stop - post.start
    if n_pre < max(1.0, min_coverage * (pre_from_s - pre_to_s) * rate_hz):
        return None
    if n_post < max(1.0, min_coverage * observe_s * rate_hz):
        return None
    before = xyz[pre].mean(axis=0)
    after_samples = xyz[post]
    after = after_samples.mean(axis=0)
    return ImpactAssessment(
        impact_ts=impact_ts,
        peak_g=peak_g,
        posture_change_deg=angle_deg(before, after),
        stillness_g=movement_rms(after_samples),
        pre_gravity=(float(before[0]), float(before[1]), float(before[2])),
        post_gravity=(float(after[0]), float(after[1]), float(after[2])),
    )
