"""How long `decode` takes per message, for typical messages of each codec.

Run `eldercare bench codecs` (or `python -m benchmarks.codecs`). Single-threaded,
best of several rounds, so the figure is the codec's own cost on this machine.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from ingest.codecs import decode
from ingest.decoded import Decoded

NOW = 1714528800.0

CASES: dict[str, tuple[str, bytes]] = {
    "native motion": (
        "eldercare/hh-3-2-401/pir-1/motion",
        b'{"ts": 1714528799.5, "motion": true, "seq": 4711}',
    ),
    "native contact (ISO ts)": (
        "eldercare/hh-3-2-401/door-1/contact",
        b'{"ts": "2024-05-01T09:59:59+08:00", "open": true}',
    ),
    "native accel (50 samples)": (
        "eldercare/hh-3-2-401/pendant-1/accel",
        json.dumps({"ts": NOW - 1, "rate_hz": 50, "samples": [[0.01, -0.02, 0.98]] * 50}).encode(),
    ),
    "z2m bed strap (4 keys, last_seen)": (
        "zigbee2mqtt/hh-401/bedroom/bed",
        b'{"occupancy":true,"battery":97,"linkquality":120,"voltage":3005,'
        b'"last_seen":"2024-05-01T09:59:59+08:00"}',
    ),
    "z2m availability": ("zigbee2mqtt/hh-401/bedroom/bed/availability", b'{"state":"online"}'),
    "shelly door state": ("shellies/shellydw2-483FDA825476/sensor/state", b"open"),
    "tasmota SENSOR": (
        "tele/sonoff2/SENSOR",
        b'{"Time":"2024-05-01T10:00:00","Switch1":"ON","DS18B20":{"Temperature":20.6}}',
    ),
}


def microseconds_per_message(topic: str, payload: bytes, n: int = 20000, rounds: int = 5) -> float:
    assert isinstance(decode(topic, payload, NOW), Decoded)
    best = float("inf")
    run: Callable[[str, bytes, float], object] = decode
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(n):
            run(topic, payload, NOW)
        best = min(best, time.perf_counter() - start)
    return best / n * 1e6


def measure(n: int = 20000) -> dict[str, float]:
    return {name: microseconds_per_message(t, p, n) for name, (t, p) in CASES.items()}


def main() -> None:
    for name, us in measure().items():
        print(f"{name:36s} {us:7.2f} µs/msg  ({1e6 / us:9,.0f} msg/s on one core)")


if __name__ == "__main__":
    main()
