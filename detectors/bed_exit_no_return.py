"""Out of bed at night: the bed sensor went empty during the night window and the
resident has not come back for longer than `minutes` (30).

The alert is raised when the limit passes inside the night window (getting up at
05:50 for the day is not a night exit); it is updated every further `minutes`
with the time out of bed, and clears when the bed is occupied again.

The bed is empty when every mat of the resident is (a resident with a left and a
right mat rolling from one to the other has not left it). Being out of bed needs
movement seen after the mats emptied (`occupancy.py`): mats lose a sleeper lying
between or across them, and in a home with PIRs or radars, with nothing moving since
the mats emptied, an empty bed is judged against the longer `unconfirmed_minutes`
(60) instead (a home whose only sensor of a person up is the bed keeps `minutes`),
and only if the mat had held her at least a minute before it emptied (a 1-2 s press is
a sleeper's limb on the mat's edge, `occupancy.settled_before_empty`): otherwise she
is out of bed only once movement is seen outside the bedroom, and from then (the
emptying of a mat pressed for a moment dates nothing); and then, seen back in the bedroom
with nothing elsewhere since, she is back (the mat told nothing of her leaving it, and
says nothing of her return either) until she is seen elsewhere again, which dates the
exit anew (van Kasteren house B, 25 Jul: home at 02:44, in bed at 02:55 with 1-2 s
presses only, a kitchen drawer contact chattering on its own while the bedroom PIR saw
him for 35 min; raised at 03:29).
In a home of two, each with her own mats, both out of bed within `minutes` of each
other is one night exit: the first raised stands for both, the other's is folded into it
(`also_out_of_bed` in its updates), not raised a second time on the same night. It is
only held, not dropped: if the first goes back to bed while the other is still out, the
other's is raised then.

Not while the resident is out, nor after a front-door passage out since leaving the
bed: that night exit is `night_door_exit`'s alert, one alert for one exit. Nor once she
has come back from an absence begun after she left the bed: that exit was an outing
(`night_door_exit` and `not_returned` judged it), not a bed left with no return. Before,
the return itself made the exit due again, dated from the bed: ARAS house B, both
residents out of bed and out of the door at 00:00, home at 01:05, and two
`bed_exit_no_return` stamped 00:30 were raised as they came in.
"""

from __future__ import annotations

from pydantic import Field

from detectors import occupancy
from detectors.episode import Episode, Episodes
from detectors.occupancy import WATCHED_STREAMS
from detectors.rule import EvidenceData, Rule, RuleState, evidence, rule_state
from detectors.settings import BedExitSettings
from eldercare.domain import AlertKind, Reading, Stream, Transition, TransitionAction
from eldercare.evidence import EvidenceCode, seen


@rule_state
class _Bed(Episode):
    """The bed's last change (`since`, `evidence`); an episode out of bed when not occupied."""

    occupied: bool
    device_id: str
    room_id: str | None
    reported_s: float = 0.0  # seconds out of bed at the last raise/update
    # Movement since the bed emptied: the first outside her bed's rooms since she was last
    # seen in them, and whether she has been seen back in them (read for a mat pressed
    # only for a moment, `occupancy.settled_before_empty`).
    elsewhere_since: float | None = None
    back_in_bedroom: bool = False
    folded_into: str | None = None  # the resident whose raised exit stands for this one
    due_from: float | None = None  # not due before this (unfolded when that one ended)
    # No alert this time: the limit passed outside the night window, or she went out and
    # came back (an outing, not a bed left with no return).
    skipped: bool = False


@rule_state
class BedExitState(RuleState):
    beds: Episodes[_Bed] = Field(default_factory=Episodes[_Bed])  # resident id → bed state


