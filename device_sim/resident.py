"""Simulated residents: who they are, how they tend to live, and where they are when.

A resident's life is a contiguous sequence of `Segment`s: a place (a logical place
such as "bathroom", mapped to the site's room by `ResidentSpec.places`, or None when
out of the home) and an `Activity` that says how much the sensors there would see.
Sensors are derived from segments only, so an injected incident that rewrites a
stretch of segments yields consistent doors, beds and motion automatically.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Profile(StrEnum):
    """Kinds of residents the simulator knows, with the habits that go with them."""

    INDEPENDENT = "independent"
    FRAIL = "frail"
    DEMENTIA = "dementia"  # wanders at night
    BED_BOUND = "bed_bound"  # institution resident cared for in bed


class Activity(StrEnum):
    ASLEEP = "asleep"
    RESTING = "resting"  # in bed awake, or napping
    ACTIVE = "active"  # moving about a room
    SITTING = "sitting"  # watching TV, reading: the PIR sees little
    WANDERING = "wandering"  # restless walking (dementia)
    FALLEN = "fallen"  # lying on the floor after a fall
    STILL = "still"  # at home, not in bed, not moving at all (unwell)
    STILL_IN_BED = "still_in_bed"  # in bed and not getting up (unwell)
    OUT = "out"  # out of the home


@dataclass(frozen=True, slots=True)
class ActivityTraits:
    in_bed: bool
    # Mean seconds between PIR detections in the room; None = the PIR sees nothing.
    motion_mean_s: float | None
    posture: str  # upright | sitting | lying (for the wearable's orientation)


TRAITS: dict[Activity, ActivityTraits] = {
    Activity.ASLEEP: ActivityTraits(True, 2700.0, "lying"),
    Activity.RESTING: ActivityTraits(True, 900.0, "lying"),
    Activity.ACTIVE: ActivityTraits(False, 40.0, "upright"),
    Activity.SITTING: ActivityTraits(False, 420.0, "sitting"),
    Activity.WANDERING: ActivityTraits(False, 30.0, "upright"),
    Activity.FALLEN: ActivityTraits(False, None, "lying"),
    Activity.STILL: ActivityTraits(False, None, "sitting"),
    Activity.STILL_IN_BED: ActivityTraits(True, None, "lying"),
    Activity.OUT: ActivityTraits(False, None, "upright"),
}


@dataclass(frozen=True, slots=True)
class Segment:
    """The resident is at `place` doing `activity` during [start, end) (epoch seconds)."""

    start: float
    end: float
    place: str | None  # logical place; None = out of the home
    activity: Activity
    scripted: bool = False  # part of an injected incident (no random sensor quirks)

    @property
    def in_bed(self) -> bool:
        return TRAITS[self.activity].in_bed


@dataclass(frozen=True, slots=True)
class Habits:
    """Mean local clock hours and daily rates that shape a resident's routine."""

    wake_h: float
    wake_sd_h: float
    bed_h: float
    bed_sd_h: float
    night_toilet_rate: float  # mean night bathroom visits
    outing_prob: float  # chance of going out on a given day
    nap_prob: float
    visitor_prob: float
    wander_prob: float = 0.0  # chance of a night wandering episode (inside the home)


HABITS: dict[Profile, Habits] = {
    Profile.INDEPENDENT: Habits(6.3, 0.35, 21.8, 0.5, 0.8, 0.7, 0.35, 0.2),
    Profile.FRAIL: Habits(7.0, 0.4, 21.0, 0.4, 1.6, 0.3, 0.7, 0.25),
    Profile.DEMENTIA: Habits(6.6, 0.7, 20.8, 0.7, 1.4, 0.15, 0.6, 0.3, 0.35),
    Profile.BED_BOUND: Habits(6.5, 0.3, 21.0, 0.3, 0.0, 0.0, 0.0, 0.15),
}


@dataclass(slots=True)
class ResidentSpec:
    """A simulated resident and the site rooms their logical places map to."""

    id: str
    name: str
    profile: Profile
    birth_year: int
    sex: str
    # logical place -> room id: bedroom, bathroom, kitchen, living, entrance
    places: dict[str, str]
    bed_id: str | None = None
    can_go_out: bool = True
    flags: list[str] = field(default_factory=list)

    @property
    def habits(self) -> Habits:
        return HABITS[self.profile]
