"""No activity: no movement anywhere at home for longer than the resident's usual gap.

The limit depends on the room of the last movement and the local hour at which the
quiet began: the longest gap the resident showed starting around that hour after
movement in that room in recent weeks (once `room_min_samples` day-hours are known;
before, after movement in any room) × `margin`, bounded to [`min_hours`,
`max_hours`]; `default_hours` (3 h) until `learn_days` days of data, and for hours
with fewer than `min_samples` day-hours of data.
Not judged while the resident is away (outer door, then silence) or asleep: in bed
by the bed sensor or, for a resident without one (`presume_asleep`), last seen in a
bedroom or bathroom (night visits end in bed) with the quiet beginning or due in
the night window, or before getting up that day (movement outside bedroom and
bathroom after `not_up.day_start`). `bathroom_too_long` watches the bathroom, and
`not_up` the morning after; a quiet that began elsewhere is always judged.
Stillness on a pressed seat mat (`occupancy.py`: chair, armchair, couch) is judged
against at least `seated_hours` (8 h) from the sitting down or the last movement,
whichever is later: a 3-6 h evening in front of the TV is not a long lie, a person
slumped in the chair all day and night still is. In bed is the bed mats' (a mat
emptied with nothing moving since is still in bed: mats lose sleepers).
Leaving is read from the resident picture's `left_home_since`: besides a confirmed
absence, a passage out whose only indoor movement was the door's own room's sensor
firing between the door events (the hall sensor seeing her go through) followed by
silence. No other rule reads her out then (`not_returned` keeps the shared absence,
which saw her inside), so such a quiet is still raised, at `not_returned.max_hours`
(12 h) from the last movement: a fall in the hall just after shutting the front door
is caught as late as in a home without a hall sensor, not never.
Gaps that raised an alert, began asleep or contained an absence are not learned.
In a home of several residents the household is judged as one (`""`): its room sensors
cannot tell who moved, and every resident would be raised on the same evidence; it is
asleep when every resident is in bed (all with bed mats), else as presumed above; a
resident whose own bed has been empty for 20 h sleeps elsewhere and is not waited for
(`resident_state.BED_UNUSED_S`).
In an institution each resident is judged from their own room's sensors and their own
devices (bed, worn), never from a corridor or another resident's room; bed-bound
residents and residents of a shared room are not judged (`SiteContext.judges_activity`).
"""

from __future__ import annotations

from pydantic import Field

from detectors.baseline import GapBaseline
from detectors.no_entries import Entries, no_entries
from detectors.occupancy import WATCHED_STREAMS
from detectors.rule import EvidenceData, Rule, RuleState, evidence, rule_state
from detectors.settings import (
    InactivitySettings,
    NotReturnedSettings,
    NotUpSettings,
    minutes_of_day,
)
from eldercare.domain import AlertKind, Reading, Transition, TransitionAction
from eldercare.evidence import EvidenceCode, seen


@rule_state
class _Watch(RuleState):
    last_move: float
    last_room: str | None
    last_evidence: EvidenceData
    exclude_gap: bool = False  # do not learn the current gap
    raised_at: float | None = None
    limit_s: float = 0.0  # the limit the alert was raised with


@rule_state
class InactivityState(RuleState):
    # unused (occupancy); old snapshots
    in_bed: Entries[str, bool] = Field(default_factory=no_entries)
    up_day: dict[str, str] = Field(default_factory=dict)  # resident → last local day got up
    watches: dict[str, _Watch] = Field(default_factory=dict)  # resident id ("" = site)
    baselines: dict[str, GapBaseline] = Field(default_factory=dict)
    # "resident|room" → gaps begun after movement in that room (her normal for the room)
    room_baselines: dict[str, GapBaseline] = Field(default_factory=dict)


