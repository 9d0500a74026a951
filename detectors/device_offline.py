"""Device offline: no message for `factor` × the device's report interval, or its
availability (MQTT Last Will / zigbee2mqtt availability) says offline.

Devices that have never spoken are timed from when this detector first saw the
site's time, so a device that never reports after installation is flagged too.
Any message from the device brings it back.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from typing import Any

from pydantic import Field

from detectors import device_set
from detectors.rule import EvidenceData, Rule
from detectors.settings import DeviceOfflineSettings
from detectors.site_context import SiteContext
from eldercare.domain import AlertKind, Reading, Stream, Transition


class DeviceOfflineState(device_set.DeviceSetState):
    started_at: float | None = None
    last_seen: dict[str, float] = Field(default_factory=dict)
    offline_by_lwt: list[str] = Field(default_factory=list)


def device_silence_due(
    state_last_seen: dict[str, float],
    offline_by_lwt: list[str],
    started_at: float | None,
    interval_s: float,
    factor: float,
    device_id: str,
) -> float | None:
    if device_id in offline_by_lwt:
        return None
    seen = state_last_seen.get(device_id, started_at)
    return None if seen is None else seen + factor * interval_s


class DeviceOfflineRule(Rule[DeviceOfflineState]):
    name = "device_offline"
    kinds = (AlertKind.DEVICE_OFFLINE,)
    state_model = DeviceOfflineState

    def __init__(self, ctx: SiteContext) -> None:
        super().__init__(ctx)
        # Device deadlines as a heap of (due, device), so the earliest is found without
        # scanning every device per reading: a reading changes only its own device's
        # deadline and pushes the new one; entries no longer current are dropped when they
        # come to the top. None: rebuild from the state (after a timer, a restore, or when
        # stale entries pile up). Not part of the state.
        self._heap: list[tuple[float, str]] | None = None

    def state_changed(self) -> None:
        self._heap = None
        super().state_changed()

    def restore(self, state: Mapping[str, Any]) -> None:
        self._heap = None
        super().restore(state)

    @property
    def _settings(self) -> DeviceOfflineSettings:
        return self.ctx.settings(self.name, DeviceOfflineSettings)

    def advance(self, now: float) -> list[Transition]:
        if self.state.started_at is None:
            self.state.started_at = now
            self.state_changed()
        return super().advance(now)

    def on_reading(self, reading: Reading) -> list[Transition]:
        out = self._on_reading(reading)
        heap = self._heap
        dev = self.ctx.device(reading.device_id)
        if heap is not None and dev is not None:
            after = self._due(dev.id, dev.report_interval_s)
            if after is not None:
                heapq.heappush(heap, (after, dev.id))
                if len(heap) > 2 * len(self.ctx.site.devices) + 8:
                    self._heap = None  # mostly stale entries: rebuild when next asked
        return out

    def _on_reading(self, reading: Reading) -> list[Transition]:
        if self.state.members:
            pruned = device_set.prune_removed(
                self.state, self.ctx, AlertKind.DEVICE_OFFLINE, reading.ts
            )
            if pruned:
                return pruned + self.on_reading(reading)
        if self.ctx.device(reading.device_id) is None or not self._settings.enabled:
            return []
        d = reading.device_id
        if reading.stream == Stream.AVAILABILITY and not reading.fields.get("online", True):
            self.state.last_seen[d] = reading.ts
            if d not in self.state.offline_by_lwt:
                self.state.offline_by_lwt.append(d)
            why = EvidenceData.of(reading, "device reported offline", self.ctx.device_room(d))
            return device_set.change(
                self.state,
                self.ctx,
                AlertKind.DEVICE_OFFLINE,
                reading.ts,
                d,
                why,
                {"reason": "availability offline"},
            )
        self.state.last_seen[d] = reading.ts
        if d in self.state.offline_by_lwt:
            self.state.offline_by_lwt.remove(d)
        return device_set.change(
            self.state,
            self.ctx,
            AlertKind.DEVICE_OFFLINE,
            reading.ts,
            d,
            None,
            {"reason": "device spoke again"},
        )

    def _due(self, device_id: str, interval_s: float, factor: float | None = None) -> float | None:
        state = self.state
        if device_id in state.members:
            return None
        return device_silence_due(
            state.last_seen,
            state.offline_by_lwt,
            state.started_at,
            interval_s,
            self._settings.factor if factor is None else factor,
            device_id,
        )

    def compute_due(self) -> float | None:
        settings = self._settings
        if not settings.enabled:
            return None
        factor = settings.factor
        heap = self._heap
        if heap is None:
            heap = self._heap = [
                (due, dev.id)
                for dev in self.ctx.site.devices
                if (due := self._due(dev.id, dev.report_interval_s, factor)) is not None
            ]
            heapq.heapify(heap)
        while heap:
            due, device_id = heap[0]
            dev = self.ctx.device(device_id)
            if dev is not None and self._due(device_id, dev.report_interval_s, factor) == due:
                return due
            heapq.heappop(heap)  # that device has reported (or gone offline) since
        return None

    def fire(self, due: float) -> list[Transition]:
        self._heap = None
        out: list[Transition] = []
        for dev in self.ctx.devices:
            if self._due(dev.id, dev.report_interval_s) != due:
                continue
            seen = self.state.last_seen.get(dev.id)
            why = EvidenceData(
                ts=seen if seen is not None else due,
                device_id=dev.id,
                stream="silence",
                summary="no message since" if seen is not None else "never reported",
                room_id=self.ctx.device_room(dev.id),
            )
            out += device_set.change(
                self.state,
                self.ctx,
                AlertKind.DEVICE_OFFLINE,
                due,
                dev.id,
                why,
                {"reason": "silent", "silent_minutes": round((due - why.ts) / 60, 1)},
            )
        return out
