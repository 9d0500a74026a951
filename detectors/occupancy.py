"""Who is on a bed or a seat, or seen by a presence radar, right now: the part of the
resident-state picture that stillness cannot take away.

Movement (`movement.py`) says someone did something; occupancy says someone is there
while doing nothing: a bed mat pressed, a `seat` mat (chair, armchair, couch) pressed, a
presence radar reporting a person (radars report presence while the person is still).
Rules read it for three facts:

- *in bed*: one of the resident's bed mats is pressed, or the last one went empty and
  nothing has moved outside the bedroom since. Mats lose a sleeper who lies between
  or across them (van Kasteren house B: both mats empty for 50 min at 01:36 with
  nothing else firing until the left mat again at 02:26; the bedroom PIR sees him
  turn over while the mats are empty), so an empty bed with no one seen outside the
  bedroom is still taken as in bed; being out of bed needs movement seen in another
  room after the mats emptied (`left_bed_at`, dated from the emptying); in an
  institution, where the bedroom is the resident's whole room, any movement;
- *seated*: a seat mat is pressed;
- *someone inside*: any bed, seat or radar reports a person, so a front door used
  meanwhile is not the home left empty (`absence.py`).

In a home of two the mats and radars cannot tell who is there unless a bed mat is bound
to its resident: "someone inside" and "seated" are about the household, not about one
person, and the rules treat them so (a seat pressed by one does not say where the
other is). A mat or radar reporting someone for longer than `STUCK_S` (14 h) without
a change is no longer believed (a stuck mat, a heavy cushion, a radar seeing a
curtain): van Kasteren house B's study chair mat reports "pressed" for 11 days and a
bed mat for 10 after the annotated weeks; no person sits or lies that long without
moving, and a stuck mat must not make the home look occupied while she is out.
"""

from __future__ import annotations

from pydantic import Field

from detectors.movement import MOVEMENT_STREAMS
from detectors.no_entries import Entries, no_entries, writable
from detectors.rule import RuleState, rule_state
from detectors.site_context import SiteContext
from eldercare.domain import DeviceKind, Reading, Stream

# What a rule reading movement and occupancy declares as its `streams`.
WATCHED_STREAMS = MOVEMENT_STREAMS | {Stream.PRESENCE}
STUCK_S = 14 * 3600.0
SETTLED_S = 60.0  # a bed mat pressed at least this long held a person lying on it
OCCUPANCY_KINDS = frozenset({DeviceKind.BED, DeviceKind.SEAT})
PRESENCE_KINDS = frozenset({DeviceKind.PRESENCE, DeviceKind.FALL_RADAR, DeviceKind.VITALS})


@rule_state
class OccupancyState(RuleState):
    on: dict[str, float] = Field(default_factory=dict)  # device pressed / seeing someone → since
    # resident → last mat emptied
    bed_empty_at: Entries[str, float] = Field(default_factory=no_entries)
    up_since_empty: Entries[str, bool] = Field(default_factory=no_entries)  # resident → moved since
    # resident → how long the mat that last emptied had been pressed (see `settled_before`)
    pressed_s: Entries[str, float] = Field(default_factory=no_entries)
    up_seen_at: Entries[str, float] = Field(default_factory=no_entries)  # resident → first seen up


def _reports_someone(ctx: SiteContext, reading: Reading) -> bool | None:
    """True / False for an occupancy or presence report of a device that watches a place,
    None for any other reading."""
    device = ctx.device(reading.device_id)
    if device is None:
        return None
    if reading.stream == Stream.OCCUPANCY and device.kind in OCCUPANCY_KINDS:
        return bool(reading.fields.get("occupied", False))
    if reading.stream == Stream.PRESENCE and device.kind in PRESENCE_KINDS:
        return bool(reading.fields.get("present", False))
    return None


