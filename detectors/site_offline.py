"""Site offline: every device of the site is silent or offline; nobody is watching.

Each device's silence deadline is `factor` × its report interval after its last
message (availability `offline` counts as silent at once). The site goes offline
when the last deadline passes, and comes back with any message. In `event` clock
mode the runtime advances a silent site with the global watermark, so its silence
is judged against the rest of the world's time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field

from detectors.rule import EvidenceData, Rule, RuleState, evidence
from detectors.settings import SiteOfflineSettings
from detectors.site_context import SiteContext
from eldercare.domain import AlertKind, Reading, Stream, Transition, TransitionAction


class SiteOfflineState(RuleState):
    started_at: float | None = None
    last_seen: dict[str, float] = Field(default_factory=dict)
    offline_by_lwt: dict[str, float] = Field(default_factory=dict)  # device → when
    open_since: float | None = None
    last_evidence: EvidenceData | None = None


class SiteOfflineRule(Rule[SiteOfflineState]):
    name = "site_offline"
    kinds = (AlertKind.SITE_OFFLINE,)
    state_model = SiteOfflineState

    def __init__(self, ctx: SiteContext) -> None:
        super().__init__(ctx)
        # When the whole site falls silent, kept up to date per reading: a reading moves only
        # its own device's deadline, and a later deadline can only move the last one later.
        # Anything else (a deadline brought forward, a restore) scans all devices again.
        self._silent: float | None = None
        self._silent_known = False

    def state_changed(self) -> None:
        self._silent_known = False
        super().state_changed()

    def restore(self, state: Mapping[str, Any]) -> None:
        self._silent_known = False
        super().restore(state)

    def _deadline(self, device_id: str, interval_s: float) -> float | None:
        if device_id in self.state.offline_by_lwt:
            return self.state.offline_by_lwt[device_id]
        seen = self.state.last_seen.get(device_id, self.state.started_at)
        return None if seen is None else seen + self._settings.factor * interval_s

    @property
    def _settings(self) -> SiteOfflineSettings:
        return self.ctx.settings(self.name, SiteOfflineSettings)

    def advance(self, now: float) -> list[Transition]:
        if self.state.started_at is None:
            self.state.started_at = now
            self.state_changed()
        return super().advance(now)

    def on_reading(self, reading: Reading) -> list[Transition]:
        dev = self.ctx.device(reading.device_id)
        if dev is None:
            return []
        before = self._deadline(dev.id, dev.report_interval_s)
        out = self._on_reading(reading)
        if self._silent_known:
            after = self._deadline(dev.id, dev.report_interval_s)
            if before is None or after is None or after < before:
                self._silent_known = False
            elif self._silent is not None:
                self._silent = max(self._silent, after)
        return out

    def _on_reading(self, reading: Reading) -> list[Transition]:
        d = reading.device_id
        self.state.last_seen[d] = reading.ts
        if reading.stream == Stream.AVAILABILITY and not reading.fields.get("online", True):
            self.state.offline_by_lwt[d] = reading.ts
            self._silent_known = False
            return self.advance(reading.ts)  # this may have been the last device standing
        self.state.offline_by_lwt.pop(d, None)
        self.state.last_evidence = EvidenceData.of(reading, "message received")
        if self.state.open_since is None:
            return []
        since = self.state.open_since
        self.state.open_since = None
        return [
            self.ctx.transition(
                TransitionAction.CLEAR,
                AlertKind.SITE_OFFLINE,
                reading.ts,
                device_id=d,
                room_id=self.ctx.room_of(reading),
                evidence=evidence(self.state.last_evidence),
                details={"offline_minutes": round((reading.ts - since) / 60, 1)},
            )
        ]

    def _silent_at(self) -> float | None:
        """When the whole site is (or will be) silent, if nothing more arrives."""
        if not self._silent_known:
            self._silent = self._scan_silent_at()
            self._silent_known = True
        return self._silent

    def _scan_silent_at(self) -> float | None:
        if self.state.started_at is None or not self.ctx.site.devices:
            return None
        factor = self._settings.factor
        deadlines = []
        for dev in self.ctx.site.devices:
            if dev.id in self.state.offline_by_lwt:
                deadlines.append(self.state.offline_by_lwt[dev.id])
            else:
                seen = self.state.last_seen.get(dev.id, self.state.started_at)
                deadlines.append(seen + factor * dev.report_interval_s)
        return max(deadlines)

    def compute_due(self) -> float | None:
        if self.state.open_since is not None or not self._settings.enabled:
            return None
        return self._silent_at()

    def fire(self, due: float) -> list[Transition]:
        self.state.open_since = due
        last = max(self.state.last_seen.values(), default=None)
        return [
            self.ctx.transition(
                TransitionAction.RAISE,
                AlertKind.SITE_OFFLINE,
                due,
                evidence=evidence(self.state.last_evidence),
                details={
                    "devices": len(self.ctx.devices),
                    "last_message_minutes_ago": None
                    if last is None
                    else round((due - last) / 60, 1),
                },
            )
        ]
