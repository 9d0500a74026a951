"""The wearable's accelerometer: one-second batches of 50 Hz [x, y, z] samples in g.

The pendant hangs upright when the wearer stands (gravity on +z, give or take how
it sits on the chest), tilts when they sit and lies across when they lie down.
Walking adds a step rhythm; a fall is a short free fall, an impact of several g
and a settle into a lying orientation, followed by stillness.
"""

from __future__ import annotations

import math
import random

RATE_HZ = 50
SAMPLES = RATE_HZ  # one batch is one second

Vector = tuple[float, float, float]


def gravity(posture: str, rng: random.Random) -> Vector:
    """Gravity in the device frame for a posture, with the pendant's own wobble."""
    tilt = math.radians(rng.gauss(0.0, 7.0))
    turn = rng.uniform(0, 2 * math.pi)
    if posture == "lying":
        lean = math.radians(90 + rng.gauss(0, 8))
    elif posture == "sitting":
        lean = math.radians(30 + rng.gauss(0, 6))
    else:
        lean = tilt
    return (
        math.sin(lean) * math.cos(turn),
        math.sin(lean) * math.sin(turn),
        math.cos(lean),
    )


def _blend(a: Vector, b: Vector, f: float) -> Vector:
    v = [a[i] + (b[i] - a[i]) * f for i in range(3)]
    n = math.sqrt(sum(x * x for x in v)) or 1.0
    return (v[0] / n, v[1] / n, v[2] / n)


def _round(rows: list[Vector]) -> list[list[float]]:
    return [[round(x, 3), round(y, 3), round(z, 3)] for x, y, z in rows]


def still(g: Vector, rng: random.Random, noise: float = 0.008) -> list[list[float]]:
    """Lying (or sitting) still in orientation `g`: breathing-level noise only."""
    return _round(
        [
            (g[0] + rng.gauss(0, noise), g[1] + rng.gauss(0, noise), g[2] + rng.gauss(0, noise))
            for _ in range(SAMPLES)
        ]
    )


def walk(rng: random.Random, g: Vector | None = None) -> list[list[float]]:
    g = gravity("upright", rng) if g is None else g
    cadence = rng.uniform(1.4, 1.9)  # steps per second, slower in old age
    amp = rng.uniform(0.12, 0.28)
    phase = rng.uniform(0, 2 * math.pi)
    rows: list[Vector] = []
    for i in range(SAMPLES):
        t = i / RATE_HZ
        step = amp * math.sin(2 * math.pi * cadence * t + phase)
        sway = 0.4 * amp * math.sin(math.pi * cadence * t + phase)
        rows.append(
            (
                g[0] + sway + rng.gauss(0, 0.03),
                g[1] + rng.gauss(0, 0.03),
                g[2] + step + rng.gauss(0, 0.03),
            )
        )
    return _round(rows)


def change_posture(a: Vector, b: Vector, rng: random.Random) -> list[list[float]]:
    """Sitting or lying down, or getting up: a smooth turn with a small bump, no impact."""
    rows: list[Vector] = []
    for i in range(SAMPLES):
        f = min(1.0, i / (0.8 * SAMPLES))
        g = _blend(a, b, f)
        bump = 1.0 + 0.25 * math.sin(math.pi * f) if f < 1.0 else 1.0
        rows.append(tuple(x * bump + rng.gauss(0, 0.02) for x in g))  # type: ignore[arg-type]
    return _round(rows)


def fall(rng: random.Random, up: Vector, down: Vector) -> list[list[float]]:
    """Walking, ~0.3 s of free fall, an impact of 3-6 g, then settling lying down."""
    peak = rng.uniform(3.0, 6.0)
    rows: list[Vector] = []
    for i in range(SAMPLES):
        t = i / RATE_HZ
        if t < 0.3:
            step = 0.2 * math.sin(2 * math.pi * 1.6 * t)
            rows.append((up[0], up[1], up[2] + step))
        elif t < 0.6:
            scale = rng.uniform(0.1, 0.35)  # near weightless
            g = _blend(up, down, (t - 0.3) / 0.3)
            rows.append((g[0] * scale, g[1] * scale, g[2] * scale))
        elif t < 0.68:
            k = peak * math.sin(math.pi * (t - 0.6) / 0.08)
            rows.append(
                (
                    down[0] * k + rng.gauss(0, 0.05),
                    down[1] * k + rng.gauss(0, 0.05),
                    down[2] * k + rng.gauss(0, 0.05),
                )
            )
        else:
            ring = 0.4 * math.exp(-(t - 0.68) * 12) * math.sin(2 * math.pi * 9 * t)
            rows.append(
                (
                    down[0] + ring + rng.gauss(0, 0.02),
                    down[1] + rng.gauss(0, 0.02),
                    down[2] + ring + rng.gauss(0, 0.02),
                )
            )
    return _round(rows)


def magnitude_peak(samples: list[list[float]]) -> float:
    return max(math.sqrt(x * x + y * y + z * z) for x, y, z in samples)
