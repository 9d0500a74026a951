"""What a sensor saw, as structured data: a code and its parameters.

Detectors say what made them decide as `Observation`s (a code from `EvidenceCode` and
numbers or names); the gateway renders each in the reader's language from its string
table (`evidence.<code>`), and `describe` gives the English summary that `Evidence`
keeps for logs, notifications and older readers. The English templates reproduce,
character for character, the summaries the detectors wrote before they said codes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

ParamValue = str | int | float


class EvidenceCode(StrEnum):
    """Stable identifiers of what was seen (also the string table's `evidence.*` keys)."""

    SOS_PRESSED = "sos_pressed"
    RADAR_FALL = "radar_fall"
    RADAR_MAYBE_FALL = "radar_maybe_fall"
    MOVEMENT = "movement"
    MOVEMENT_ELSEWHERE = "movement_elsewhere"  # in another room than the fall
    MOVEMENT_INDOORS = "movement_indoors"
    IN_BED = "in_bed"
    BED_EMPTY = "bed_empty"
    BATHROOM_ACTIVITY = "bathroom_activity"
    BATHROOM_EMPTY = "bathroom_empty"  # its presence sensor reports nobody
    BATHROOM_DOOR_LEFT = "bathroom_door_left"
    OTHER_BATHROOM = "other_bathroom"
    MOVEMENT_OUTSIDE_BATHROOM = "movement_outside_bathroom"
    DOOR_USED = "door_used"
    CAME_BACK_IN = "came_back_in"
    BACK_HOME = "back_home"
    DEVICE_OFFLINE = "device_offline"
    SILENT_SINCE = "silent_since"
    NEVER_REPORTED = "never_reported"
    MESSAGE_RECEIVED = "message_received"
    BATTERY = "battery"  # percent
    TAMPER = "tamper"
    VITAL_HIGH = "vital_high"  # measure, value, unit, limit
    VITAL_LOW = "vital_low"  # measure, value, unit, limit
    VITALS_OK = "vitals_ok"
    NO_MEASUREMENT = "no_measurement"
    IMPACT = "impact"  # g
    POSTURE_STILL = "posture_still"  # deg, g, s
    UPRIGHT_AGAIN = "upright_again"  # s
    SMOKE_ALARM = "smoke_alarm"
    GAS_ALARM = "gas_alarm"
    CO_ALARM = "co_alarm"
    WATER_ON_FLOOR = "water_on_floor"
    INDOOR_CELSIUS = "indoor_celsius"  # celsius
    TEMPERATURE_NORMAL = "temperature_normal"
    BATTERY_FLAG = "battery_flag"  # a device's own low-battery flag, no percent
    DEVICE_TEST_OVERDUE = "device_test_overdue"  # the weekly test (JGJ/T 484) not done
    DEVICE_FAULT_UNFIXED = "device_fault_unfixed"  # a failed test not fixed within 2 h


ENGLISH: Mapping[EvidenceCode, str] = {
    EvidenceCode.SOS_PRESSED: "SOS button pressed",
    EvidenceCode.RADAR_FALL: "radar reports fall",
    EvidenceCode.RADAR_MAYBE_FALL: "radar reports maybe_fall",
    EvidenceCode.MOVEMENT: "movement",
    EvidenceCode.MOVEMENT_ELSEWHERE: "movement in another room",
    EvidenceCode.MOVEMENT_INDOORS: "movement indoors",
    EvidenceCode.IN_BED: "in bed",
    EvidenceCode.BED_EMPTY: "bed empty",
    EvidenceCode.BATHROOM_ACTIVITY: "activity in bathroom",
    EvidenceCode.BATHROOM_EMPTY: "bathroom presence sensor reports nobody",
    EvidenceCode.BATHROOM_DOOR_LEFT: "bathroom door opened to leave",
    EvidenceCode.OTHER_BATHROOM: "moved to another bathroom",
    EvidenceCode.MOVEMENT_OUTSIDE_BATHROOM: "movement elsewhere",
    EvidenceCode.DOOR_USED: "outer door used",
    EvidenceCode.CAME_BACK_IN: "came back in through the door",
    EvidenceCode.BACK_HOME: "back home",
    EvidenceCode.DEVICE_OFFLINE: "device reported offline",
    EvidenceCode.SILENT_SINCE: "no message since",
    EvidenceCode.NEVER_REPORTED: "never reported",
    EvidenceCode.MESSAGE_RECEIVED: "message received",
    EvidenceCode.BATTERY: "battery at {percent:.0f}%",
    EvidenceCode.TAMPER: "tamper switch triggered",
    EvidenceCode.VITAL_HIGH: "{measure} {value:g}{unit} > {limit:g}",
    EvidenceCode.VITAL_LOW: "{measure} {value:g}{unit} < {limit:g}",
    EvidenceCode.VITALS_OK: "back in range",
    EvidenceCode.NO_MEASUREMENT: "no measurement",
    EvidenceCode.IMPACT: "impact {g:.1f} g",
    EvidenceCode.POSTURE_STILL: "posture changed {deg:.0f}°, then still ({g:.2f} g) for {s:g} s",
    EvidenceCode.UPRIGHT_AGAIN: "upright and moving again for {s} s",
    EvidenceCode.SMOKE_ALARM: "smoke alarm sounding",
    EvidenceCode.GAS_ALARM: "gas alarm sounding",
    EvidenceCode.CO_ALARM: "carbon monoxide alarm sounding",
    EvidenceCode.WATER_ON_FLOOR: "water on the floor",
    EvidenceCode.INDOOR_CELSIUS: "indoor {celsius:.1f} °C",
    EvidenceCode.TEMPERATURE_NORMAL: "indoor temperature back to normal",
    EvidenceCode.BATTERY_FLAG: "battery low (device flag)",
    EvidenceCode.DEVICE_TEST_OVERDUE: "device test overdue (weekly, JGJ/T 484)",
    EvidenceCode.DEVICE_FAULT_UNFIXED: "device fault not fixed within 2 hours",
}


@dataclass(frozen=True, slots=True)
class Observation:
    """One thing seen: a code and the values its text needs."""

    code: EvidenceCode
    params: Mapping[str, ParamValue] = field(default_factory=dict)

    def english(self) -> str:
        template = ENGLISH[self.code]
        return template.format(**self.params) if self.params else template


def describe(observations: Sequence[Observation]) -> str:
    """The English summary of what was seen ("; " between observations)."""
    if len(observations) == 1:  # nearly always: no join on the hot path
        return observations[0].english()
    return "; ".join(o.english() for o in observations)


def seen(code: EvidenceCode, **params: ParamValue) -> Observation:
    """`seen(EvidenceCode.BATTERY, percent=12)`. Detectors keep evidence of every motion
    in their state, so an observation without values is one shared instance per code."""
    if not params:
        return _PLAIN[code]
    return Observation(code, params)


_PLAIN: Mapping[EvidenceCode, Observation] = {code: Observation(code) for code in EvidenceCode}
