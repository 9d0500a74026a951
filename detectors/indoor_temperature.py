"""Heat and cold in the home, for a resident who is there.

Older people die in heat waves and in cold homes, slowly, without pressing a button.
Each indoor temperature sensor is followed on its own (a hot south bedroom is hot even
if the hall is not), against the limits of each resident (settings per site or
resident):

- heat: at or above `limit_c` (30 °C) for `sustained_minutes` (2 h), or at or above it
  and risen by `fast_rise_c` within `fast_rise_minutes` (a flat heating fast);
- cold: at or below `limit_c` (16 °C) for `sustained_minutes` within the night window
  (a cold night, when the body cools most and nobody looks in).

Time counts from the first reading past the limit (sensors report on change, so the
last reading holds until the next). The alert clears when every sensor is back past the
limit by `clear_margin_c`. Nobody at home (the outer door and no movement since, see
`detectors.absence`): no alert; one is raised when the resident comes back into it.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

from pydantic import BaseModel, Field

from detectors.occupancy import WATCHED_STREAMS
from detectors.rule import EvidenceData, Rule, RuleState, evidence, rule_state
from detectors.settings import ColdSettings, HeatSettings
from eldercare.domain import AlertKind, Reading, Stream, Transition, TransitionAction
from eldercare.evidence import EvidenceCode, Observation, seen


@rule_state
class _Track(RuleState):
    """One sensor judged against one resident's limit."""

    resident: str  # "" = the site (no residents registered)
    device_id: str
    past_limit_since: float | None = None  # first reading past the limit, while it holds
    count_from: float | None = None  # when the sustained time starts counting (cold: at night)
    evidence: EvidenceData | None = None
    recent: list[tuple[float, float]] = Field(default_factory=list)  # (ts, °C), heat's rise


@rule_state
class IndoorTemperatureState(RuleState):
    tracks: dict[str, _Track] = Field(default_factory=dict)  # "resident|device" → track
    raised: dict[str, str] = Field(default_factory=dict)  # resident → device that raised


class IndoorTemperatureRule(Rule[IndoorTemperatureState]):
    __slots__ = ()

    state_model = IndoorTemperatureState
    streams = WATCHED_STREAMS | {Stream.TEMPERATURE}
    reads_picture = True  # home or away, from the site's shared resident picture
    kind: ClassVar[AlertKind]
    settings_model: ClassVar[type[BaseModel]]

    # --- what differs between heat and cold ----------------------------------------------

    @abstractmethod
    def _past_limit(self, celsius: float, resident: str) -> bool: ...

    @abstractmethod
    def _back_within(self, celsius: float, resident: str) -> bool: ...

    @abstractmethod
    def _count_from(self, since: float, resident: str) -> float:
        """When the sustained time starts counting for a crossing at `since`."""

    @abstractmethod
    def _sustained_s(self, resident: str) -> float: ...

    def _raise_now(self, track: _Track, reading: Reading) -> bool:
        """Raise at once on this reading (heat rising fast)."""
        return False

    def _still_counts(self, track: _Track, due: float) -> bool:
        """Does the sustained time up to `due` count (cold: within one night)?"""
        return True

    def _seen(self, celsius: float) -> Observation:
        return seen(EvidenceCode.INDOOR_CELSIUS, celsius=round(celsius, 1))

    # --- the rule -------------------------------------------------------------------------

    def _enabled(self, resident: str) -> bool:
        return bool(getattr(self._settings(resident), "enabled", True))

    def _settings(self, resident: str) -> BaseModel:
        return self.ctx.settings(self.name, self.settings_model, resident or None)

    def _targets(self, reading: Reading) -> tuple[str, ...]:
        """Whose home a sensor's room is: everyone's at home; in an institution the
        residents of its room (or everyone, for a sensor outside any resident's room)."""
        if not self.ctx.resident_ids:
            return ("",)
        if self.ctx.is_institution:
            in_room = self.ctx.room_residents(self.ctx.room_of(reading))
            return in_room or self.ctx.resident_ids
        return self.ctx.resident_ids

    def on_reading(self, reading: Reading) -> list[Transition]:
        out: list[Transition] = []
        if self.picture.change == "returned":
            out += self._raise_due_on_return(reading.ts)
        if reading.stream != Stream.TEMPERATURE:
            return out
        celsius = reading.fields.get("celsius")
        if not isinstance(celsius, int | float) or isinstance(celsius, bool):
            return out
        for resident in self._targets(reading):
            if not self._enabled(resident):
                continue
            out += self._follow(resident, reading, float(celsius))
        return out

    def _follow(self, resident: str, reading: Reading, celsius: float) -> list[Transition]:
        key = f"{resident}|{reading.device_id}"
        track = self.state.tracks.get(key)
        if self._past_limit(celsius, resident):
            if track is None or track.past_limit_since is None:
                track = _Track(resident=resident, device_id=reading.device_id)
                track.past_limit_since = reading.ts
                track.count_from = self._count_from(reading.ts, resident)
                self.state.tracks[key] = track
            track.evidence = EvidenceData.seen(reading, self._seen(celsius))
            track.recent.append((reading.ts, celsius))
            home = not self.picture.is_away(reading.ts)
            if home and resident not in self.state.raised and self._raise_now(track, reading):
                return self._raise(track, reading.ts, "rising fast")
            return []
        if track is not None and self._back_within(celsius, resident):
            del self.state.tracks[key]
            return self._clear_if_over(resident, reading)
        if track is not None:
            track.recent.append((reading.ts, celsius))
            self._trim(track, reading.ts)
        return []

    def _trim(self, track: _Track, now: float) -> None:
        keep_s = 6 * 3600.0
        track.recent = [(t, c) for t, c in track.recent if now - t <= keep_s][-200:]

    def _clear_if_over(self, resident: str, reading: Reading) -> list[Transition]:
        if resident not in self.state.raised:
            return []
        if any(t.resident == resident for t in self.state.tracks.values()):
            return []  # another sensor is still past the limit
        device = self.state.raised.pop(resident)
        ev = EvidenceData.seen(reading, seen(EvidenceCode.TEMPERATURE_NORMAL))
        return [
            self.ctx.transition(
                TransitionAction.CLEAR,
                self.kind,
                reading.ts,
                resident_id=resident or None,
                room_id=ev.room_id,
                device_id=device,
                evidence=evidence(ev),
                details={"reason": "temperature back within the limit"},
            )
        ]

    def _raise(self, track: _Track, ts: float, why: str) -> list[Transition]:
        self.state.raised[track.resident] = track.device_id
        since = track.past_limit_since if track.past_limit_since is not None else ts
        ev = track.evidence
        celsius = track.recent[-1][1] if track.recent else None
        return [
            self.ctx.transition(
                TransitionAction.RAISE,
                self.kind,
                ts,
                resident_id=track.resident or None,
                room_id=ev.room_id if ev else self.ctx.device_room(track.device_id),
                device_id=track.device_id,
                evidence=evidence(ev),
                details={
                    "celsius": celsius,
                    "minutes": round((ts - since) / 60.0),
                    "reason": why,
                    "hazard": self.kind.value,
                },
            )
        ]

    def _waiting(self) -> list[tuple[float, str, _Track]]:
        out = []
        for key, track in self.state.tracks.items():
            if track.resident in self.state.raised or track.count_from is None:
                continue
            when = track.count_from + self._sustained_s(track.resident)
            if not self.picture.is_away(when):  # nobody home then: raised on the return
                out.append((when, key, track))
        return out

    def compute_due(self) -> float | None:
        dues = [due for due, _, _ in self._waiting()]
        return min(dues) if dues else None

    def fire(self, due: float) -> list[Transition]:
        out: list[Transition] = []
        for when, _, track in sorted(self._waiting(), key=lambda w: w[:2]):
            if when != due or track.resident in self.state.raised:
                continue
            if self._still_counts(track, due):
                out += self._raise(track, due, "sustained")
            else:
                track.count_from = self._count_from(due, track.resident)
        return out

    def _raise_due_on_return(self, ts: float) -> list[Transition]:
        out: list[Transition] = []
        for when, _, track in sorted(self._waiting(), key=lambda w: w[:2]):
            waited = when <= ts and track.resident not in self.state.raised
            if waited and self._still_counts(track, when):
                out += self._raise(track, ts, "sustained")
        return out


