"""One picture per site of where its residents are and what they are doing, shared by
every rule.

The runtime hosts one `ResidentStateModel` first in each site's detector set: it takes
every reading before any rule does (timers due before that reading have already fired,
so a rule's timer never sees a reading from its future), and the rules read it through
`ResidentPicture`, a read-only view. Before it, seven rules each kept their own copy
of the movement state and five their own absence state, fed by whatever streams each
happened to declare; now there is one copy, fed by every reading.

What it tells, per resident, or per household (`""`) where the sensors cannot tell the
residents apart (a home of two: rooms, seats and the front door are shared):

- *home or away*: the outer door and the silence after it (`absence.py`), never while
  a bed, seat or radar reports someone (`occupancy.py`); and, for `inactivity`, also
  gone when the only movement since a passage out was the hall sensor seeing her go
  through the door (`left_home_since`);
- *the room she is in*: the room of the last movement seen (a door into a room counts
  for that room); for a household, the room someone was last seen in;
- *in bed*: her bed mats (or, mats emptied with nothing moving outside the bedroom
  since, still in bed: mats lose sleepers);
- *seated*: a seat mat pressed (in a home of two: someone is seated);
- *moving or still*: movement within `MOVING_S`, else still since the last movement;
- *presumed asleep*: in bed and either in the night window of `inactivity` or still
  there for `ASLEEP_AFTER_S`; without a bed sensor, last seen in the bedroom in the
  night window and still since `ASLEEP_AFTER_S`;
- *everyone placed*: each resident accounted for on a bed or seat away from a given
  room, so that a sensor firing in that room is not a person walking in.

Each fact comes with the evidence behind it (the reading that last made it so) and a
confidence: `seen` (a sensor reports it now), `inferred` (it follows from what was seen:
the last room, a bed emptied with nothing moving since), `household` (true of someone in
a home of several, not known to be this resident), `unknown`.

What it cannot tell: in a home of two, which of them moved, which one went out (one
going out while the other sits still looks like nobody inside unless a mat or radar
reports the one at home), and whether a visitor is a resident. It acts conservatively
there: a household is away only when nothing inside reports anyone; a household is
asleep only when every resident is in bed by their own mat; and "everyone placed"
counts at most one person per room (two chairs pressed at one table could be one
person on two mats), except bed mats bound to different residents.

Pure: no I/O, no clock; time is the readings' event time and the `now` a query passes.
Its state is plain data with snapshot and restore like a rule's.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import Field

from detectors import absence as away
from detectors import occupancy as occ
from detectors.movement import MovementState, is_movement
from detectors.rule import EvidenceData, RuleState
from detectors.settings import AbsenceSettings, InactivitySettings
from detectors.site_context import SiteContext
from eldercare.domain import AlertKind, DeviceKind, Reading, Stream, Transition
from eldercare.evidence import EvidenceCode, describe, seen

NAME = "resident_state"  # its key in a site's detector set and snapshot
# Rules whose snapshots, before the shared picture, held their own movement and absence,
# the most complete first (fed every movement, presence and occupancy stream).
LEGACY_SOURCES = ("not_returned", "inactivity", "not_up", "bed_exit_no_return")
HOUSEHOLD = ""  # the key of a home whose residents the sensors cannot tell apart
MOVING_S = 120.0  # movement this recent: she is moving
ASLEEP_AFTER_S = 30 * 60.0  # in bed and still this long (outside the night window): asleep
# A resident whose own bed has been empty this long sleeps elsewhere tonight (travelling,
# in hospital, at a daughter's): in a home of several she no longer keeps the household
# "awake" while the others are in bed (ARAS house B: one resident's mat empty for five
# days while the other slept at home; every night was judged as if someone were up).
BED_UNUSED_S = 20 * 3600.0


class Confidence(enum.StrEnum):
    SEEN = "seen"  # a sensor reports it now
    INFERRED = "inferred"  # follows from what was seen (the last room, a bed left quiet)
    HOUSEHOLD = "household"  # true of someone in a shared home, not known to be her
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Fact:
    value: bool | str | None
    confidence: Confidence
    since: float | None = None
    evidence: EvidenceData | None = None


@dataclass(frozen=True, slots=True)
class ResidentFacts:
    """Everything the picture says of one resident (or the household) at `now`."""

    key: str
    now: float
    away: Fact
    room: Fact
    in_bed: Fact
    seated: Fact
    moving: Fact
    asleep: Fact


class _Seen(RuleState):
    room: str | None
    ts: float
    evidence: EvidenceData


class ResidentStateData(RuleState):
    movement: MovementState = Field(default_factory=MovementState)
    absence: away.AbsenceState = Field(default_factory=away.AbsenceState)
    last_seen: dict[str, _Seen] = Field(default_factory=dict)  # key → last movement
    # The last confirmed absence that ended: (dated from its door, ended at).
    absence_ended: tuple[float, float] | None = None
    room_moved: dict[str, float] = Field(default_factory=dict)  # room → its last movement
    # Leaving read through the door's own room (`ResidentPicture.left_home_since`): the
    # room of the outer door of the last passage out while nobody has been seen inside
    # beyond that room since (None: someone has), and its last movement since the passage.
    passage_room: str | None = None
    passage_room_moved: float | None = None
    left_home_ended: tuple[float, float] | None = None  # (since, until) of the last one


class ResidentStateModel:
    """Hosted by the runtime like a detector (it raises nothing); see the module doc."""

    name: ClassVar[str] = NAME
    kinds: tuple[AlertKind, ...] = ()
    streams = None  # every reading

    def __init__(self, ctx: SiteContext) -> None:
        self.ctx = ctx
        self.state = ResidentStateData()
        # About the reading being applied now (rules read them in their `on_reading`).
        self.moved = False
        self.change: away.Change | None = None
        self.ended_absence: tuple[float, EvidenceData | None] | None = None
        self.view = ResidentPicture(self)

    # --- the detector protocol --------------------------------------------------------------

    def update(self, reading: Reading) -> list[Transition]:
        self.feed(reading)
        return []

    def advance(self, now: float) -> list[Transition]:
        return []  # every fact is a function of `now`: nothing to fire

    def next_due(self) -> float | None:
        return None

    def snapshot(self) -> dict[str, Any]:
        return self.state.model_dump(mode="json")

    def restore(self, state: Mapping[str, Any]) -> None:
        self.state = ResidentStateData.model_validate(dict(state))
        self.moved, self.change, self.ended_absence = False, None, None

    def restore_from_rules(self, states: Mapping[str, Any]) -> bool:
        """Seed the picture from a site snapshot taken before it existed, when each rule
        kept its own `movement` and `absence`: an absence in progress across the upgrade
        stays one (else `not_returned` would never see its end). True if seeded."""
        for rule in LEGACY_SOURCES:
            old = states.get(rule)
            if isinstance(old, Mapping) and "absence" in old and "movement" in old:
                try:
                    self.restore({"absence": old["absence"], "movement": old["movement"]})
                except ValueError:
                    continue  # that rule's copy is of an older schema still
                return True
        return False

    # --- feeding ----------------------------------------------------------------------------

    @property
    def away_after_s(self) -> float:
        return self.ctx.settings("absence", AbsenceSettings).away_after_minutes * 60

    def feed(self, reading: Reading) -> None:
        st = self.state
        self._confirm_away(reading.ts)
        self.moved = is_movement(reading, st.movement)
        since, door = st.absence.away_since, st.absence.door_evidence
        left = self.view.left_home_since(reading.ts)
        if self.moved and not self.ctx.is_outer_door(reading.device_id):
            # a device learned to fire on its own, alone in an empty home, is not a person
            # moving, for every rule (`absence.py`)
            self.moved = not away.lone_firing(st.absence, self.ctx, reading, left is not None)
        self.change = away.observe(st.absence, self.ctx, reading, self.moved)
        self.ended_absence = None
        if self.change == "returned" and since is not None:
            self.ended_absence = (since, door)
            st.absence_ended = (since, reading.ts)
        self._follow_passage(reading)
        if left is not None and self.view.left_home_since(reading.ts) is None:
            st.left_home_ended = (left, reading.ts)
        if not self.moved:
            return
        room = self.ctx.room_of(reading)
        if room is not None:
            st.room_moved[room] = reading.ts
        if self.ctx.is_outer_door(reading.device_id):
            return
        ev = EvidenceData.seen(reading, seen(EvidenceCode.MOVEMENT), room_id=room)
        for key in self.keys_of(reading):
            st.last_seen[key] = _Seen(room=room, ts=reading.ts, evidence=ev)

    def _follow_passage(self, reading: Reading) -> None:
        """Whether anyone has been seen inside beyond the outer door's own room since the
        last passage out (for `left_home_since`)."""
        st = self.state
        if self.change == "went_out":
            st.passage_room = self.ctx.device_room(reading.device_id)
            st.passage_room_moved = None
        elif self.change is not None:
            st.passage_room = None  # coming in
        elif self.moved and not self.ctx.is_outer_door(reading.device_id):
            room = self.ctx.room_of(reading)
            if room is not None and room == st.passage_room:
                st.passage_room_moved = reading.ts
            else:
                st.passage_room = None

    def _confirm_away(self, now: float) -> None:
        """An absence whose silence ran out before `now` is confirmed, dated from its door
        (what a timer at its due time would have done)."""
        due = away.away_due(self.state.absence, self.away_after_s)
        if due is not None and due <= now:
            away.fire(self.state.absence, due, self.away_after_s)

    def keys_of(self, reading: Reading) -> tuple[str, ...]:
        """Whose picture a movement reading updates: the household's in a shared home (and
        a bound bed mat's resident besides), else the residents it shows active."""
        if not self.ctx.resident_ids:
            return (HOUSEHOLD,)
        if self.ctx.is_shared_home:
            owner = self.ctx.bed_resident(reading.device_id)
            return (HOUSEHOLD,) if owner is None else (HOUSEHOLD, owner)
        return self.ctx.activity_residents(reading) or (HOUSEHOLD,)


