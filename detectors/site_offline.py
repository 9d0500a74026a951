"""Site offline: the site's devices fell silent together; nobody is watching.

Each device is overdue `factor` × its report interval after its last message (at once
on availability `offline`; `detectors/silence.py`). The site is offline once
`silent_devices` (2) devices are overdue and nothing at all has been heard from the
site since before the first of them was due: devices failing one by one leave the
others talking in between, so two deadlines passing in one unbroken silence point at
the site (its power, gateway or link), not at two devices dying together. A site with
fewer devices still reporting is offline when every one of them is overdue. Devices
already overdue while the site still spoke (dead devices, `device_offline`'s
business), and devices not heard since the site was last timed afresh (never heard,
or not back since an outage), do not count. Any message brings the site back, and
from then on every device is timed afresh from the return. In `event` clock mode the
runtime advances a silent site with the global watermark, so its silence is judged
against the rest of the world's time.
"""

from __future__ import annotations

import functools
from bisect import bisect_left
from collections.abc import Iterator, Sequence

from pydantic import Field

from detectors.no_entries import Entries, no_entries, writable
from detectors.rule import EvidenceData, RuleState, evidence, rule_state
from detectors.settings import SiteOfflineSettings
from detectors.silence import SilenceRule
from eldercare.domain import AlertKind, Reading, Stream, Transition, TransitionAction
from eldercare.evidence import EvidenceCode, seen


@rule_state
class SiteOfflineState(RuleState):
    started_at: float | None = None
    last_seen: dict[str, float] = Field(default_factory=dict)
    offline_by_lwt: Entries[str, float] = Field(default_factory=no_entries)  # device → when
    open_since: float | None = None
    # The site's latest message; its time is when the site was last heard (an availability
    # `offline` is the broker speaking for a lost connection, not the site).
    last_evidence: EvidenceData | None = None
    timed_from: float | None = None  # deadlines count from here; None: started_at


class SiteOfflineRule(SilenceRule[SiteOfflineState]):
    """`_deadlines`: of the devices the silence is judged by."""

    name = "site_offline"
    kinds = (AlertKind.SITE_OFFLINE,)
    state_model = SiteOfflineState

    @functools.cached_property
    def _settings(self) -> SiteOfflineSettings:
        return self.ctx.settings(self.name, SiteOfflineSettings)  # the context never changes

    def _deadline(self, device_id: str, factor: float) -> float | None:
        """The device's deadline, if the site's silence is judged by it: it has been heard
        since the site was last timed afresh (a device not back since an outage, or never
        heard, is device_offline's). `silence_deadline`, unrolled for that case: this runs
        twice per reading."""
        state = self.state
        seen = state.last_seen.get(device_id)
        if seen is None:
            return None
        since = state.started_at if state.timed_from is None else state.timed_from
        if since is not None and seen < since:
            return None
        dev = self.ctx.device(device_id)
        if dev is None:
            return None
        offline_at = state.offline_by_lwt.get(device_id)
        if offline_at is not None and (since is None or offline_at >= since):
            return offline_at
        return seen + factor * dev.report_interval_s

    def _all_deadlines(self) -> Iterator[tuple[float, str]]:
        factor = self._settings.factor
        for dev in self.ctx.site.devices:
            if (due := self._deadline(dev.id, factor)) is not None:
                yield due, dev.id

    @property
    def _heard_at(self) -> float | None:
        last = self.state.last_evidence
        return None if last is None else last.ts

    def _in_silence(self) -> Sequence[tuple[float, str]]:
        """The deadlines due in the site's present silence, in order: not before its latest
        message (the site outlived those devices)."""
        items = self._deadlines.items(self._all_deadlines)
        heard = self._heard_at
        return items if heard is None else items[bisect_left(items, (heard,)) :]

    def advance(self, now: float) -> list[Transition]:
        if self.state.started_at is None:
            self.state.started_at = now
            self.state_changed()
        return super().advance(now)

    def on_reading(self, reading: Reading) -> list[Transition]:
        d = reading.device_id
        if self.ctx.device(d) is None:
            return []
        state = self.state
        factor = self._settings.factor
        before = self._deadline(d, factor)
        state.last_seen[d] = reading.ts
        offline = reading.stream == Stream.AVAILABILITY and not reading.fields.get("online", True)
        if offline:
            writable(state, "offline_by_lwt")[d] = reading.ts
        else:
            state.offline_by_lwt.pop(d, None)
            state.last_evidence = EvidenceData.seen(reading, seen(EvidenceCode.MESSAGE_RECEIVED))
        self._deadlines.move(d, before, self._deadline(d, factor))
        if offline:
            return self.advance(reading.ts)  # this may have made the silence an outage
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
        if self.state.started_at is None:
            return None
        # The silent_devices-th deadline of the present silence, or the last one if fewer
        # devices count: when that passes with nothing heard, the site is offline.
        items = self._deadlines.items(self._all_deadlines)
        heard = self._heard_at
        if not items:
            return None
        first = 0
        if heard is not None and items[0][0] < heard:  # rare: devices dead while it spoke
            first = bisect_left(items, (heard,))  # (heard,) sorts before (heard, device)
            if first == len(items):
                return None
        return items[min(first + settings.silent_devices, len(items)) - 1][0]

    def fire(self, due: float) -> list[Transition]:
        self.state.open_since = due
        heard = self._heard_at
        overdue = sorted(d for at, d in self._in_silence() if at <= due)
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