class HeatRule(IndoorTemperatureRule):
    __slots__ = ()

    name = "heat"
    kinds = (AlertKind.HEAT,)
    kind = AlertKind.HEAT
    settings_model = HeatSettings

    def _s(self, resident: str) -> HeatSettings:
        return self.ctx.settings(self.name, HeatSettings, resident or None)

    def _past_limit(self, celsius: float, resident: str) -> bool:
        return celsius >= self._s(resident).limit_c

    def _back_within(self, celsius: float, resident: str) -> bool:
        s = self._s(resident)
        return celsius < s.limit_c - s.clear_margin_c

    def _count_from(self, since: float, resident: str) -> float:
        return since

    def _sustained_s(self, resident: str) -> float:
        return self._s(resident).sustained_minutes * 60.0

    def _raise_now(self, track: _Track, reading: Reading) -> bool:
        s = self._s(track.resident)
        window = s.fast_rise_minutes * 60.0
        self._trim(track, reading.ts)
        now_c = track.recent[-1][1]
        earlier = [c for t, c in track.recent if reading.ts - t <= window]
        return bool(earlier) and now_c - min(earlier) >= s.fast_rise_c


class ColdRule(IndoorTemperatureRule):
    __slots__ = ()

    name = "cold"
    kinds = (AlertKind.COLD,)
    kind = AlertKind.COLD
    settings_model = ColdSettings

    def _s(self, resident: str) -> ColdSettings:
        return self.ctx.settings(self.name, ColdSettings, resident or None)

    def _past_limit(self, celsius: float, resident: str) -> bool:
        return celsius <= self._s(resident).limit_c

    def _back_within(self, celsius: float, resident: str) -> bool:
        s = self._s(resident)
        return celsius > s.limit_c + s.clear_margin_c

    def _count_from(self, since: float, resident: str) -> float:
        s = self._s(resident)
        if self.ctx.in_window(since, s.night_start, s.night_end):
            return since
        return self.ctx.next_local(since, s.night_start)

    def _sustained_s(self, resident: str) -> float:
        return self._s(resident).sustained_minutes * 60.0

    def _still_counts(self, track: _Track, due: float) -> bool:
        """The whole sustained span lies within one night window."""
        s = self._s(track.resident)
        start = track.count_from if track.count_from is not None else due
        return self.ctx.next_local(start, s.night_end) >= due
