"""Which of a room's sensors fire with nobody in the room, learned from the home's life.

Ground truth that nobody is in a room: every resident lies or sits on a bed or seat mat in
another room, settled there (the last of them pressed at least `SETTLED_S` before), with
nothing moving elsewhere since (`ResidentPicture.placed_since`). A sensor of the room that
fires then, with no other sensor of the same room within `ALONE_S` before or after it, fired
on its own: a person walking in would be seen leaving the mat, and a person in the room
sets off more than one of its sensors in ten minutes (a door, a tap, a flush).

Both conditions guard against mats that lie. A mat pressed for a second (a sleeper's limb
at its edge) is not "settled": van Kasteren house B's study-chair mat flickering while he
walked to the bathroom; and a mat left pressed while its sleeper got up (the same home's
bed mats at 05:37, the toilet door and flush following within a minute) is contradicted by
the room's second sensor, so nothing is learned.

Counted once a local day per sensor; the caller decides from how many days a sensor is
known to fire on its own (`bathroom_too_long.lone_sensor_days`). The record never fades:
a sensor that once chattered is held in doubt until the home is reconfigured.

Pure: fed readings in event time, no clock.
"""

from __future__ import annotations

from pydantic import Field

from detectors.rule import RuleState

ALONE_S = 300.0  # no other sensor of the room this long before or after: it fired alone
SETTLED_S = 600.0  # every resident on a mat elsewhere at least this long: nobody walking in


class _Candidate(RuleState):
    device_id: str
    room_id: str
    ts: float
    day: str


class LoneSensorState(RuleState):
    days: dict[str, int] = Field(default_factory=dict)  # sensor → days it fired on its own
    last_day: dict[str, str] = Field(default_factory=dict)  # sensor → the last such day
    # Firings that may have been alone: credited once `ALONE_S` passes with no other
    # sensor of their room.
    pending: list[_Candidate] = Field(default_factory=list)
    last_fired: dict[str, float] = Field(default_factory=dict)  # sensor → its last firing


def observe(
    state: LoneSensorState,
    device_id: str,
    room_id: str,
    ts: float,
    day: str,
    placed_since: float | None,
    room_sensors: frozenset[str],
) -> None:
    """A sensor of `room_id` fired at `ts` (local `day`); `placed_since` is since when every
    resident has been placed on a mat elsewhere (None: not all of them are)."""
    settle(state, ts)
    # A second sensor of the room: whoever set off the first was a person after all.
    state.pending = [
        c
        for c in state.pending
        if c.room_id != room_id or c.device_id == device_id or ts - c.ts > ALONE_S
    ]
    others_before = any(
        ts - t <= ALONE_S
        for d, t in state.last_fired.items()
        if d != device_id and d in room_sensors
    )
    state.last_fired[device_id] = ts
    if placed_since is None or ts - placed_since < SETTLED_S or others_before:
        return
    if state.last_day.get(device_id) == day or any(c.device_id == device_id for c in state.pending):
        return
    state.pending.append(_Candidate(device_id=device_id, room_id=room_id, ts=ts, day=day))


def settle(state: LoneSensorState, now: float) -> None:
    """Credit the firings whose `ALONE_S` after them has passed alone by `now`."""
    keep: list[_Candidate] = []
    for c in state.pending:
        if now - c.ts <= ALONE_S:
            keep.append(c)
        elif state.last_day.get(c.device_id) != c.day:
            state.days[c.device_id] = state.days.get(c.device_id, 0) + 1
            state.last_day[c.device_id] = c.day
    state.pending = keep


def fires_alone(state: LoneSensorState, device_id: str, days: int) -> bool:
    """The sensor has fired on its own on `days` days (0: never judged so)."""
    return days > 0 and state.days.get(device_id, 0) >= days
