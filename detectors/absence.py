"""Has the resident left home? Derived from the outer door and indoor movement.

Door events within `door_passage_s` of each other are one passage (a reed switch
reports open, close, open, close as one person goes through). A passage's direction
follows from what came before it:
- going out: someone was seen inside since the last passage (or there was none);
- coming in: after an absence, i.e. the last passage went out and nobody has been
  seen inside for at least `away_after_minutes` (door, silence, door). A return is
  not followed by a new absence however quiet the home is afterwards (sitting in a
  room without a sensor);
- a passage sooner after a passage out, with nobody seen inside, is ambiguous (back
  for the keys, or locking up from outside) and continues the departure.
Left home: a passage going out and no indoor movement for `away_after_minutes`; the
absence is dated from the door. Back home: a passage coming in or indoor movement.
Several rules embed this (inactivity, not_up, not_returned, night_door_exit,
routine_deviation), each with its own copy of the state, so that every rule stays a
self-contained state machine. A site without an outer-door sensor is never judged
away. Nor is a home while a bed, a seat or a presence radar reports someone there
(`occupancy.py`): opening the front door for a word with a neighbour and sitting back
down, or one of two residents going out while the other watches TV, is not the home
left empty.

Where the outer door's own room has a motion or presence sensor (a hall sonar, an
entrance PIR), whoever comes in through the door passes it: after a confirmed absence
the door alone does not bring her back, she is back once seen inside (ARAS house A:
both residents out at 17:15, the front door opened and shut for a second at 17:27 with
the hall sensor beside it silent, and "home again, then three hours still" raised
`inactivity`). Where it has none (a flat with door contacts only), the door is the
return, as before: she may sit down in a room without a sensor.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from detectors import occupancy as occ
from detectors.rule import EvidenceData, RuleState
from detectors.settings import AbsenceSettings
from detectors.site_context import SiteContext
from eldercare.domain import Reading
from eldercare.evidence import EvidenceCode, seen

Change = Literal["returned", "went_out", "came_in"]


class AbsenceState(RuleState):
    last_door: float | None = None  # last outer-door event
    door_evidence: EvidenceData | None = None  # first door event of the last passage out
    indoor_after_door: bool = True  # someone is known inside since the last passage
    away_since: float | None = None  # confirmed absence, dated from the door
    occupancy: occ.OccupancyState = Field(default_factory=occ.OccupancyState)


def observe(state: AbsenceState, ctx: SiteContext, reading: Reading, moved: bool) -> Change | None:
    """Feed one reading. Returns "returned" when a confirmed absence ends, "went_out" /
    "came_in" when a new door passage starts in that direction, else None."""
    occ.observe(state.occupancy, ctx, reading, moved)
    if not moved:
        return None
    was_away = state.away_since is not None
    if not ctx.is_outer_door(reading.device_id):
        state.indoor_after_door = True
        state.away_since = None
        return "returned" if was_away else None
    s = ctx.settings("absence", AbsenceSettings)
    last = state.last_door
    state.last_door = reading.ts
    if was_away and ctx.door_room_watched(reading.device_id):
        return None  # back only once seen inside: whoever comes in passes the door's sensor
    if not was_away and last is not None and reading.ts - last <= s.door_passage_s:
        return None  # the same passage
    state.away_since = None
    if last is not None and not state.indoor_after_door:
        if was_away or reading.ts - last >= s.away_after_minutes * 60:
            state.indoor_after_door = True  # back after an absence: the person is inside
            return "returned" if was_away else "came_in"
        return None  # soon after going out: still the departure
    state.door_evidence = EvidenceData.seen(
        reading, seen(EvidenceCode.DOOR_USED), room_id=ctx.room_of(reading)
    )
    state.indoor_after_door = False
    return "went_out"


def away_due(state: AbsenceState, away_after_s: float) -> float | None:
    if state.away_since is not None or state.indoor_after_door or state.last_door is None:
        return None
    due = state.last_door + away_after_s
    if occ.someone_inside(state.occupancy, due):
        return None  # a mat or radar says someone is home; re-judged at its next change
    return due


def fire(state: AbsenceState, due: float, away_after_s: float) -> bool:
    """Confirm the absence if its timer is due; True if the resident is now away."""
    if away_due(state, away_after_s) == due:
        state.away_since = state.last_door
        return True
    return False


def is_away(state: AbsenceState) -> bool:
    return state.away_since is not None