class BedExitRule(Rule[BedExitState]):
    __slots__ = ()

    name = "bed_exit_no_return"
    kinds = (AlertKind.BED_EXIT_NO_RETURN,)
    state_model = BedExitState
    streams = WATCHED_STREAMS
    reads_picture = True

    def _settings(self, resident: str) -> BedExitSettings:
        return self.ctx.settings(self.name, BedExitSettings, resident)

    def on_reading(self, reading: Reading) -> list[Transition]:
        self._end_exits_that_went_out()
        if self.picture.moved:
            self._track_where(reading)
        if reading.stream != Stream.OCCUPANCY:
            return []
        resident = self.ctx.bed_resident(reading.device_id)
        if resident is None or not self._settings(resident).enabled:
            return []
        if self.ctx.is_bed_bound(resident):  # out of bed only with carers; falls are the radar's
            return []
        occupied = self.picture.in_bed_by_mat(resident)
        bed = self.state.beds.get(resident)
        if bed is not None and bed.occupied == occupied:
            return []  # a repeated report of the same state
        room = self.ctx.room_of(reading)
        ev = EvidenceData.seen(
            reading,
            seen(EvidenceCode.IN_BED if occupied else EvidenceCode.BED_EMPTY),
            room_id=room,
        )
        if occupied:
            self._unfold(resident, reading.ts)
        self.state.beds.open(
            resident,
            _Bed(
                occupied=occupied,
                since=reading.ts,
                evidence=ev,
                device_id=reading.device_id,
                room_id=room,
            ),
        )
        if bed is None or not bed.raised:
            return []
        return [
            self.ctx.transition(
                TransitionAction.CLEAR,
                AlertKind.BED_EXIT_NO_RETURN,
                reading.ts,
                resident_id=resident,
                room_id=room,
                device_id=reading.device_id,
                evidence=evidence(bed.evidence, ev),
                details={
                    "minutes_out_of_bed": bed.minutes_at(reading.ts),
                    "left_bed_at": self.ctx.local(bed.since).strftime("%H:%M"),
                },
            )
        ]

    def _end_exits_that_went_out(self) -> None:
        """The reading being applied ended an absence begun since a bed was left: that
        exit was an outing, not this rule's (until the bed is occupied again)."""
        ended = self.picture.ended_absence
        if ended is None:
            return
        for _, bed in self.state.beds.items():
            if not bed.occupied and not bed.raised and ended[0] >= bed.since:
                bed.skipped = True

    def _track_where(self, reading: Reading) -> None:
        room = self.ctx.room_of(reading)
        for resident, bed in self.state.beds.items():
            if bed.occupied or bed.raised:
                continue
            if room is not None and room in self.ctx.bed_rooms.get(resident, ()):
                bed.elsewhere_since = None
                bed.back_in_bedroom = True
            elif bed.elsewhere_since is None:
                bed.elsewhere_since = reading.ts

    def _unfold(self, resident: str, now: float) -> None:
        """`resident` is back in bed: exits folded into hers are judged on their own again,
        from now."""
        for _, bed in self.state.beds.items():
            if bed.folded_into == resident:
                bed.folded_into = None
                bed.due_from = now

    def _raised_with(self, resident: str, bed: _Bed, minutes: float) -> str | None:
        """In a shared home, the resident whose raised exit began within `minutes` of this
        one (the same night exit), if any."""
        if not self.ctx.is_shared_home:
            return None
        for other, ob in self.state.beds.items():
            together = abs(ob.since - bed.since) <= minutes * 60
            if other != resident and ob.raised and not ob.occupied and together:
                return other
        return None

    def _gone_out(self, bed: _Bed) -> bool:
        """Out, or through the front door since leaving the bed (`night_door_exit`'s)."""
        return self.picture.gone_out_since(bed.since)

    def _due(self, resident: str, bed: _Bed) -> float | None:
        due = self._due_of_exit(resident, bed)
        if due is not None and bed.due_from is not None:
            return max(due, bed.due_from)
        return due

    def _due_of_exit(self, resident: str, bed: _Bed) -> float | None:
        if bed.occupied or bed.skipped or bed.folded_into is not None:
            return None
        s = self._settings(resident)
        if bed.raised:
            return bed.since + bed.reported_s + s.minutes * 60
        if self._gone_out(bed):
            return None
        left = self.picture.left_bed_at(resident)
        if left is not None and not self.picture.settled_before_empty(resident):
            # A mat pressed for a moment: out since seen elsewhere, not once back in the
            # bedroom (episodes from before these fields were kept: as the picture says).
            if bed.elsewhere_since is not None:
                left = bed.elsewhere_since
            elif bed.back_in_bedroom:
                return None
        if left is not None:
            return max(bed.since, left) + s.minutes * 60
        if not occupancy.sees_people_up(self.ctx):
            return bed.since + s.minutes * 60  # the bed is the only sensor of her up
        if not self.picture.settled_before_empty(resident):
            return None  # a mat pressed for a moment: she is up only once seen elsewhere
        return bed.since + max(s.minutes, s.unconfirmed_minutes) * 60

    def compute_due(self) -> float | None:
        dues = [d for r, b in self.state.beds.items() if (d := self._due(r, b)) is not None]
        return min(dues) if dues else None

    def fire(self, due: float) -> list[Transition]:
        out: list[Transition] = []
        for resident in self.state.beds.sorted_keys():
            bed = self.state.beds.get(resident)
            if bed is None or self._due(resident, bed) != due:
                continue
            s = self._settings(resident)
            minutes = bed.minutes_at(due)
            if not bed.raised and not self.ctx.in_window(due, s.night_start, s.night_end):
                bed.skipped = True
                continue
            first = None if bed.raised else self._raised_with(resident, bed, s.minutes)
            if first is not None:
                bed.folded_into = first  # one night exit, one alert
                continue
            action = bed.mark_raised()
            bed.reported_s = due - bed.since
            folded = sorted(r for r, b in self.state.beds.items() if b.folded_into == resident)
            out.append(
                self.ctx.transition(
                    action,
                    AlertKind.BED_EXIT_NO_RETURN,
                    due,
                    resident_id=resident,
                    room_id=bed.room_id,
                    device_id=bed.device_id,
                    evidence=evidence(bed.evidence),
                    details={
                        "minutes_out_of_bed": minutes,
                        "left_bed_at": self.ctx.local(bed.since).strftime("%H:%M"),
                        **({"also_out_of_bed": folded} if folded else {}),
                    },
                )
            )
        return out
