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

A device learned to fire on its own in an empty home is not, alone, someone inside
(van Kasteren house B's kitchen PIR in the evenings he was out). Ground truth: in an
empty home nobody comes in without passing the outer door, so a device that fired with
no other indoor device within `corroborate_s`, and then the door came next (not within
`corroborate_s`: that is the way in), fired on its own. Counted once a local day
(`lone_firings`); from `lone_device_days` such days on, its firing alone in an empty
home (confirmed away, gone past the hall sensor as the picture reads it, or a departure
still to be confirmed) is no movement for any rule. The door or another device within
`corroborate_s` before it is someone again (a second device is a person). Before that
(the warm-up, or any other device), a firing is a return as before: a fridge opened in
an empty home, then nothing, is someone come home and lying still.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from detectors import occupancy as occ
from detectors.no_entries import Entries, no_entries, writable
from detectors.rule import EvidenceData, RuleState, rule_state
from detectors.settings import AbsenceSettings
from detectors.site_context import SiteContext
from eldercare.domain import Reading, Stream
from eldercare.evidence import EvidenceCode, seen

Change = Literal["returned", "went_out", "came_in"]


@rule_state
class AbsenceState(RuleState):
    last_door: float | None = None  # last outer-door event
    door_evidence: EvidenceData | None = None  # first door event of the last passage out
    indoor_after_door: bool = True  # someone is known inside since the last passage
    away_since: float | None = None  # confirmed absence, dated from the door
    occupancy: occ.OccupancyState = Field(default_factory=occ.OccupancyState)
    # device → days on which it fired on its own in an empty home (see the module doc)
    lone_firings: Entries[str, int] = Field(default_factory=no_entries)
    lone_last_day: Entries[str, str] = Field(default_factory=no_entries)  # device → last such day
    # Devices that fired alone since a confirmed absence began, nothing else indoors since:
    # credited to `lone_firings` if the outer door comes next.
    fired_alone: list[tuple[str, float]] = Field(default_factory=list)
    last_indoor: tuple[str, float] | None = None  # the last indoor movement (device, time)


def observe(state: AbsenceState, ctx: SiteContext, reading: Reading, moved: bool) -> Change | None:
    """Feed one reading. Returns "returned" when a confirmed absence ends, "went_out" /
    "came_in" when a new door passage starts in that direction, else None."""
    occ.observe(state.occupancy, ctx, reading, moved)
    if not moved:
        return None
    was_away = state.away_since is not None
    s = ctx.settings("absence", AbsenceSettings)
    if not ctx.is_outer_door(reading.device_id):
        state.indoor_after_door = True
        state.away_since = None
        return "returned" if was_away else None
    _credit_lone_firings(state, ctx, reading.ts, s)
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


def lone_firing(state: AbsenceState, ctx: SiteContext, reading: Reading, left: bool) -> bool:
    """Feed one indoor movement (not the outer door). True if it is a device learned to fire
    on its own, firing in an empty home (confirmed away, `left` home by the picture's
    reading, or a departure not yet confirmed) with neither the outer door nor another
    device within `corroborate_s` before it: then it is not someone inside."""
    s = ctx.settings("absence", AbsenceSettings)
    device, ts = reading.device_id, reading.ts
    previous, state.last_indoor = state.last_indoor, (device, ts)
    near = ts - s.corroborate_s
    door_near = state.last_door is not None and state.last_door >= near
    other_near = previous is not None and previous[0] != device and previous[1] >= near
    departing = not state.indoor_after_door and state.last_door is not None
    empty = state.away_since is not None or left or departing
    known_empty = state.away_since is not None or left
    alone = {d for d, _ in state.fired_alone}
    if other_near or (not known_empty and device not in alone):
        state.fired_alone.clear()  # someone may be inside: nothing known to be alone
    elif known_empty and not door_near and device not in alone:
        state.fired_alone.append((device, ts))
    if not empty or door_near or other_near or s.lone_device_days <= 0:
        return False
    if reading.stream in (Stream.OCCUPANCY, Stream.PRESENCE):
        return False  # a mat or a radar reports a person, not a movement
    return state.lone_firings.get(device, 0) >= s.lone_device_days


def _credit_lone_firings(
    state: AbsenceState, ctx: SiteContext, door_ts: float, s: AbsenceSettings
) -> None:
    """The outer door came next after lone firings in an empty home: those devices fired
    with nobody home (the way in is the door), unless just before it (coming in). Counted
    once a local day: a burst of absences in one day is one day's evidence."""
    for device, ts in state.fired_alone:
        day = ctx.local_day(ts)
        if door_ts - ts >= s.corroborate_s and state.lone_last_day.get(device) != day:
            writable(state, "lone_firings")[device] = state.lone_firings.get(device, 0) + 1
            writable(state, "lone_last_day")[device] = day
    state.fired_alone.clear()


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