class InactivityRule(Rule[InactivityState]):
    __slots__ = ()

    name = "inactivity"
    kinds = (AlertKind.INACTIVITY,)
    state_model = InactivityState
    streams = WATCHED_STREAMS
    reads_picture = True

    def _settings(self, resident: str) -> InactivitySettings:
        return self.ctx.settings(self.name, InactivitySettings, resident or None)

    def _residents(self, reading: Reading) -> tuple[str, ...]:
        if not self.ctx.resident_ids or self.ctx.is_shared_home:
            return ("",)  # the site, or the household of a shared home
        return tuple(r for r in self.ctx.activity_residents(reading) if self.ctx.judges_activity(r))

    # --- limits ---------------------------------------------------------------------------

    def limit_s(self, resident: str, start: float, room: str | None = None) -> tuple[float, bool]:
        """(limit in seconds for a quiet beginning at `start` after movement in `room`,
        learned or default): her normal for that room and hour once it has
        `room_min_samples` day-hours of data, else for the hour in any room."""
        s = self._settings(resident)
        baseline = self.state.baselines.get(resident)
        if baseline is None or not baseline.ready(s.learn_days):
            return s.default_hours * 3600, False
        hour = self.ctx.local(start).hour
        in_room = self.state.room_baselines.get(f"{resident}|{room}") if room else None
        usual = in_room.usual_gap_s(hour, s.room_min_samples) if in_room is not None else None
        if usual is None:
            usual = baseline.usual_gap_s(hour, s.min_samples)
        if usual is None:
            return s.default_hours * 3600, False
        hours = usual * s.margin / 3600
        return min(max(hours, s.min_hours), s.max_hours) * 3600, True

    def _asleep(self, resident: str, w: _Watch, due: float) -> bool:
        beds = self.ctx.residents_with_bed_sensor
        if resident == "" and self.ctx.is_shared_home and beds >= set(self.ctx.resident_ids):
            # the household asleep: everyone sleeping at home in bed (one up and quiet
            # is judged; one whose bed has been empty all day sleeps elsewhere)
            return self.picture.household_in_bed(due)
        if resident in beds:
            return self.picture.in_bed(resident)
        s = self._settings(resident)
        if not s.presume_asleep or not self._resting_room(w.last_room):
            return False
        if self.ctx.in_window(w.last_move, s.night_start, s.night_end):
            return True
        if self.ctx.in_window(due, s.night_start, s.night_end):
            return self.ctx.is_bedroom(w.last_room)  # an evening in the bathroom is judged
        return self.state.up_day.get(resident) != self.ctx.local_day(w.last_move)

    def _spent_away(self, w: _Watch, now: float) -> bool:
        """The quiet since `w` up to `now` is not to be learned from, or contained a
        confirmed absence, ended or not (a quiet spent away is not a usual gap at home)."""
        for ended in (self.picture.absence_ended(), self.picture.left_home_ended()):
            if ended is not None and ended[1] > w.last_move:
                return True
        return w.exclude_gap or self.picture.left_home_since(now) is not None

    def _resting_room(self, room: str | None) -> bool:
        return self.ctx.is_bedroom(room) or self.ctx.is_bathroom(room)

    def _due(self, resident: str, w: _Watch) -> float | None:
        if w.raised_at is not None or not self._settings(resident).enabled:
            return None
        due = w.last_move + self.limit_s(resident, w.last_move, w.last_room)[0]
        sat_down = self.picture.seated(due)
        if sat_down is not None:
            seated_s = self._settings(resident).seated_hours * 3600
            due = max(due, max(sat_down, w.last_move) + seated_s)
        if self.picture.is_away(due):
            return None  # out (or gone out by then): not a quiet at home
        if self._asleep(resident, w, due):
            return None
        left = self.picture.left_home_since(due)
        if left is not None:
            # Gone out through the door with only its own room's sensor firing on the way:
            # not a quiet at home, but `not_returned` does not know her out, so a fall in
            # the hall just after shutting the door is still raised, when `not_returned`
            # would raise an absence before learning (as in a home without a hall sensor).
            out_s = self.ctx.settings("not_returned", NotReturnedSettings, resident or None)
            return max(due, w.last_move + out_s.max_hours * 3600)
        return due

    # --- events ---------------------------------------------------------------------------

    def on_reading(self, reading: Reading) -> list[Transition]:
        if not self.picture.moved:
            return []
        out: list[Transition] = []
        room = self.ctx.room_of(reading)
        ev = EvidenceData.seen(reading, seen(EvidenceCode.MOVEMENT), room_id=room)
        for resident in self._residents(reading):
            out += self._moved(resident, reading.ts, room, ev)
        return out

    def _moved(
        self, resident: str, ts: float, room: str | None, ev: EvidenceData
    ) -> list[Transition]:
        out: list[Transition] = []
        w = self.state.watches.get(resident)
        if w is not None:
            gap = ts - w.last_move
            if w.raised_at is not None:
                out.append(
                    self.ctx.transition(
                        TransitionAction.CLEAR,
                        AlertKind.INACTIVITY,
                        ts,
                        resident_id=resident or None,
                        room_id=room,
                        device_id=ev.device_id,
                        evidence=evidence(w.last_evidence, ev),
                        details={"minutes_inactive": round(gap / 60, 1)},
                    )
                )
            elif not self._spent_away(w, ts) and not self._asleep(resident, w, ts) and gap > 0:
                day = self.ctx.local_day(w.last_move)
                hour = self.ctx.local(w.last_move).hour
                self.state.baselines.setdefault(resident, GapBaseline()).learn(day, hour, gap)
                if w.last_room is not None:
                    key = f"{resident}|{w.last_room}"
                    self.state.room_baselines.setdefault(key, GapBaseline()).learn(day, hour, gap)
        self.state.watches[resident] = _Watch(last_move=ts, last_room=room, last_evidence=ev)
        day_start = self.ctx.settings("not_up", NotUpSettings, resident or None).day_start
        if (
            room is not None
            and not self._resting_room(room)
            and self.ctx.minute_of_day(ts) >= minutes_of_day(day_start)
        ):
            self.state.up_day[resident] = self.ctx.local_day(ts)
        return out

    # --- timers ---------------------------------------------------------------------------

    def compute_due(self) -> float | None:
        dues = [d for r, w in self.state.watches.items() if (d := self._due(r, w)) is not None]
        return min(dues) if dues else None

    def fire(self, due: float) -> list[Transition]:
        out: list[Transition] = []
        for resident in sorted(self.state.watches):
            w = self.state.watches[resident]
            if self._due(resident, w) != due:
                continue
            limit, learned = self.limit_s(resident, w.last_move, w.last_room)
            w.raised_at = due
            w.limit_s = limit
            w.exclude_gap = True
            out.append(
                self.ctx.transition(
                    TransitionAction.RAISE,
                    AlertKind.INACTIVITY,
                    due,
                    resident_id=resident or None,
                    room_id=w.last_room,
                    device_id=w.last_evidence.device_id,
                    evidence=evidence(w.last_evidence),
                    details={
                        "minutes_inactive": round((due - w.last_move) / 60, 1),
                        "threshold_minutes": round(limit / 60, 1),
                        "learned": learned,
                        "last_room": w.last_room,
                        "last_active_at": self.ctx.local(w.last_move).strftime("%H:%M"),
                    },
                )
            )
        return out