def observe(state: OccupancyState, ctx: SiteContext, reading: Reading, moved: bool) -> None:
    """Feed one reading (`moved`: `movement.is_movement` said it was movement)."""
    someone = (
        _reports_someone(ctx, reading)
        if reading.stream in (Stream.OCCUPANCY, Stream.PRESENCE)
        else None
    )
    if someone is not None:
        pressed_since = None
        if someone:
            state.on.setdefault(reading.device_id, reading.ts)
        else:
            pressed_since = state.on.pop(reading.device_id, None)
        bed_of = ctx.bed_resident(reading.device_id)
        if bed_of is not None:
            if someone:
                state.bed_empty_at.pop(bed_of, None)
                state.up_since_empty.pop(bed_of, None)
                state.up_seen_at.pop(bed_of, None)
            elif not _any_bed_on(state, ctx, bed_of) and bed_of not in state.bed_empty_at:
                writable(state, "bed_empty_at")[bed_of] = reading.ts
                writable(state, "up_since_empty")[bed_of] = False
                if pressed_since is not None:
                    writable(state, "pressed_s")[bed_of] = reading.ts - pressed_since
            return
    if moved:
        room = ctx.room_of(reading)
        for resident in state.bed_empty_at:
            if ctx.is_institution or room is None or room not in ctx.bed_rooms.get(resident, ()):
                if not state.up_since_empty.get(resident, False):
                    writable(state, "up_seen_at")[resident] = reading.ts
                writable(state, "up_since_empty")[resident] = True


def _any_bed_on(state: OccupancyState, ctx: SiteContext, resident: str) -> bool:
    return any(ctx.bed_resident(d) == resident for d in state.on)  # stuck or not: see in_bed


def in_bed_by_mat(state: OccupancyState, ctx: SiteContext, resident: str) -> bool:
    """A mat of the resident pressed now."""
    return _any_bed_on(state, ctx, resident)


def in_bed(state: OccupancyState, ctx: SiteContext, resident: str) -> bool:
    """A mat of the resident pressed, or emptied with nothing moving since. False when
    no mat of the resident has ever reported."""
    if _any_bed_on(state, ctx, resident):
        return True
    return resident in state.bed_empty_at and not state.up_since_empty.get(resident, False)


def left_bed_at(state: OccupancyState, resident: str) -> float | None:
    """When the resident left her bed, once movement since shows her up; else None: when
    the mats emptied if they had held her (`settled_before_empty`), else when she was
    first seen up (a mat pressed for a moment dates nothing)."""
    if not state.up_since_empty.get(resident, False):
        return None
    if settled_before_empty(state, resident):
        return state.bed_empty_at.get(resident)
    return state.up_seen_at.get(resident, state.bed_empty_at.get(resident))


def settled_before_empty(state: OccupancyState, resident: str) -> bool:
    """The bed emptied after holding her for at least `SETTLED_S`: a mat pressed for a
    second or two is a sleeper's arm or leg crossing its edge, and its emptying says
    nothing of her leaving (van Kasteren house B: every night-time "exit" that raised
    with nothing seen elsewhere ended a 1-2 s press; a real exit ends a long one).
    Unknown (no press seen) counts as settled."""
    pressed = state.pressed_s.get(resident)
    return pressed is None or pressed >= SETTLED_S


def sees_people_up(ctx: SiteContext) -> bool:
    """The home has sensors that see a person up and about besides the beds (PIRs,
    radars): only then can an empty bed wait for them to confirm that she got up."""
    return ctx.sees_people_up


def seated(state: OccupancyState, ctx: SiteContext, now: float) -> float | None:
    """Since when a seat mat has been pressed (the earliest believed at `now`), or None."""
    since = [
        t
        for d, t in state.on.items()
        if now - t < STUCK_S and (dev := ctx.device(d)) is not None and dev.kind == DeviceKind.SEAT
    ]
    return min(since) if since else None


def someone_inside(state: OccupancyState, now: float) -> bool:
    """A bed, seat or radar reports someone at `now` (and has not for too long to believe)."""
    return any(now - t < STUCK_S for t in state.on.values())
