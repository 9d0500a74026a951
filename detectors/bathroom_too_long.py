"""Long bathroom stay: the resident has been in a bathroom or toilet longer than 15 min
at night (the stay began in the night window) or 45 min by day.

Where the person is comes from the rooms of the sensors that fire:
- a stay begins with movement (PIR, flush, door) or mmWave presence in a bathroom;
- it ends with movement in any other room, the outer door, the bathroom's presence
  sensor reporting nobody, or the bathroom door opening again (a door opening toggles:
  one opening lets the person in, the next lets them out; closings are ignored, so a
  door left open does not confuse it).
A bathroom door opened again within `door_debounce_s` of its last counted opening
is the same passage (fumbling with the door or the light), not in-and-out.
A flush within `flush_after_exit_s` of leaving is the cistern refilling (flush
sensors fire on the refill, after the person has gone) and does not start a stay.
"""

from __future__ import annotations

from pydantic import Field

from detectors.movement import MovementState, is_movement
from detectors.rule import EvidenceData, Rule, RuleState, evidence
from detectors.settings import BathroomSettings
from eldercare.domain import AlertKind, Reading, Stream, Transition, TransitionAction


class _Stay(RuleState):
    room_id: str
    since: float
    entered: EvidenceData
    device_id: str
    limit_s: float
    raised: bool = False


class BathroomState(RuleState):
    movement: MovementState = Field(default_factory=MovementState)
    stays: dict[str, _Stay] = Field(default_factory=dict)  # resident id ("" = unknown) → stay
    left_at: dict[str, float] = Field(default_factory=dict)  # resident id → last stay's end
    door_passage: dict[str, float] = Field(default_factory=dict)  # door → last counted opening


class BathroomRule(Rule[BathroomState]):
    name = "bathroom_too_long"
    kinds = (AlertKind.BATHROOM_TOO_LONG,)
    state_model = BathroomState

    def _settings(self, resident: str | None) -> BathroomSettings:
        return self.ctx.settings(self.name, BathroomSettings, resident)

    def on_reading(self, reading: Reading) -> list[Transition]:
        moved = is_movement(reading, self.state.movement)
        present = reading.stream == Stream.PRESENCE
        if not moved and not present:
            return []
        room = self.ctx.room_of(reading)
        if self._repeated_opening(reading, room):
            return []
        residents = self.ctx.activity_residents(reading) or (
            (self.ctx.reading_resident(reading) or "",)
        )
        out: list[Transition] = []
        for resident in residents:
            out += self._locate(resident or "", reading, room, moved)
        return out

    def _repeated_opening(self, reading: Reading, room: str | None) -> bool:
        """A bathroom door opened again within `door_debounce_s` is the same passage."""
        if reading.stream != Stream.CONTACT or not reading.fields.get("open", False):
            return False
        if not self.ctx.is_bathroom(room) or self.ctx.is_outer_door(reading.device_id):
            return False
        last = self.state.door_passage.get(reading.device_id)
        debounce = self._settings(self.ctx.reading_resident(reading)).door_debounce_s
        if last is not None and reading.ts - last <= debounce:
            return True
        self.state.door_passage[reading.device_id] = reading.ts
        return False

    def _locate(
        self, key: str, reading: Reading, room: str | None, moved: bool
    ) -> list[Transition]:
        s = self._settings(key or None)
        if not s.enabled:
            return []
        stay = self.state.stays.get(key)
        in_bathroom = self.ctx.is_bathroom(room)
        if reading.stream == Stream.PRESENCE:
            present = bool(reading.fields.get("present", False))
            if not in_bathroom:
                return []
            if not present:
                return self._leave(key, reading, "bathroom presence sensor reports nobody")
            entering = stay is None
        elif in_bathroom and not self.ctx.is_outer_door(reading.device_id):
            door_opening = reading.stream == Stream.CONTACT and bool(
                reading.fields.get("open", False)
            )
            door_closing = reading.stream == Stream.CONTACT and not door_opening
            if stay is not None and stay.room_id == room and door_opening:
                return self._leave(key, reading, "bathroom door opened to leave")
            refill = (
                reading.stream == Stream.FLUSH
                and key in self.state.left_at
                and reading.ts - self.state.left_at[key] <= s.flush_after_exit_s
            )
            entering = stay is None and not door_closing and not refill
            if stay is not None and stay.room_id != room:
                out = self._leave(key, reading, "moved to another bathroom")
                return out + self._enter(key, reading, room, s)
        else:
            if stay is None or not moved:
                return []
            return self._leave(key, reading, "movement elsewhere")
        if entering and room is not None:
            return self._enter(key, reading, room, s)
        return []

    def _enter(
        self, key: str, reading: Reading, room: str | None, s: BathroomSettings
    ) -> list[Transition]:
        if room is None:
            return []
        night = self.ctx.in_window(reading.ts, s.night_start, s.night_end)
        limit = (s.night_minutes if night else s.day_minutes) * 60
        self.state.stays[key] = _Stay(
            room_id=room,
            since=reading.ts,
            entered=EvidenceData.of(reading, "activity in bathroom", room),
            device_id=reading.device_id,
            limit_s=limit,
        )
        return []

    def _leave(self, key: str, reading: Reading, why: str) -> list[Transition]:
        stay = self.state.stays.pop(key, None)
        if stay is not None:
            self.state.left_at[key] = reading.ts
        if stay is None or not stay.raised:
            return []
        return [
            self.ctx.transition(
                TransitionAction.CLEAR,
                AlertKind.BATHROOM_TOO_LONG,
                reading.ts,
                resident_id=key or None,
                room_id=stay.room_id,
                device_id=reading.device_id,
                evidence=evidence(stay.entered, EvidenceData.of(reading, why)),
                details={"minutes_in_bathroom": round((reading.ts - stay.since) / 60, 1)},
            )
        ]

    def compute_due(self) -> float | None:
        dues = [s.since + s.limit_s for s in self.state.stays.values() if not s.raised]
        return min(dues) if dues else None

    def fire(self, due: float) -> list[Transition]:
        out: list[Transition] = []
        for key in sorted(self.state.stays):
            stay = self.state.stays[key]
            if stay.raised or stay.since + stay.limit_s != due:
                continue
            stay.raised = True
            out.append(
                self.ctx.transition(
                    TransitionAction.RAISE,
                    AlertKind.BATHROOM_TOO_LONG,
                    due,
                    resident_id=key or None,
                    room_id=stay.room_id,
                    device_id=stay.device_id,
                    evidence=evidence(stay.entered),
                    details={
                        "minutes_in_bathroom": round((due - stay.since) / 60, 1),
                        "limit_minutes": round(stay.limit_s / 60, 1),
                        "entered_at": self.ctx.local(stay.since).strftime("%H:%M"),
                    },
                )
            )
        return out
