"""Fall, from a fall radar's `fall_down_status`.

`fall` raises at once. `maybe_fall` raises if no movement is seen in the radar's
room within `maybe_fall_confirm_s` (60 s) — a person who stumbled and got up moves.
The radar itself taking its `maybe_fall` back (`none` before that) is not enough to
drop it (a radar can lose a person lying still), but it gives the movement longer to
show: until `maybe_fall_retracted_confirm_s` (180 s) after the `maybe_fall`, and then
movement anywhere indoors counts when the home has one resident (the person walked
on). A room's PIR is blind for about a minute after each report, often the walk-in a
few seconds before the `maybe_fall`, so 60 s may see nothing of a person who is up
and about. A radar still reporting `maybe_fall` keeps the 60 s and the room; a new
`maybe_fall` after `none` brings the 60 s back.
A raised fall clears when the radar has gone back to `none` and either movement
is seen in another room (the person walked away) or the radar has stayed at
`none` for `clear_after_none_s`. A changed `fall`/`maybe_fall` report updates it (a
radar repeating the same status every second does not).
Presence alone never clears a fall: a person lying on the floor is present.
"""

from __future__ import annotations

from pydantic import Field

from detectors.no_entries import Entries, no_entries, writable
from detectors.occupancy import WATCHED_STREAMS
from detectors.rule import EvidenceData, Rule, RuleState, evidence, rule_state
from detectors.settings import FallSettings
from eldercare.domain import AlertKind, Reading, Stream, Transition, TransitionAction
from eldercare.evidence import EvidenceCode, seen


@rule_state
class _Fall(RuleState):
    device_id: str
    room_id: str | None
    resident_id: str | None
    first: EvidenceData
    maybe_since: float | None = None  # pending maybe_fall, not raised yet
    retracted: bool = False  # the radar went back to `none` while the maybe_fall was pending
    raised_at: float | None = None
    none_since: float | None = None  # radar back at `none` since
    last_status: str | None = None  # last fall / maybe_fall status reported in the alert


@rule_state
class FallState(RuleState):
    falls: Entries[str, _Fall] = Field(default_factory=no_entries)  # radar device id → episode


class FallRule(Rule[FallState]):
    __slots__ = ()

    name = "fall"
    kinds = (AlertKind.FALL,)
    state_model = FallState
    streams = WATCHED_STREAMS | {Stream.FALL}
    reads_picture = True  # movement, from the site's shared resident picture

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
        if not self.picture.moved:
            return []
        out: list[Transition] = []
        room = self.ctx.room_of(reading)
        for dev in sorted(self.state.falls):
            f = self.state.falls[dev]
            if f.raised_at is None and self._confirms_up(f, reading, room):
                del self.state.falls[dev]  # moved within the confirmation time: not a fall
            elif f.raised_at is not None and f.none_since is not None and room != f.room_id:
                del self.state.falls[dev]
                ev = EvidenceData.seen(reading, seen(EvidenceCode.MOVEMENT_ELSEWHERE), room_id=room)
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
                # The radar's own "none" is not movement: keep waiting for it, longer.
                f.retracted = True
            return []
        if status not in ("fall", "maybe_fall"):
            return []
        code = EvidenceCode.RADAR_FALL if status == "fall" else EvidenceCode.RADAR_MAYBE_FALL
        ev = EvidenceData.seen(reading, seen(code), room_id=room)
        if f is not None and f.raised_at is not None:
            if f.none_since is None and f.last_status == status:
                return []  # a radar repeating itself is not news
            f.none_since = None
            f.last_status = status
            return [self._transition(TransitionAction.UPDATE, f, reading.ts, ev, status=status)]
        if f is None:
            f = _Fall(device_id=reading.device_id, room_id=room, resident_id=resident, first=ev)
            writable(self.state, "falls")[reading.device_id] = f
        if status == "fall":
            f.raised_at = reading.ts
            f.maybe_since = None
            f.last_status = "fall"
            return [self._transition(TransitionAction.RAISE, f, reading.ts, status="fall")]
        if f.maybe_since is None:
            f.maybe_since = reading.ts
        f.retracted = False  # maybe_fall again: the radar suspects a fall after all
        if reading.ts >= f.maybe_since + self._settings(resident).maybe_fall_confirm_s:
            return self._raise_maybe(f, reading.ts, ev)  # still nothing moved since the first
        return []

    def _confirms_up(self, f: _Fall, reading: Reading, room: str | None) -> bool:
        """Does this movement show that the person of a pending maybe_fall is up?"""
        if room == f.room_id:
            return True
        # Elsewhere only once the radar has taken its maybe_fall back, only indoors (a
        # front door may be a visitor arriving) and only when the home's one resident
        # is the only person the movement can be.
        return (
            f.retracted
            and not self.ctx.is_institution
            and len(self.ctx.resident_ids) == 1
            and not self.ctx.is_outer_door(reading.device_id)
        )

    def _raise_maybe(self, f: _Fall, ts: float, *ev: EvidenceData) -> list[Transition]:
        waited = ts - (f.maybe_since if f.maybe_since is not None else ts)
        retracted = f.retracted
        f.raised_at = ts
        f.maybe_since = None
        f.retracted = False
        f.last_status = "maybe_fall"
        return [
            self._transition(
                TransitionAction.RAISE,
                f,
                ts,
                *ev,
                status="maybe_fall",
                confirmed_after_s=waited,
                radar_back_to_none=retracted,
            )
        ]

    def _due(self, f: _Fall) -> float | None:
        s = self._settings(f.resident_id)
        if f.raised_at is None:
            if f.maybe_since is None:
                return None
            wait = s.maybe_fall_confirm_s
            if f.retracted:
                wait = max(wait, s.maybe_fall_retracted_confirm_s)
            return f.maybe_since + wait
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
                out.extend(self._raise_maybe(f, due))
            else:
                del self.state.falls[dev]
                out.append(
                    self._transition(TransitionAction.CLEAR, f, due, reason="radar reports none")
                )
        return out
