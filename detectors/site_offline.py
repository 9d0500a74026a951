"""Site offline: every device of the site is silent or offline; nobody is watching.

Each device's silence deadline is `factor` × its report interval after its last
message (availability `offline` counts as silent at once). The site goes offline
when the last deadline passes, and comes back with any message. In `event` clock
mode the runtime advances a silent site with the global watermark, so its silence
is judged against the rest of the world's time.
"""

from __future__ import annotations

from pydantic import Field

from detectors.rule import EvidenceData, Rule, RuleState, evidence
from detectors.settings import SiteOfflineSettings
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

    @property
    def _settings(self) -> SiteOfflineSettings:
        return self.ctx.settings(self.name, SiteOfflineSettings)

    def advance(self, now: float) -> list[Transition]:
        if self.state.started_at is None:
            self.state.started_at = now
            self.state_changed()
        return super().advance(now)

    def on_reading(self, reading: Reading) -> list[Transition]:
        d = reading.device_id
        if self.ctx.device(d) is None:
            return []
        self.state.last_seen[d] = reading.ts
        if reading.stream == Stream.AVAILABILITY and not reading.fields.get("online", True):
            self.state.offline_by_lwt[d] = reading.ts
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
        if self.state.started_at is None or not self.ctx.devices:
            return None
        factor = self._settings.factor
        deadlines = []
        for dev in self.ctx.devices:
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
