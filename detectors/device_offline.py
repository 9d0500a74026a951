"""Device offline: a device silent for `factor` × its report interval, or whose
availability (MQTT Last Will / zigbee2mqtt availability) says offline, while the rest
of the site is heard.

A device overdue is only a device problem if the site outlives it: when the whole
site goes quiet (power, internet, gateway), its devices fall due one after another
and each would be a `device_offline` before `site_offline` could tell the outage
apart. So, while `site_offline` runs for the site, a device overdue is held until the
site speaks again: a message from any device after the deadline raises it then (the
site is alive, this device is not); a silence in which `site_offline`'s
`silent_devices` devices fell due was an outage, reported as `site_offline`, and every
device is then timed afresh from the return instead of raised. With `site_offline`
disabled, a device is raised at its deadline (or at once on availability offline).

Devices that have never spoken are timed from when this detector first saw the
site's time, so a device that never reports after installation is flagged too.
Any message from the device brings it back.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

from pydantic import Field

from detectors import device_set
from detectors.rule import EvidenceData, rule_state
from detectors.settings import DeviceOfflineSettings, SiteOfflineSettings
from detectors.silence import SilenceRule
from eldercare.domain import AlertKind, Reading, Stream, Transition
from eldercare.evidence import EvidenceCode, Observation, describe


@rule_state
class DeviceOfflineState(device_set.DeviceSetState):
    started_at: float | None = None
    last_seen: dict[str, float] = Field(default_factory=dict)  # an offline availability too
    offline_by_lwt: list[str] = Field(default_factory=list)  # offline since their last_seen
    timed_from: float | None = None  # deadlines count from here; None: started_at


class DeviceOfflineRule(SilenceRule[DeviceOfflineState]):
    """`_deadlines`: of the devices not raised."""

    name = "device_offline"
    kinds = (AlertKind.DEVICE_OFFLINE,)
    state_model = DeviceOfflineState

    @functools.cached_property
    def _settings(self) -> DeviceOfflineSettings:
        return self.ctx.settings(self.name, DeviceOfflineSettings)  # the context never changes

    @functools.cached_property
    def _site_settings(self) -> SiteOfflineSettings:
        return self.ctx.settings("site_offline", SiteOfflineSettings)

    @functools.cached_property
    def _held(self) -> bool:
        """Whether a device overdue waits for the site to be heard (site_offline runs)."""
        return self._site_settings.enabled

    def advance(self, now: float) -> list[Transition]:
        if self.state.started_at is None:
            self.state.started_at = now
            self.state_changed()
        return super().advance(now)

    def _due(self, device_id: str) -> float | None:
        """The device's deadline; None once raised (or not in the registry).
        `silence_deadline`, unrolled: this runs twice per reading."""
        state = self.state
        if device_id in state.members:
            return None
        dev = self.ctx.device(device_id)
        if dev is None:
            return None
        seen = state.last_seen.get(device_id)
        since = state.started_at if state.timed_from is None else state.timed_from
        if seen is None or (since is not None and since > seen):
            seen = since  # never heard, or not since the site's return: timed from then
        elif device_id in state.offline_by_lwt:
            return seen  # offline since its last_seen, after the site was timed afresh
        return None if seen is None else seen + self._settings.factor * dev.report_interval_s

    def _all_dues(self) -> Iterator[tuple[float, str]]:
        for dev in self.ctx.site.devices:
            if (due := self._due(dev.id)) is not None:
                yield due, dev.id

    def on_reading(self, reading: Reading) -> list[Transition]:
        state = self.state
        if state.members:
            pruned = device_set.prune_removed(state, self.ctx, AlertKind.DEVICE_OFFLINE, reading.ts)
            if pruned:
                self._deadlines.reset()
                return pruned + self.on_reading(reading)
        d = reading.device_id
        if self.ctx.device(d) is None or not self._settings.enabled:
            return []
        before = self._due(d)
        out: list[Transition] = []
        if reading.stream == Stream.AVAILABILITY and not reading.fields.get("online", True):
            state.last_seen[d] = reading.ts
            if d not in state.offline_by_lwt:
                state.offline_by_lwt.append(d)
            if not self._held:  # else overdue now: raised when the site is next heard, if it is
                why = EvidenceData.seen(
                    reading,
                    Observation(EvidenceCode.DEVICE_OFFLINE),
                    room_id=self.ctx.device_room(d),
                )
                out = device_set.change(
                    state,
                    self.ctx,
                    AlertKind.DEVICE_OFFLINE,
                    reading.ts,
                    d,
                    why,
                    {"reason": "availability offline"},
                )
        else:
            if self._held and self._deadlines.due_by(reading.ts, self._all_dues):
                out, popped = self._site_heard(reading)
                if popped:
                    before = None  # its entry was taken out with the others due
            state.last_seen[d] = reading.ts
            if d in state.offline_by_lwt:
                state.offline_by_lwt.remove(d)
            out += device_set.change(
                state,
                self.ctx,
                AlertKind.DEVICE_OFFLINE,
                reading.ts,
                d,
                None,
                {"reason": "device spoke again"},
            )
        self._deadlines.move(d, before, self._due(d))
        return out

    def _site_heard(self, reading: Reading) -> tuple[list[Transition], bool]:
        """The site spoke at `reading.ts`: judge the devices that fell due while it was quiet
        (and say whether the speaker was one of them)."""
        overdue = self._deadlines.pop_until(reading.ts, self._all_dues)
        if not overdue:
            return [], False
        state = self.state
        speaker = reading.device_id
        since = state.started_at if state.timed_from is None else state.timed_from
        # The devices site_offline judges the silence by: heard since the site was last timed
        # afresh (start, or the return from an outage) and not raised.
        judged = {
            dev.id
            for dev in self.ctx.site.devices
            if dev.id not in state.members
            and (seen := state.last_seen.get(dev.id)) is not None
            and (since is None or seen >= since)
        }
        fell_due = sum(1 for _, device_id in overdue if device_id in judged)
        if fell_due and fell_due >= min(self._site_settings.silent_devices, len(judged)):
            # An outage (site_offline's, raised by now): every device gets its full time
            # to be heard again from the return, as after installation.
            state.timed_from = reading.ts
            self._deadlines.reset()
            return [], True
        out: list[Transition] = []
        for due, device_id in overdue:
            if device_id != speaker:  # the speaker was late, but is here
                out += self._raise(device_id, due, reading.ts)
        return out, any(device_id == speaker for _, device_id in overdue)

    def _raise(self, device_id: str, due: float, now: float) -> list[Transition]:
        state = self.state
        seen = state.last_seen.get(device_id)
        if device_id in state.offline_by_lwt:
            code, reason = EvidenceCode.DEVICE_OFFLINE, "availability offline"
        elif seen is not None:
            code, reason = EvidenceCode.SILENT_SINCE, "silent"
        else:
            code, reason = EvidenceCode.NEVER_REPORTED, "silent"
        said = (Observation(code),)
        why = EvidenceData(
            ts=seen if seen is not None else due,
            device_id=device_id,
            stream=Stream.AVAILABILITY.value if reason != "silent" else "silence",
            summary=describe(said),
            room_id=self.ctx.device_room(device_id),
            observations=said,
        )
        return device_set.change(
            state,
            self.ctx,
            AlertKind.DEVICE_OFFLINE,
            now,
            device_id,
            why,
            {"reason": reason, "silent_minutes": round((now - why.ts) / 60, 1)},
        )

    def compute_due(self) -> float | None:
        if not self._settings.enabled or self._held:
            return None  # held devices are judged when the site is next heard
        items = self._deadlines.items(self._all_dues)
        return items[0][0] if items else None

    def fire(self, due: float) -> list[Transition]:
        self._deadlines.reset()
        out: list[Transition] = []
        for dev in self.ctx.devices:
            if self._due(dev.id) == due:
                out += self._raise(dev.id, due, due)
        return out
