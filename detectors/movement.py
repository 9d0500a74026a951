"""Which readings show a person moving, as opposed to a device merely reporting.

Movement: a PIR firing, a door or cupboard opening or closing, a toilet flush, an
SOS press, a bed or chair changing state, an appliance switching on. Not
movement: heartbeats, batteries, link quality, availability, vital signs, and
mmWave "present" (a person lying still on the floor is present), and wearable
accelerometer batches (a worn pendant streams while its wearer lies still).

A door contact is movement only when it opens or changes state. zigbee2mqtt repeats
the contact state in every state message (battery, link quality), and devices
report "closed" when they join: a repeated state is not an event, nor is a
device's first report unless it is "open".

A motion report is movement only when it is a new detection. zigbee2mqtt repeats the
cached `occupancy: true` in every state message until its occupancy timeout sends
`false` (a battery or link-quality report a few seconds after a detection carries it
again), and Tasmota repeats an input's state every telemetry period. A PIR cannot
report a new detection within its blind time (Aqara: 60 s) of the last one, so a
`motion: true` within `MOTION_REPEAT_S` of the last one counted, with no `false` in
between, is the same detection repeated. A `true` after a `false`, or after that
time (a PIR re-triggering while the person moves about), counts.
"""

from __future__ import annotations

from pydantic import Field

from detectors.no_entries import Entries, no_entries, writable
from detectors.rule import RuleState, rule_state
from eldercare.domain import Reading, Stream

APPLIANCE_ON_WATTS = 20.0
# A PIR's blind time after a report (Aqara's fixed 60 s; most PIRs are no shorter in
# their default setting): a repeated `motion: true` sooner than this is not new.
MOTION_REPEAT_S = 60.0

# Every stream `is_movement` may call movement (or remember a level of): a rule that
# looks only at movement declares these as its `streams`.
MOVEMENT_STREAMS = frozenset(
    {Stream.MOTION, Stream.CONTACT, Stream.FLUSH, Stream.SOS, Stream.OCCUPANCY, Stream.POWER}
)


@rule_state
class MovementState(RuleState):
    # device → last occupancy / power on
    last_bool: Entries[str, bool] = Field(default_factory=no_entries)
    # contact device → last open state
    last_open: Entries[str, bool] = Field(default_factory=no_entries)
    # motion device → time of the last `motion: true` counted, while no `false` has followed
    motion_on_since: dict[str, float] = Field(default_factory=dict)


def _truthy(reading: Reading, key: str) -> bool:
    return bool(reading.fields.get(key, False))


def is_movement(reading: Reading, state: MovementState) -> bool:
    """Classify one reading, remembering the last state of level-type sensors in `state`."""
    s = reading.stream
    if s == Stream.MOTION:
        return motion_detected(reading, state)
    if s == Stream.CONTACT:
        return contact_changed(reading, state)
    if s == Stream.FLUSH:
        return True
    if s == Stream.SOS:
        return _truthy(reading, "pressed")
    if s in (Stream.OCCUPANCY, Stream.POWER):
        if s == Stream.OCCUPANCY:
            value = _truthy(reading, "occupied")
        else:
            watts = reading.fields.get("watts", 0.0)
            value = isinstance(watts, int | float) and float(watts) >= APPLIANCE_ON_WATTS
        previous = state.last_bool.get(reading.device_id)
        writable(state, "last_bool")[reading.device_id] = value
        if s == Stream.POWER:
            return value and previous is not True
        return previous is not None and previous != value
    return False


def contact_changed(reading: Reading, state: MovementState) -> bool:
    """A door event: the contact opened or changed state. Remembers the state in `state`."""
    value = _truthy(reading, "open")
    previous = state.last_open.get(reading.device_id)
    writable(state, "last_open")[reading.device_id] = value
    if previous is None:
        return value
    return previous != value


def motion_detected(reading: Reading, state: MovementState) -> bool:
    """A new detection: `motion: true` not merely repeating the device's last one (see the
    module's doc). Remembers the detection in `state`."""
    device = reading.device_id
    if not _truthy(reading, "motion"):
        state.motion_on_since.pop(device, None)
        return False
    last = state.motion_on_since.get(device)
    if last is not None and reading.ts - last < MOTION_REPEAT_S:
        return False  # the same detection repeated (or delivered twice, or out of order)
    state.motion_on_since[device] = reading.ts
    return True