class ResidentPicture:
    """The read-only view of a site's `ResidentStateModel` that rules get."""

    __slots__ = ("_model",)

    def __init__(self, model: ResidentStateModel) -> None:
        self._model = model

    # --- the reading being applied -------------------------------------------------------

    @property
    def moved(self) -> bool:
        """The reading being applied is a person moving (`movement.is_movement`)."""
        return self._model.moved

    @property
    def change(self) -> away.Change | None:
        """What the reading being applied did to home/away (`absence.observe`)."""
        return self._model.change

    @property
    def ended_absence(self) -> tuple[float, EvidenceData | None] | None:
        """(since, door evidence) of the confirmed absence the reading just ended."""
        return self._model.ended_absence

    # --- home or away ---------------------------------------------------------------------

    @property
    def _absence(self) -> away.AbsenceState:
        return self._model.state.absence

    def away_due(self) -> float | None:
        """When the household will be confirmed away if nothing happens first."""
        return away.away_due(self._absence, self._model.away_after_s)

    def away_since(self, now: float) -> float | None:
        """Since when the household has been away at `now` (dated from its door), or None."""
        if self._absence.away_since is not None:
            return self._absence.away_since
        due = self.away_due()
        return self._absence.last_door if due is not None and due <= now else None

    def is_away(self, now: float) -> bool:
        return self.away_since(now) is not None

    def away_pending_since(self) -> float | None:
        """The door of an absence confirmed or still to be confirmed (nothing seen inside
        since a passage out), else None."""
        if self._absence.away_since is not None:
            return self._absence.away_since
        return self._absence.last_door if self.away_due() is not None else None

    def door_evidence(self) -> EvidenceData | None:
        return self._absence.door_evidence

    def gone_out_since(self, ts: float) -> bool:
        """Away (or to be, if nothing happens first), or through the front door going out
        at or after `ts` with nobody seen inside since."""
        a = self._absence
        if a.away_since is not None or self.away_due() is not None:
            return True
        return a.last_door is not None and a.last_door >= ts and not a.indoor_after_door

    def left_home_since(self, now: float) -> float | None:
        """Since when the household has been gone at `now` (dated from its door), reading
        movement in the outer door's own room *between* the door events of a passage out
        as whoever went through it, not as someone staying in: `away_since` and also a
        passage out whose only indoor movement was in the door's room before the passage's
        last door event, followed by `away_after_minutes` of silence (never while a bed,
        seat or radar reports someone). A hall sensor sees whoever passes the door, going
        out as well as coming in (ARAS house A: both residents leave, the hall sonar fires
        between the door's open and its close, and the afternoon out was judged a quiet at
        home). Movement in the door's room after the passage's last door event is someone
        inside, as before."""
        since = self.away_since(now)
        if since is not None:
            return since
        st, a = self._model.state, self._absence
        if st.passage_room is None or a.last_door is None:
            return None
        if st.passage_room_moved is not None and st.passage_room_moved > a.last_door:
            return None
        due = a.last_door + self._model.away_after_s
        if due > now or occ.someone_inside(a.occupancy, due):
            return None
        return a.last_door

    def left_home_ended(self) -> tuple[float, float] | None:
        """(since, until) of the last time `left_home_since` ended."""
        return self._model.state.left_home_ended

    def absence_ended(self) -> tuple[float, float] | None:
        """(since, until) of the last confirmed absence that ended."""
        return self._model.state.absence_ended

    # --- beds, seats, radars --------------------------------------------------------------

    @property
    def _occ(self) -> occ.OccupancyState:
        return self._absence.occupancy

    def in_bed(self, resident: str) -> bool:
        return occ.in_bed(self._occ, self._model.ctx, resident)

    def in_bed_by_mat(self, resident: str) -> bool:
        return occ.in_bed_by_mat(self._occ, self._model.ctx, resident)

    def left_bed_at(self, resident: str) -> float | None:
        return occ.left_bed_at(self._occ, resident)

    def settled_before_empty(self, resident: str) -> bool:
        return occ.settled_before_empty(self._occ, resident)

    def seated(self, now: float) -> float | None:
        return occ.seated(self._occ, self._model.ctx, now)

    def sleeps_elsewhere(self, resident: str, now: float) -> bool:
        """Her own bed has been empty for `BED_UNUSED_S` (and nobody saw it pressed since)."""
        if self.in_bed_by_mat(resident):
            return False
        emptied = self._occ.bed_empty_at.get(resident)
        return emptied is not None and now - emptied >= BED_UNUSED_S

    def household_in_bed(self, now: float) -> bool:
        """Every resident of the home who sleeps at home is in bed by her own mats (all
        of them must have mats); at least one does."""
        ctx = self._model.ctx
        if not set(ctx.resident_ids) <= ctx.residents_with_bed_sensor:
            return False
        home = [r for r in ctx.resident_ids if not self.sleeps_elsewhere(r, now)]
        return bool(home) and all(self.in_bed(r) for r in home)

    def someone_inside(self, now: float) -> bool:
        return occ.someone_inside(self._occ, now)

    def everyone_placed(self, room: str | None, now: float) -> bool:
        """Every resident is accounted for on a bed or seat outside `room` (mats believed
        at `now`), and nothing has moved outside those rooms and `room` since the last of
        them was pressed: a sensor firing in `room` is then not one of them walking in.
        At most one person per room, except bed mats bound to different residents."""
        ctx = self._model.ctx
        residents = ctx.resident_ids or ("",)
        people: set[str] = set()
        placed_rooms: set[str] = set()
        last_press = 0.0
        for device_id, since in self._occ.on.items():
            if now - since >= occ.STUCK_S:
                continue
            device = ctx.device(device_id)
            if device is None or device.kind not in occ.OCCUPANCY_KINDS:
                continue
            where = ctx.device_room(device_id)
            if where is None or where == room:
                continue
            owner = ctx.bed_resident(device_id)
            people.add(f"{where}/{owner}" if owner is not None and ctx.is_shared_home else where)
            placed_rooms.add(where)
            last_press = max(last_press, since)
        if len(people) < len(residents):
            return False
        # Movement elsewhere since the last of them sat or lay down contradicts the mats
        # (a mat left pressed by a cushion or a cat while she walks about).
        moved = self._model.state.room_moved
        return not any(
            ts > last_press for r, ts in moved.items() if r != room and r not in placed_rooms
        )

    # --- where and how --------------------------------------------------------------------

    def last_seen(self, key: str) -> tuple[str | None, float, EvidenceData] | None:
        seen_ = self._model.state.last_seen.get(key)
        return None if seen_ is None else (seen_.room, seen_.ts, seen_.evidence)

    def asleep(self, key: str, now: float) -> bool:
        return bool(self.facts(key, now).asleep.value)

    def facts(self, key: str, now: float) -> ResidentFacts:
        ctx = self._model.ctx
        shared = key == HOUSEHOLD and ctx.is_shared_home
        sure = Confidence.HOUSEHOLD if shared else Confidence.SEEN
        inferred = Confidence.HOUSEHOLD if shared else Confidence.INFERRED
        door = self.door_evidence()
        away_since = self.away_since(now)
        away_fact = Fact(
            away_since is not None, inferred, away_since, door if away_since is not None else None
        )
        last = self._model.state.last_seen.get(key)
        if last is None:
            room = Fact(None, Confidence.UNKNOWN)
            moving = Fact(None, Confidence.UNKNOWN)
        else:
            room = Fact(last.room, inferred, last.ts, last.evidence)
            is_moving = now - last.ts <= MOVING_S
            moving = Fact(is_moving, sure if is_moving else inferred, last.ts, last.evidence)
        bed = self._bed_fact(key, shared)
        sat = self.seated(now)
        seat_fact = Fact(
            sat is not None,
            Confidence.HOUSEHOLD if shared else sure,
            sat,
            self._mat_evidence(DeviceKind.SEAT, sat, "seat pressed"),
        )
        return ResidentFacts(
            key=key,
            now=now,
            away=away_fact,
            room=room,
            in_bed=bed,
            seated=seat_fact,
            moving=moving,
            asleep=self._asleep_fact(key, now, bed, last, away_since is not None),
        )

    def _bed_fact(self, key: str, shared: bool) -> Fact:
        ctx = self._model.ctx
        residents = ctx.resident_ids if shared or key == HOUSEHOLD else (key,)
        with_mats = [r for r in residents if r in ctx.residents_with_bed_sensor]
        if not residents or len(with_mats) < len(residents):
            return Fact(None, Confidence.UNKNOWN)
        by_mat = all(self.in_bed_by_mat(r) for r in residents)
        if by_mat:
            lay = max(t for d, t in self._occ.on.items() if ctx.bed_resident(d) in set(residents))
            return Fact(True, Confidence.SEEN, lay, self._mat_evidence(DeviceKind.BED, lay))
        emptied = [t for r in residents if (t := self._occ.bed_empty_at.get(r)) is not None]
        return Fact(
            all(self.in_bed(r) for r in residents),
            Confidence.INFERRED,
            max(emptied) if emptied else None,
        )

    def _mat_evidence(
        self, kind: DeviceKind, since: float | None, summary: str = ""
    ) -> EvidenceData | None:
        """The mat of `kind` pressed at `since`, as evidence."""
        if since is None:
            return None
        ctx = self._model.ctx
        for device_id, t in self._occ.on.items():
            device = ctx.device(device_id)
            if t == since and device is not None and device.kind == kind:
                observations = (seen(EvidenceCode.IN_BED),) if kind == DeviceKind.BED else ()
                return EvidenceData(
                    ts=t,
                    device_id=device_id,
                    stream=Stream.OCCUPANCY.value,
                    summary=describe(observations) if observations else summary,
                    room_id=ctx.device_room(device_id),
                    observations=observations,
                )
        return None

    def _asleep_fact(
        self, key: str, now: float, bed: Fact, last: _Seen | None, away_now: bool
    ) -> Fact:
        ctx = self._model.ctx
        if away_now:
            return Fact(False, Confidence.INFERRED)
        s = ctx.settings("inactivity", InactivitySettings, key or None)
        night = ctx.in_window(now, s.night_start, s.night_end)
        still_since = last.ts if last is not None else None
        still_long = still_since is not None and now - still_since >= ASLEEP_AFTER_S
        if bed.value is not None:
            asleep = bool(bed.value) and (night or still_long)
            return Fact(asleep, bed.confidence, still_since)
        if last is None or not ctx.is_bedroom(last.room):
            return Fact(False, Confidence.UNKNOWN if last is None else Confidence.INFERRED)
        return Fact(night and still_long, Confidence.INFERRED, still_since, last.evidence)
