"""When the household goes to bed, learned from what it does every evening.

A bedtime is the last movement outside the bedroom and bathroom before a quiet of at
least `QUIET_S` (3 h) there, begun between 18:00 and 04:00 local and not at the front
door (leaving for the night is not going to bed). No bed sensor is needed: a home with
only doors (the 2008 flat) learns from its bedroom door; one with mats and PIRs from the
last kitchen or living-room movement. Nights spent away or up all night teach nothing.

Read by `night_door_exit`: a resident who goes to bed at 01:30 is not "out at night"
when he leaves at 23:00. The usual bedtime is the lower quartile of the nights learned
(an early night is still within the resident's night). Before enough nights, the
earliest bedtime seen so far: every night seen began later than that.
"""

from __future__ import annotations

import math

from pydantic import Field

from detectors.rule import RuleState, rule_state
from detectors.site_context import SiteContext
from eldercare.domain import Reading

QUIET_S = 3 * 3600.0
EVENING_FROM_MIN = 18 * 60  # a bedtime begins between 18:00 …
EVENING_TO_MIN = 4 * 60  # … and 04:00 (next morning)
KEEP_NIGHTS = 28


@rule_state
class BedtimeState(RuleState):
    last_up: float | None = None  # last movement outside bedroom and bathroom
    last_up_door: bool = False  # … and it was the front door
    nights: dict[str, float] = Field(default_factory=dict)  # evening (local day) → minute


def evening_minute(ctx: SiteContext, ts: float) -> tuple[str, float] | None:
    """(the evening's local day, minutes after its midnight, > 1440 after midnight) if
    `ts` is in 18:00-04:00, else None."""
    minute = ctx.minute_of_day(ts)
    if minute >= EVENING_FROM_MIN:
        return ctx.local_day(ts), minute
    if minute < EVENING_TO_MIN:
        return ctx.local_day(ts - 86400), minute + 1440
    return None


def observe(state: BedtimeState, ctx: SiteContext, reading: Reading, moved: bool) -> None:
    if not moved:
        return
    room = ctx.room_of(reading)
    if ctx.is_bedroom(room) or ctx.is_bathroom(room):
        return  # the quiet outside the bedroom goes on
    last = state.last_up
    if last is not None and reading.ts - last >= QUIET_S and not state.last_up_door:
        evening = evening_minute(ctx, last)
        if evening is not None:
            day, minute = evening
            state.nights.setdefault(day, minute)
            for old in sorted(state.nights)[: max(0, len(state.nights) - KEEP_NIGHTS)]:
                del state.nights[old]
    state.last_up = reading.ts
    state.last_up_door = ctx.is_outer_door(reading.device_id)


def usual_bedtime(state: BedtimeState, min_nights: int) -> float | None:
    """Lower quartile of the learned bedtimes (minutes after the evening's midnight, may
    exceed 1440), or None before `min_nights` nights."""
    values = sorted(state.nights.values())
    if len(values) < min_nights:
        return None
    return values[max(0, math.ceil(0.25 * len(values)) - 1)]


def earliest_bedtime(state: BedtimeState) -> float | None:
    """The earliest learned bedtime (minutes after the evening's midnight), or None."""
    return min(state.nights.values(), default=None)
