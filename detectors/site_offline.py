"""Site offline: the site's devices fell silent together; nobody is watching.

Each device is overdue `factor` × its report interval after its last message (at once
on availability `offline`; `detectors/silence.py`). The site is offline once
`silent_devices` (2) devices are overdue and nothing at all has been heard from the
site since before the first of them was due: devices failing one by one leave the
others talking in between, so two deadlines passing in one unbroken silence point at
the site (its power, gateway or link), not at two devices dying together. A site with
fewer devices still reporting is offline when every one of them is overdue. Devices
that were already overdue while the site still spoke (dead devices, `device_offline`'s
business) do not count. Any message brings the site back, and from then on every
device is timed afresh from the return. In `event` clock mode the runtime advances a
silent site with the global watermark, so its silence is judged against the rest of
the world's time.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import Field

from detectors.rule import EvidenceData, Rule, RuleState, evidence
from detectors.settings import SiteOfflineSettings
from detectors.silence import DeadlineHeap, silence_deadline
from detectors.site_context import SiteContext
from eldercare.domain import AlertKind, Reading, Stream, Transition, TransitionAction


class SiteOfflineState(RuleState):
    started_at: float | None = None
    last_seen: dict[str, float] = Field(default_factory=dict)
    offline_by_lwt: dict[str, float] = Field(default_factory=dict)  # device → when
    open_since: float | None = None
    last_evidence: EvidenceData | None = None
    # The site's latest message (an availability `offline` is the broker speaking for a
    # lost connection, not the site). None in snapshots from before it was kept: every
    # device counts until the next message.
    heard_at: float | None = None
    timed_from: float | None = None  # deadlines count from here; None: started_at


class SiteOfflineRule(Rule[SiteOfflineState]):
    name = "site_offline"
    kinds = (AlertKind.SITE_OFFLINE,)
    state_model = SiteOfflineState

    def __init__(self, ctx: SiteContext) -> None:
        super().__init__(ctx)
        self._deadlines = DeadlineHeap()

    def state_changed(self) -> None:
        self._deadlines.reset()
        super().state_changed()

    def restore(self, state: Mapping[str, Any]) -> None:
        self._deadlines.reset()
        super().restore(state)

    @property
    def _settings(self) -> SiteOfflineSettings:
        return self.ctx.settings(self.name, SiteOfflineSettings)

    def _deadline(self, device_id: str, factor: float) -> float | None:
        dev = self.ctx.device(device_id)
        if dev is None:
            return None
        state = self.state
        return silence_deadline(
            state.last_seen.get(device_id),
            state.offline_by_lwt.get(device_id),
            state.started_at if state.timed_from is None else state.timed_from,
            dev.report_interval_s,
            factor,
        )

    def _counted(self, device_id: str) -> float | None:
        """The device's deadline, if the device is one the site's silence is judged by: heard
        since the site was last timed afresh (a device not back since an outage, or never
        heard, is device_offline's) and due in the present silence (not before the site's
        latest message: then the site outlived it)."""
        state = self.state
        seen = state.last_seen.get(device_id)
        since = state.started_at if state.timed_from is None else state.timed_from
        if seen is None or (since is not None and seen < since):
            return None
        due = self._deadline(device_id, self._settings.factor)
        heard = state.heard_at
        return None if due is None or (heard is not None and due < heard) else due

    def _all_counted(self) -> Iterator[tuple[float, str]]:
        for dev in self.ctx.site.devices:
            if (due := self._counted(dev.id)) is not None:
                yield due, dev.id

    def advance(self, now: float) -> list[Transition]:
        if self.state.started_at is None:
            self.state.started_at = now
            self.state_changed()
        return super().advance(now)

    def on_reading(self, reading: Reading) -> list[Transition]:
        if self.ctx.device(reading.device_id) is None:
            return []
        out = self._on_reading(reading)
        d = reading.device_id
        self._deadlines.push(
            self._deadline(d, self._settings.factor), d, len(self.ctx.site.devices)
        )
        return out

    def _on_reading(self, reading: Reading) -> list[Transition]:
        d = reading.device_id
        state = self.state
        state.last_seen[d] = reading.ts
        if reading.stream == Stream.AVAILABILITY and not reading.fields.get("online", True):
            state.offline_by_lwt[d] = reading.ts
            self._deadlines.push(reading.ts, d, len(self.ctx.site.devices))
            return self.advance(reading.ts)  # this may have made the silence a site outage
        state.offline_by_lwt.pop(d, None)
        if state.heard_at is None or reading.ts > state.heard_at:
            state.heard_at = reading.ts
        state.last_evidence = EvidenceData.of(reading, "message received")
        if state.open_since is None:
            return []
        since = state.open_since
        state.open_since = None
        state.timed_from = reading.ts  # every device is timed afresh from the return
        self._deadlines.reset()
        return [
            self.ctx.transition(
                TransitionAction.CLEAR,
                AlertKind.SITE_OFFLINE,
                reading.ts,
                device_id=d,
                room_id=self.ctx.room_of(reading),
                evidence=evidence(state.last_evidence),
                details={"offline_minutes": round((reading.ts - since) / 60, 1)},
            )
        ]

    def compute_due(self) -> float | None:
        settings = self._settings
        if self.state.open_since is not None or not settings.enabled:
            return None
        if self.state.started_at is None or not self.ctx.site.devices:
            return None
        # The silent_devices-th deadline of the present silence, or the last one if fewer
        # devices count: when that passes with nothing heard, the site is offline.
        dues = self._deadlines.smallest(settings.silent_devices, self._counted, self._all_counted)
        return dues[-1] if dues else None

    def fire(self, due: float) -> list[Transition]:
        self.state.open_since = due
        heard = self.state.heard_at
        overdue = sorted(d for at, d in self._all_counted() if at <= due)
        return [
            self.ctx.transition(
                TransitionAction.RAISE,
                AlertKind.SITE_OFFLINE,
                due,
                evidence=evidence(self.state.last_evidence),
                details={
                    "devices": len(self.ctx.devices),
                    "overdue_devices": overdue,
                    "last_message_minutes_ago": None
                    if heard is None
                    else round((due - heard) / 60, 1),
                },
            )
        ]
