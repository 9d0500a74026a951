"""Long bathroom stay: the resident has been in a bathroom or toilet longer than 15 min
at night (the stay began in the night window) or 45 min by day.

Where the person is comes from the rooms of the sensors that fire:
- a stay begins with movement (PIR, flush, a door or cabinet contact) or mmWave presence
  in a bathroom;
- it ends with movement in any other room, the outer door, the bathroom's presence
  sensor reporting nobody, or the bathroom door opening again (a door opening toggles:
  one opening lets the person in, the next lets them out; closings are ignored, so a
  door left open does not confuse it).
The room's door is a contact the registry declares on it (`room_door: true`). Any other
contact in the room is on furniture or an appliance (a cabinet, a shower cabin, a medicine
box): its opening or shutting is someone active in the room, never a passage, so it
neither ends a stay nor tells whether the room is shut. Read as the door, a cabinet opened
just after walking in ended the stay as "left by the door", and a collapse after it was
not timed (ARAS house A's bathroom has a cabinet and a shower-cabin contact).
A bathroom door opened again within `door_debounce_s` of its last counted opening
is the same passage (fumbling with the door or the light), not in-and-out.
A flush within `flush_after_exit_s` of leaving is the cistern refilling (flush
sensors fire on the refill, after the person has gone) and does not start a stay.

A bathroom whose only occupancy evidence is its door (a door contact, no motion or
presence sensor) shows someone inside only while that door is shut: door-only
systems in the field alarm on "bathroom door closed too long". With the door left
open the person may have walked out unseen into a room without sensors, so such a
stay is not timed (ambiguous) until the door is shut during the stay; it is timed
from the entry if the door was shut within the same passage (`door_debounce_s`),
else from the shutting. A stay begun without the door (a flush, while the door was
open, or shut with no entry seen) is ambiguous the same way. The cost: where the
resident never shuts the bathroom door, a door-only bathroom cannot time stays.

Leaving one bathroom by its door and, within `door_transit_s` and with nothing seen
elsewhere, opening the door of a door-only bathroom is ambiguous too: a second visit,
or the way out where doors are nested (a bathroom inside a toilet lobby, an en-suite)
and the second door is passed through after the first. Door contacts cannot tell
entering from leaving, so such a stay is held to the day limit (`day_minutes`) even
at night: still caught if the person stays, but not on the short night limit, which
presumes we know they are inside. Activity in that room (a flush) confirms the stay,
which then has its usual limit.

A bathroom sensor firing with nobody seen coming is evidence of a sensor before it is
evidence of a person (ARAS house A: the bathroom closet distance sensor and the shower
cabin contact firing every few minutes, for tens of minutes, while both residents slept
or sat elsewhere). So in a bathroom watched by more than its door, a stay begun with no
movement elsewhere in the home within `unheralded_s` (10 min) before it is held to the
day limit even at night, like a transit; someone who has just sat or lain down elsewhere
is not on the way, so a mat pressed after the last movement leaves the stay unheralded.
A second sensor of the room firing (a flush, the tap, the door) is a person: the usual
limit applies, from the entry. The cost: someone who reaches the bathroom at night
unseen by every other sensor and collapses there at once is raised at 45 min, not 15.
The same lone sensor firing again renews the same doubtful evidence rather than
lengthening a stay: such a stay is timed from its sensor's last firing (what would show
someone lying there is its silence), and raised at the latest `unheralded_max_minutes`
(90) after its start if the sensor never stops (ARAS house A: the closet sensor firing
every few minutes for over an hour, one resident on the couch, the other out). The
cost: someone who walked in unseen and keeps that one sensor firing while unable to
get out is raised at up to 90 min, not 45.
A door-only bathroom keeps its own doubts (an open door is not timed).

Where everyone is comes from the site's resident picture (`resident_state.py`): a
movement in the bathroom while every resident is accounted for on a bed or seat
elsewhere (a mat pressed in another room) is not someone walking in, and starts no
stay (ARAS house A: a bathroom cabinet sensor firing alone at night while one
resident's bed and the other's couch were pressed). A presence radar in the bathroom
reporting someone always starts one: it sees a person, maybe a visitor.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from pydantic import Field

from detectors.episode import Episode, Episodes
from detectors.no_entries import Entries, no_entries, writable
from detectors.occupancy import WATCHED_STREAMS
from detectors.rule import EvidenceData, Rule, RuleState, evidence, rule_state
from detectors.settings import BathroomSettings
from eldercare.domain import AlertKind, DeviceKind, Reading, Stream, Transition, TransitionAction
from eldercare.evidence import EvidenceCode, seen


@rule_state
class _Stay(Episode):
    """In the bathroom since the entry (`since`, `evidence`)."""

    renamed: ClassVar[Mapping[str, str]] = {"entered": "evidence"}

    room_id: str
    device_id: str
    limit_s: float
    door_only: bool = False  # the room's door is its only occupancy evidence
    closed_at: float | None = None  # door-only: when the door was last shut during the stay
    transit: bool = False  # entered just after leaving another bathroom by its door
    unheralded: bool = False  # begun by one sensor, nothing moving elsewhere before it
    last_fired: float | None = None  # unheralded: when its sensor last fired again


@rule_state
class _DoorExit(RuleState):
    room_id: str
    ts: float


@rule_state
class BathroomState(RuleState):
    # resident id ("" = unknown) → stay
    stays: Episodes[_Stay] = Field(default_factory=Episodes[_Stay])
    # resident id → last stay's end
    left_at: Entries[str, float] = Field(default_factory=no_entries)
    # door → last counted opening
    door_passage: Entries[str, float] = Field(default_factory=no_entries)
    door_open: Entries[str, bool] = Field(default_factory=no_entries)  # bathroom door → open now?
    last_elsewhere: float | None = None  # last movement outside the bathrooms
    # resident id → the last stay, if it ended by its door and nothing was seen since
    door_exit: Entries[str, _DoorExit] = Field(default_factory=no_entries)


class BathroomRule(Rule[BathroomState]):
    __slots__ = ()

    name = "bathroom_too_long"
    kinds = (AlertKind.BATHROOM_TOO_LONG,)
    state_model = BathroomState
    streams = WATCHED_STREAMS
    reads_picture = True

    def _settings(self, resident: str | None) -> BathroomSettings:
        return self.ctx.settings(self.name, BathroomSettings, resident)

    def on_reading(self, reading: Reading) -> list[Transition]:
        moved = self.picture.moved
        present = reading.stream == Stream.PRESENCE
        room = self.ctx.room_of(reading)
        self._track_door(reading, room)  # a repeated "closed" still tells the door is shut
        if not moved and not present:
            return []
        if self._repeated_opening(reading, room):
            return []
        residents = self.ctx.activity_residents(reading) or (
            (self.ctx.reading_resident(reading) or "",)
        )
        if self.ctx.is_shared_home:
            residents = ("",)  # who is in the bathroom is unknown: one stay for the household
        out: list[Transition] = []
        for resident in residents:
            out += self._locate(resident or "", reading, room, moved)
        return out

    def _door_only(self, room: str) -> bool:
        devices = [d for d in self.ctx.site.devices if self.ctx.device_room(d.id) == room]
        has_door = any(self.ctx.is_room_door(d.id) for d in devices)
        return has_door and not any(
            d.kind in (DeviceKind.MOTION, DeviceKind.PRESENCE) for d in devices
        )

    def _doors_shut(self, room: str) -> bool:
        """Every door of the room known to be shut."""
        doors = [
            d.id
            for d in self.ctx.site.devices
            if self.ctx.is_room_door(d.id) and self.ctx.device_room(d.id) == room
        ]
        return bool(doors) and all(self.state.door_open.get(d) is False for d in doors)

    def _track_door(self, reading: Reading, room: str | None) -> None:
        if reading.stream != Stream.CONTACT or not self.ctx.is_bathroom(room):
            return
        if not self.ctx.is_room_door(reading.device_id) or room is None:
            return  # a cabinet's state says nothing of whether the room is shut
        value = bool(reading.fields.get("open", False))
        previous = self.state.door_open.get(reading.device_id)
        writable(self.state, "door_open")[reading.device_id] = value
        if previous == value:
            return  # a repeated state report: the door was shut (or open) before this
        for _, stay in self.state.stays.items():
            if stay.door_only and stay.room_id == room:
                stay.closed_at = reading.ts if self._doors_shut(room) else None

    def _repeated_opening(self, reading: Reading, room: str | None) -> bool:
        """A bathroom door opened again within `door_debounce_s` is the same passage."""
        if reading.stream != Stream.CONTACT or not reading.fields.get("open", False):
            return False
        if not self.ctx.is_bathroom(room) or not self.ctx.is_room_door(reading.device_id):
            return False
        last = self.state.door_passage.get(reading.device_id)
        debounce = self._settings(self.ctx.reading_resident(reading)).door_debounce_s
        if last is not None and reading.ts - last <= debounce:
            return True
        writable(self.state, "door_passage")[reading.device_id] = reading.ts
        return False

    def _locate(
        self, key: str, reading: Reading, room: str | None, moved: bool
    ) -> list[Transition]:
        s = self._settings(key or None)
        if not s.enabled:
            return []
        stay = self.state.stays.get(key)
        in_bathroom = self.ctx.is_bathroom(room)
        if reading.stream == Stream.PRESENCE:
            present = bool(reading.fields.get("present", False))
            if not in_bathroom:
                return []
            if not present:
                return self._leave(key, reading, EvidenceCode.BATHROOM_EMPTY)
            entering = stay is None
        elif in_bathroom and not self.ctx.is_outer_door(reading.device_id):
            # Only the room's own door is a passage; a cabinet or shower cabin opening or
            # shutting is someone in the room.
            room_door = reading.stream == Stream.CONTACT and self.ctx.is_room_door(
                reading.device_id
            )
            door_opening = room_door and bool(reading.fields.get("open", False))
            door_closing = room_door and not door_opening
            if stay is not None and stay.room_id == room and door_opening:
                out = self._leave(key, reading, EvidenceCode.BATHROOM_DOOR_LEFT)
                writable(self.state, "door_exit")[key] = _DoorExit(room_id=room, ts=reading.ts)
                return out
            if stay is not None and stay.room_id == room and stay.transit and not door_closing:
                self._confirm(stay, s)  # a flush in that room: the person is in it
            if (
                stay is not None
                and stay.room_id == room
                and stay.unheralded
                and moved
                and reading.device_id != stay.device_id
            ):
                self._confirm(stay, s)  # a second sensor of the room: a person, not a sensor
            elif (
                stay is not None
                and stay.room_id == room
                and stay.unheralded
                and moved
                and reading.device_id == stay.device_id
            ):
                stay.last_fired = reading.ts  # the same doubtful evidence, renewed
            refill = (
                reading.stream == Stream.FLUSH
                and key in self.state.left_at
                and reading.ts - self.state.left_at[key] <= s.flush_after_exit_s
            )
            entering = stay is None and not door_closing and not refill
            if stay is not None and stay.room_id != room:
                out = self._leave(key, reading, EvidenceCode.OTHER_BATHROOM)
                return out + self._enter(key, reading, room, s)
        else:
            if moved:
                self.state.door_exit.pop(key, None)  # seen elsewhere: no longer in transit
                # Someone up and about elsewhere may be on the way here; someone who has
                # just sat or lain down elsewhere is not.
                settled = reading.stream == Stream.OCCUPANCY and bool(
                    reading.fields.get("occupied", False)
                )
                self.state.last_elsewhere = None if settled else reading.ts
            if stay is None or not moved:
                return []
            return self._leave(key, reading, EvidenceCode.MOVEMENT_OUTSIDE_BATHROOM)
        if (
            entering
            and reading.stream != Stream.PRESENCE
            and self.picture.everyone_placed(room, reading.ts)
        ):
            return []  # every resident is on a bed or seat elsewhere: not a person walking in
        if entering and room is not None:
            transit = self._in_transit(key, reading, room, s)
            return self._enter(key, reading, room, s, transit=transit)
        return []

    def _confirm(self, stay: _Stay, s: BathroomSettings) -> None:
        """Activity inside the room ends the doubt of a transit or of a lone sensor: the
        usual limit applies."""
        stay.transit = False
        stay.unheralded = False
        night = self.ctx.in_window(stay.since, s.night_start, s.night_end)
        stay.limit_s = (s.night_minutes if night else s.day_minutes) * 60

    def _in_transit(self, key: str, reading: Reading, room: str, s: BathroomSettings) -> bool:
        """A door-only bathroom's door opened within `door_transit_s` of leaving another
        bathroom by its door, nothing seen in between: maybe the way out, not a visit."""
        last = self.state.door_exit.pop(key, None)
        opening = (
            reading.stream == Stream.CONTACT
            and self.ctx.is_room_door(reading.device_id)
            and bool(reading.fields.get("open", False))
        )
        return (
            last is not None
            and opening
            and last.room_id != room
            and reading.ts - last.ts <= s.door_transit_s
            and self._door_only(room)
        )

    def _enter(
        self,
        key: str,
        reading: Reading,
        room: str | None,
        s: BathroomSettings,
        *,
        transit: bool = False,
    ) -> list[Transition]:
        if room is None:
            return []
        door_only = self._door_only(room)
        last = self.state.last_elsewhere
        # A door-only room keeps its own doubts (an open door is not timed).
        unheralded = (
            not door_only
            and reading.stream != Stream.PRESENCE
            and (last is None or reading.ts - last > s.unheralded_s)
        )
        # In transit the person may be on the way out, and a sensor firing with nobody seen
        # coming may be the sensor alone: not the night limit's certainty.
        doubtful = transit or unheralded
        night = not doubtful and self.ctx.in_window(reading.ts, s.night_start, s.night_end)
        limit = (s.night_minutes if night else s.day_minutes) * 60
        self.state.stays.open(
            key,
            _Stay(
                room_id=room,
                since=reading.ts,
                evidence=EvidenceData.seen(
                    reading, seen(EvidenceCode.BATHROOM_ACTIVITY), room_id=room
                ),
                device_id=reading.device_id,
                limit_s=limit,
                door_only=door_only,
                transit=transit,
                unheralded=unheralded,
                # Door-only: timed once the door is shut behind the person (`_track_door`); a stay
                # begun without the door (a flush) contradicts a shut door and waits likewise.
                closed_at=None,
            ),
        )
        return []

    def _due(self, key: str, stay: _Stay) -> float | None:
        if stay.raised:
            return None
        if not stay.door_only:
            if stay.unheralded and stay.last_fired is not None:
                # A lone sensor firing again is not a person stuck for longer: what would
                # show one lying there is its silence. Raised anyway if it never stops.
                cap = max(stay.limit_s, self._settings(key or None).unheralded_max_minutes * 60)
                return min(stay.last_fired + stay.limit_s, stay.since + cap)
            return stay.since + stay.limit_s
        if stay.closed_at is None:
            return None  # door open: the person may have left unseen
        same_passage = stay.closed_at - stay.since <= self._settings(key or None).door_debounce_s
        return (stay.since if same_passage else stay.closed_at) + stay.limit_s

    def _leave(self, key: str, reading: Reading, why: EvidenceCode) -> list[Transition]:
        stay = self.state.stays.close(key)
        if stay is not None:
            writable(self.state, "left_at")[key] = reading.ts
        if stay is None or not stay.raised:
            return []
        return [
            self.ctx.transition(
                TransitionAction.CLEAR,
                AlertKind.BATHROOM_TOO_LONG,
                reading.ts,
                resident_id=key or None,
                room_id=stay.room_id,
                device_id=reading.device_id,
                evidence=evidence(stay.evidence, EvidenceData.seen(reading, seen(why))),
                details={"minutes_in_bathroom": stay.minutes_at(reading.ts)},
            )
        ]

    def compute_due(self) -> float | None:
        dues = [d for k, s in self.state.stays.items() if (d := self._due(k, s)) is not None]
        return min(dues) if dues else None

    def fire(self, due: float) -> list[Transition]:
        out: list[Transition] = []
        for key in self.state.stays.sorted_keys():
            stay = self.state.stays.get(key)
            if stay is None or self._due(key, stay) != due:
                continue
            out.append(
                self.ctx.transition(
                    stay.mark_raised(),
                    AlertKind.BATHROOM_TOO_LONG,
                    due,
                    resident_id=key or None,
                    room_id=stay.room_id,
                    device_id=stay.device_id,
                    evidence=evidence(stay.evidence),
                    details={
                        "minutes_in_bathroom": stay.minutes_at(due),
                        "limit_minutes": round(stay.limit_s / 60, 1),
                        "entered_at": self.ctx.local(stay.since).strftime("%H:%M"),
                        "just_left_another_bathroom": stay.transit,
                    },
                )
            )
        return out
