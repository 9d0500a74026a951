"""Fall, from a fall radar's `fall_down_status`.

`fall` raises at once. `maybe_fall` raises if no movement is seen in the radar's
room within `maybe_fall_confirm_s` (60 s) — a person who stumbled and got up moves.
A raised fall clears when the radar has gone back to `none` and either movement
is seen in another room (the person walked away) or the radar has stayed at
`none` for `clear_after_none_s`. A changed `fall`/`maybe_fall` report updates it (a
radar repeating the same status every second does not).
Presence alone never clears a fall: a person lying on the floor is present.
"""

from __future__ import annotations

from pydantic import Field

from detectors.movement import MOVEMENT_STREAMS, MovementState, is_movement
from detectors.rule import EvidenceData, Rule, RuleState, evidence
from detectors.settings import FallSettings
from eldercare.domain import AlertKind, Reading, Stream, Transition, TransitionAction


class _Fall(RuleState):
    device_id: str
    room_id: str | None
    resident_id: str | None
    first: EvidenceData
    maybe_since: float | None = None  # pending maybe_fall, not raised yet
    raised_at: float | None = None
    none_since: float | None = None  # radar back at `none` since
    last_status: str | None = None  # last fall / maybe_fall status reported in the alert


class FallState(RuleState):
    movement: MovementState = Field(default_factory=MovementState)
    falls: dict[str, _Fall] = Field(default_factory=dict)  # radar device id → episode


class FallRule(Rule[FallState]):
    name = "fall"
    kinds = (AlertKind.FALL,)
    state_model = FallState
    streams = MOVEMENT_STREAMS | {Stream.FALL}

    def _settings(self, resident: str | None) -> FallSettings:
        return self.ctx.settings(self.name, FallSettings, resident)

    def _transition(
        self,
        action: TransitionAction,
        f: _Fall,
        ts: float,
        *ev: EvidenceData | None,
        **details: object,
    ) -> Transition:
        return self.ctx.transition(
            action,
            AlertKind.FALL,
            ts,
            resident_id=f.resident_id,
            room_id=f.room_id,
            device_id=f.device_id,
            evidence=evidence(f.first, *ev),
            details=details,
        )

    def on_reading(self, reading: Reading) -> list[Transition]:
        if reading.stream == Stream.FALL:
            return self._on_status(reading)
        if not is_movement(reading, self.state.movement):
            return []
        out: list[Transition] = []
        room = self.ctx.room_of(reading)
        for dev in sorted(self.state.falls):
            f = self.state.falls[dev]
            if f.raised_at is None and room == f.room_id:
                del self.state.falls[dev]  # moved within the confirmation time: not a fall
            elif f.raised_at is not None and f.none_since is not None and room != f.room_id:
                del self.state.falls[dev]
                ev = EvidenceData.of(reading, "movement in another room", room)
                out.append(
                    self._transition(
                        TransitionAction.CLEAR, f, reading.ts, ev, reason="moved to another room"
                    )
                )
        return out

    def _on_status(self, reading: Reading) -> list[Transition]:
        status = str(reading.fields.get("status", "none"))
        resident = self.ctx.reading_resident(reading)
        if not self._settings(resident).enabled:
            return []
        room = self.ctx.room_of(reading)
        f = self.state.falls.get(reading.device_id)
        if status == "none":
            if f is not None and f.raised_at is not None and f.none_since is None:
                f.none_since = reading.ts
            elif f is not None and f.raised_at is None:
                pass  # the radar's own "none" is not movement: keep waiting for confirmation
            return []
        if status not in ("fall", "maybe_fall"):
            return []
        ev = EvidenceData.of(reading, f"radar reports {status}", room)
        if f is not None and f.raised_at is not None:
            if f.none_since is None and f.last_status == status:
                return []  # a radar repeating itself is not news
            f.none_since = None
            f.last_status = status
            return [self._transition(TransitionAction.UPDATE, f, reading.ts, ev, status=status)]
        if f is None:
            f = _Fall(device_id=reading.device_id, room_id=room, resident_id=resident, first=ev)
            self.state.falls[reading.device_id] = f
        if status == "fall":
            f.raised_at = reading.ts
            f.maybe_since = None
            f.last_status = "fall"
            return [self._transition(TransitionAction.RAISE, f, reading.ts, status="fall")]
        if f.maybe_since is None:
            f.maybe_since = reading.ts
        return []

    def _due(self, f: _Fall) -> float | None:
        s = self._settings(f.resident_id)
        if f.raised_at is None:
            return None if f.maybe_since is None else f.maybe_since + s.maybe_fall_confirm_s
        return None if f.none_since is None else f.none_since + s.clear_after_none_s

    def compute_due(self) -> float | None:
        dues = [d for f in self.state.falls.values() if (d := self._due(f)) is not None]
        return min(dues) if dues else None

    def fire(self, due: float) -> list[Transition]:
        out: list[Transition] = []
        for dev in sorted(self.state.falls):
            f = self.state.falls[dev]
            if self._due(f) != due:
                continue
            if f.raised_at is None:
                f.raised_at = due
                f.maybe_since = None
                f.last_status = "maybe_fall"
                s = self._settings(f.resident_id)
                out.append(
                    self._transition(
                        TransitionAction.RAISE,
                        f,
                        due,
                        status="maybe_fall",
                        confirmed_after_s=s.maybe_fall_confirm_s,
                    )
                )
            else:
                del self.state.falls[dev]
                out.append(
                    self._transition(TransitionAction.CLEAR, f, due, reason="radar reports none")
                )
        return out
