"""Has the resident left home? Derived from the outer door and indoor movement.

Left home: an outer door opened or closed and no indoor movement followed for
`away_after_minutes`; the absence is dated from the door. Back home: any outer
door event or indoor movement. Several rules embed this (inactivity, not_up,
not_returned, routine_deviation), each with its own copy of the state, so that
every rule stays a self-contained state machine. A site without an outer-door
sensor is never judged away.
"""

from __future__ import annotations

from detectors.rule import EvidenceData, RuleState
from detectors.site_context import SiteContext
from eldercare.domain import Reading


class AbsenceState(RuleState):
    last_door: float | None = None  # last outer-door event
    door_evidence: EvidenceData | None = None
    indoor_after_door: bool = True  # indoor movement seen since the last door event
    away_since: float | None = None  # confirmed absence, dated from the door


def observe(state: AbsenceState, ctx: SiteContext, reading: Reading, moved: bool) -> str | None:
    """Feed one reading; returns "returned" when an absence ends, else None."""
    if not moved:
        return None
    returned = state.away_since is not None
    if ctx.is_outer_door(reading.device_id):
        state.last_door = reading.ts
        state.door_evidence = EvidenceData.of(reading, "outer door used", ctx.room_of(reading))
        state.indoor_after_door = False
    else:
        state.indoor_after_door = True
    state.away_since = None
    return "returned" if returned else None


def away_due(state: AbsenceState, away_after_s: float) -> float | None:
    if state.away_since is not None or state.indoor_after_door or state.last_door is None:
        return None
    return state.last_door + away_after_s


def fire(state: AbsenceState, due: float, away_after_s: float) -> bool:
    """Confirm the absence if its timer is due; True if the resident is now away."""
    if away_due(state, away_after_s) == due:
        state.away_since = state.last_door
        return True
    return False


def is_away(state: AbsenceState) -> bool:
    return state.away_since is not None
