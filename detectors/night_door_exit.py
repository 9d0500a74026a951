"""Left home at night: in the night window the resident, known to be inside, goes out
through an outer door and no indoor movement follows within `minutes` (10). Clears
when movement is seen indoors again or the resident comes back in through the door.

The door sequence decides (`absence.py`): inside activity, then a door passage, then
silence is leaving. Coming home opens the door too, and a flat may have no sensor in
the room the resident then sits in: a passage that follows a passage out with nobody
seen inside in between (door, silence, door) is coming back in, never an exit.

In a home the night starts at the household's usual bedtime (`bedtime.py`: the lower
quartile of its learned bedtimes, after 7 nights) when that is later than `night_start`,
at most `latest_start` (02:00): someone who goes to bed at 01:30 is not out "at night"
when he leaves at 23:00. Before 7 nights, the earliest bedtime seen so far (every night
seen began later), within the same bounds: the 2008 flat, in bed at 23:19 on its first
night, opened the front door at 22:10 on the second and was raised at the 22:00
default. Not for residents flagged `dementia`: for them an exit before bed is the
incident (they keep `night_start`).

In an institution only residents flagged `dementia` are watched: a door of a room
whose residents include one (raised for that resident if the room is theirs alone),
or a ward door (an outer door in a room where nobody lives) while any resident of the
site has the flag (raised for the ward, no resident).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from pydantic import Field

from detectors import bedtime as bedtimes
from detectors.episode import Episode
from detectors.occupancy import WATCHED_STREAMS
from detectors.rule import EvidenceData, Rule, RuleState, evidence, rule_state
from detectors.settings import NightDoorExitSettings, minutes_of_day
from detectors.site_context import DEMENTIA
from eldercare.domain import AlertKind, Reading, Transition, TransitionAction
from eldercare.evidence import EvidenceCode, seen


@rule_state
class _Exit(Episode):
    """Out through the door (`since`, `evidence`) with nothing seen inside since."""

    renamed: ClassVar[Mapping[str, str]] = {"door_at": "since", "door": "evidence"}

    resident_id: str | None


@rule_state
class NightDoorExitState(RuleState):
    exit: _Exit | None = None
    bedtime: bedtimes.BedtimeState = Field(default_factory=bedtimes.BedtimeState)


class NightDoorExitRule(Rule[NightDoorExitState]):
    __slots__ = ()

    name = "night_door_exit"
    kinds = (AlertKind.NIGHT_DOOR_EXIT,)
    state_model = NightDoorExitState
    streams = WATCHED_STREAMS
    reads_picture = True

    def _settings(self, resident: str | None) -> NightDoorExitSettings:
        return self.ctx.settings(self.name, NightDoorExitSettings, resident)

    def _door_resident(self, reading: Reading) -> tuple[str | None, bool]:
        """(the resident a door exit is raised for, whether that door is watched)."""
        if not self.ctx.is_institution:
            return self.ctx.reading_resident(reading), True
        room_residents = self.ctx.room_residents(self.ctx.room_of(reading))
        if not room_residents:  # a ward door
            return None, any(self.ctx.has_flag(r, DEMENTIA) for r in self.ctx.resident_ids)
        flagged = [r for r in room_residents if self.ctx.has_flag(r, DEMENTIA)]
        if len(room_residents) == 1:
            return room_residents[0], bool(flagged)
        return None, bool(flagged)

    def _night_start(self, resident: str | None, s: NightDoorExitSettings) -> str:
        """The start of the night: `night_start`, or the household's later usual bedtime."""
        if self.ctx.is_institution or not s.learn_bedtime or self.ctx.has_flag(resident, DEMENTIA):
            return s.night_start
        if any(self.ctx.has_flag(r, DEMENTIA) for r in self.ctx.resident_ids):
            return s.night_start  # a shared home with someone flagged: theirs
        usual = bedtimes.usual_bedtime(self.state.bedtime, s.bedtime_nights)
        if usual is None:  # warm-up: the earliest night seen so far, if any
            usual = bedtimes.earliest_bedtime(self.state.bedtime)
        if usual is None:
            return s.night_start
        start = minutes_of_day(s.night_start)
        start += 1440 if start < 12 * 60 else 0  # minutes after the evening's midnight
        latest = minutes_of_day(s.latest_start)
        latest += 1440 if latest < 12 * 60 else 0
        minute = int(min(max(usual, start), latest)) % 1440
        return f"{minute // 60:02d}:{minute % 60:02d}"

    def on_reading(self, reading: Reading) -> list[Transition]:
        if not self.picture.moved:
            return []
        bedtimes.observe(self.state.bedtime, self.ctx, reading, True)
        resident, watched = self._door_resident(reading)
        pending = self.state.exit
        change = self.picture.change  # the door sequence, read from the shared picture
        if self.ctx.is_outer_door(reading.device_id):
            s = self._settings(resident)
            if (
                change == "went_out"
                and watched
                and pending is None
                and s.enabled
                and self.ctx.in_window(reading.ts, self._night_start(resident, s), s.night_end)
            ):
                door = EvidenceData.seen(
                    reading, seen(EvidenceCode.DOOR_USED), room_id=self.ctx.room_of(reading)
                )
                self.state.exit = _Exit(since=reading.ts, evidence=door, resident_id=resident)
            if change not in ("came_in", "returned"):
                return []
            why = EvidenceCode.CAME_BACK_IN
        else:
            why = EvidenceCode.MOVEMENT_INDOORS
        if pending is None:
            return []
        self.state.exit = None
        if not pending.raised:
            return []
        room = self.ctx.room_of(reading)
        return [
            self.ctx.transition(
                TransitionAction.CLEAR,
                AlertKind.NIGHT_DOOR_EXIT,
                reading.ts,
                resident_id=pending.resident_id,
                room_id=room,
                device_id=reading.device_id,
                evidence=evidence(pending.evidence, EvidenceData.seen(reading, seen(why))),
                details={"minutes_out": pending.minutes_at(reading.ts)},
            )
        ]

    def compute_due(self) -> float | None:
        e = self.state.exit
        if e is None or e.raised:
            return None
        return e.since + self._settings(e.resident_id).minutes * 60

    def fire(self, due: float) -> list[Transition]:
        e = self.state.exit
        assert e is not None
        return [
            self.ctx.transition(
                e.mark_raised(),
                AlertKind.NIGHT_DOOR_EXIT,
                due,
                resident_id=e.resident_id,
                room_id=e.evidence.room_id,
                device_id=e.evidence.device_id,
                evidence=evidence(e.evidence),
                details={
                    "door_at": self.ctx.local(e.since).strftime("%H:%M"),
                    "minutes_without_indoor_movement": e.minutes_at(due),
                },
            )
        ]
