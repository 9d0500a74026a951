"""Host a detector written for one device (e.g. one resident's wearable) as a site detector.

The catalogue builds one inner detector per matching device of the site, with the
settings resolved for the device's resident, routes each reading to its device's
detector, and merges their timers and snapshots.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from detectors.base import Detector
from detectors.site_context import SiteContext
from eldercare.domain import AlertKind, Reading, Stream, Transition
from eldercare.registry_model import Device

InnerFactory = Callable[[SiteContext, Device], Detector]


class PerDeviceDetector:
    def __init__(
        self,
        ctx: SiteContext,
        kinds: tuple[AlertKind, ...],
        matches: Callable[[Device], bool],
        factory: InnerFactory,
        event_time_streams: frozenset[Stream] = frozenset(),
    ) -> None:
        self.kinds = kinds
        # Streams whose late readings the runtime must hand over with their own event time
        # (accelerometer batches: their samples are timed from `ts`).
        self.event_time_streams = event_time_streams
        self.inner: dict[str, Detector] = {
            d.id: factory(ctx, d) for d in ctx.site.devices if matches(d)
        }

    def update(self, reading: Reading) -> list[Transition]:
        out = self.advance(reading.ts)
        inner = self.inner.get(reading.device_id)
        if inner is not None:
            out.extend(inner.update(reading))
        return out

    def advance(self, now: float) -> list[Transition]:
        out: list[Transition] = []
        for device_id in sorted(self.inner):
            out.extend(self.inner[device_id].advance(now))
        out.sort(key=lambda t: t.ts)
        return out

    def next_due(self) -> float | None:
        dues = [d for i in self.inner.values() if (d := i.next_due()) is not None]
        return min(dues) if dues else None

    def snapshot(self) -> dict[str, Any]:
        return {"devices": {k: v.snapshot() for k, v in sorted(self.inner.items())}}

    def restore(self, state: Mapping[str, Any]) -> None:
        for device_id, inner_state in state.get("devices", {}).items():
            if device_id in self.inner:  # a device removed from the registry is dropped
                self.inner[device_id].restore(inner_state)
