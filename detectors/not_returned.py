"""Not back home: the resident left (outer door, then no indoor movement) and is still
away `max_hours` (12 h) later, or, having left before the night window, still away
when it begins. A departure inside the night window is `night_door_exit`'s business,
and only the `max_hours` limit applies to it. Clears when the resident is back.
"""

from __future__ import annotations

from pydantic import Field

from detectors import absence as away
from detectors.movement import MovementState, is_movement
from detectors.rule import EvidenceData, Rule, RuleState, evidence
from detectors.settings import AbsenceSettings, NotReturnedSettings
from eldercare.domain import AlertKind, Reading, Transition, TransitionAction


class NotReturnedState(RuleState):
    movement: MovementState = Field(default_factory=MovementState)
    absence: away.AbsenceState = Field(default_factory=away.AbsenceState)
    raised_for: float | None = None  # away_since of the absence that raised


class NotReturnedRule(Rule[NotReturnedState]):
    name = "not_returned"
    kinds = (AlertKind.NOT_RETURNED,)
    state_model = NotReturnedState

    @property
    def _resident(self) -> str | None:
        ids = self.ctx.resident_ids
        return ids[0] if len(ids) == 1 else None

    @property
    def _settings(self) -> NotReturnedSettings:
        return self.ctx.settings(self.name, NotReturnedSettings, self._resident)

    @property
    def _away_after_s(self) -> float:
        return self.ctx.settings("absence", AbsenceSettings).away_after_minutes * 60

    def on_reading(self, reading: Reading) -> list[Transition]:
        moved = is_movement(reading, self.state.movement)
        since = self.state.absence.away_since
        door = self.state.absence.door_evidence
        if away.observe(self.state.absence, self.ctx, reading, moved) != "returned":
            return []
        raised = self.state.raised_for
        self.state.raised_for = None
        if raised is None or since is None:
            return []
        return [
            self.ctx.transition(
                TransitionAction.CLEAR,
                AlertKind.NOT_RETURNED,
                reading.ts,
                resident_id=self._resident,
                room_id=self.ctx.room_of(reading),
                device_id=reading.device_id,
                evidence=evidence(door, EvidenceData.of(reading, "back home")),
                details={"hours_away": round((reading.ts - since) / 3600, 2)},
            )
        ]

    def _deadline(self) -> float | None:
        since = self.state.absence.away_since
        s = self._settings
        if since is None or self.state.raised_for is not None or not s.enabled:
            return None
        deadline = since + s.max_hours * 3600
        if s.by_night and not self.ctx.in_window(since, s.night_start, s.night_end):
            deadline = min(deadline, self.ctx.next_local(since, s.night_start))
        # Never before the absence was known.
        return max(deadline, since + self._away_after_s)

    def compute_due(self) -> float | None:
        dues = [
            d
            for d in (self._deadline(), away.away_due(self.state.absence, self._away_after_s))
            if d is not None
        ]
        return min(dues) if dues else None

    def fire(self, due: float) -> list[Transition]:
        away.fire(self.state.absence, due, self._away_after_s)
        if self._deadline() != due:
            return []
        since = self.state.absence.away_since
        assert since is not None
        self.state.raised_for = since
        return [
            self.ctx.transition(
                TransitionAction.RAISE,
                AlertKind.NOT_RETURNED,
                due,
                resident_id=self._resident,
                room_id=self.state.absence.door_evidence.room_id
                if self.state.absence.door_evidence
                else None,
                device_id=self.state.absence.door_evidence.device_id
                if self.state.absence.door_evidence
                else None,
                evidence=evidence(self.state.absence.door_evidence),
                details={
                    "hours_away": round((due - since) / 3600, 2),
                    "left_at": self.ctx.local(since).strftime("%H:%M"),
                },
            )
        ]
