"""Not up as usual: by the deadline the resident, at home, has not got up.

Getting up is movement in a room that is not a bedroom, bathroom or toilet (a
night visit to the toilet is not getting up) at or after `day_start` local time.
The deadline is the learned usual wake time (upper quartile of recent days) +
`margin_hours`, at most `latest_deadline`; `default_deadline` (10:00) before
`learn_days` days of wake times, or her latest wake time so far + `margin_hours` if that
is later (at most `latest_deadline`): a default she has already slept past and got up
on her own is wrong for her (the 2008 flat, up at 08:00-09:48 on its first mornings,
alerted at 10:00 on 29 Feb, up at 10:20). Every morning she is seen getting up is learned,
including mornings that raised (she got up at 11:00: that is a wake time; an alert
is not a verdict on the morning); mornings that began away from home are not.
A night begun late ends late: home from an absence after `night_start` (22:00) and
before `day_start`, that morning's deadline is later by as much as she came home after
`night_start`, at most `latest_deadline` (ARAS house B, home at 03:17 and up at 11:29,
and van Kasteren house B, home at 03:33 and up at 11:38, were raised at 09:36 and
10:00). A return whose going out was not seen counts the same (van Kasteren house B,
26 Jul: out unseen after 21:54, home through the front door at 03:30, in bed until
11:38, raised at 10:00): the outer door opening after `absence.away_after_minutes` in
which nothing moved in the home and no mat or radar reported anyone, followed by
movement inside within as long, is someone coming home, not someone going out. The
cost is the same as for a seen return: someone who lay still that long without a
mat, then opened the front door from inside and walked back in at night, is judged
that morning against the later deadline (at most `latest_deadline`); not in a home with
a resident flagged `dementia`, where that door at night may be her wandering out and
back. Clears when the resident gets up. A home of several residents is judged as one
household (its room sensors cannot tell who got up), as `inactivity` does.
In an institution getting up is leaving one's own bed (the bed sensor reports it empty
after `day_start`); residents without a bed sensor, bed-bound residents and residents
of a shared room are not judged.
"""

from __future__ import annotations

from datetime import date, timedelta

from pydantic import Field

from detectors.baseline import WakeBaseline
from detectors.occupancy import WATCHED_STREAMS
from detectors.rule import EvidenceData, Rule, RuleState, evidence, rule_state
from detectors.settings import AbsenceSettings, NotUpSettings, minutes_of_day
from detectors.site_context import DEMENTIA
from eldercare.domain import AlertKind, Reading, Stream, Transition, TransitionAction
from eldercare.evidence import EvidenceCode, seen


@rule_state
class _Morning(RuleState):
    check_day: str  # the local day whose deadline is next
    up_day: str | None = None
    raised_day: str | None = None
    last_move: EvidenceData | None = None
    home_since: float | None = None
    wake: WakeBaseline = Field(default_factory=WakeBaseline)


@rule_state
class NotUpState(RuleState):
    mornings: dict[str, _Morning] = Field(default_factory=dict)  # resident id ("" = site)
    last_moved: float | None = None  # the household's last movement (any room, the door)
    quiet_door: float | None = None  # the outer door opened after a quiet home: coming in?
    unseen_return: float | None = None  # the last return whose going out was not seen


def _next_day(day: str) -> str:
    return (date.fromisoformat(day) + timedelta(days=1)).isoformat()


class NotUpRule(Rule[NotUpState]):
    __slots__ = ()

    name = "not_up"
    kinds = (AlertKind.NOT_UP,)
    state_model = NotUpState
    streams = WATCHED_STREAMS
    reads_picture = True

    def _settings(self, resident: str) -> NotUpSettings:
        return self.ctx.settings(self.name, NotUpSettings, resident or None)

    def deadline(self, resident: str, day: str) -> tuple[float, bool]:
        """(epoch of the day's deadline, learned or default)."""
        s = self._settings(resident)
        m = self.state.mornings.get(resident)
        learned = m is not None and m.wake.ready(s.learn_days)
        minute = float(minutes_of_day(s.default_deadline))
        latest = float(minutes_of_day(s.latest_deadline))
        if learned and m is not None:
            usual = m.wake.usual_wake_minute()
            assert usual is not None
            minute = min(usual + s.margin_hours * 60, latest)
        elif m is not None and m.wake.wake_minutes:  # warm-up: never before what she did
            so_far = max(m.wake.wake_minutes.values()) + s.margin_hours * 60
            minute = max(minute, min(so_far, latest))
        late = self._home_late_by_minutes(day, s)
        if late > 0:
            minute = max(minute, min(minute + late, latest))
        return self.ctx.at_local(day, minute), learned

    def _home_late_by_minutes(self, day: str, s: NotUpSettings) -> float:
        """How long after `night_start` the household came home from its last absence, if
        that return fell in the night before `day`'s `day_start`; else 0."""
        ended = self.picture.absence_ended()
        unseen = self.state.unseen_return
        if any(self.ctx.has_flag(r, DEMENTIA) for r in self.ctx.resident_ids):
            unseen = None  # the door at night may be her wandering out and back, not a return
        backs = [b for b in (ended[1] if ended else None, unseen) if b]
        if not backs:
            return 0.0
        back = max(backs)
        start = minutes_of_day(s.night_start)
        eve = (date.fromisoformat(day) - timedelta(days=1)).isoformat()
        # A night start after midnight is on the morning's own date.
        night = self.ctx.at_local(day if start < minutes_of_day(s.day_start) else eve, start)
        if not night <= back < self.ctx.at_local(day, minutes_of_day(s.day_start)):
            return 0.0
        return (back - night) / 60

    def _follow_unseen_return(self, reading: Reading) -> None:
        """The outer door after a quiet home (nothing moved, no mat or radar reporting
        anyone) for `away_after_minutes`, then movement inside within as long: home from
        an absence whose going out was not seen."""
        quiet_s = self.ctx.settings("absence", AbsenceSettings).away_after_minutes * 60
        last, self.state.last_moved = self.state.last_moved, reading.ts
        if self.ctx.is_outer_door(reading.device_id):
            quiet = last is None or reading.ts - last >= quiet_s
            if quiet and not self.picture.someone_inside(reading.ts):
                self.state.quiet_door = reading.ts
            return
        door, self.state.quiet_door = self.state.quiet_door, None
        if door is not None and reading.ts - door <= quiet_s:
            self.state.unseen_return = door

    def _judged(self, resident: str) -> bool:
        """In an institution getting up is leaving one's own bed: judged only with a bed
        sensor, and never for bed-bound residents or those of a shared room."""
        if not self.ctx.judges_activity(resident or None):
            return False
        return not self.ctx.is_institution or resident in self.ctx.residents_with_bed_sensor

    def _keys(self) -> tuple[str, ...]:
        """Whose mornings are judged: each resident's, or the household's (`""`) in a home
        of several, whose room sensors cannot tell who got up (one alert, not one per
        resident on the same evidence: ARAS house B raised both residents at 09:36)."""
        if not self.ctx.resident_ids or self.ctx.is_shared_home:
            return ("",)
        return self.ctx.resident_ids

    def _residents(self, reading: Reading) -> tuple[str, ...]:
        if not self.ctx.resident_ids or self.ctx.is_shared_home:
            return ("",)
        return tuple(r for r in self.ctx.activity_residents(reading) if self._judged(r))

    def _left_own_bed(self, reading: Reading, resident: str) -> bool:
        return (
            self.ctx.is_institution
            and reading.stream == Stream.OCCUPANCY
            and self.ctx.bed_resident(reading.device_id) == resident
            and not reading.fields.get("occupied", False)
        )

    def on_reading(self, reading: Reading) -> list[Transition]:
        moved = self.picture.moved  # the shared resident picture took this reading first
        returned = self.picture.change == "returned"
        keys = self._keys()
        for old in [k for k in self.state.mornings if k not in keys]:
            del self.state.mornings[old]  # judged per household now, or a resident gone
        for resident in keys:
            if not self._judged(resident):
                continue
            if resident not in self.state.mornings:
                day = self.ctx.local_day(reading.ts)
                m = _Morning(check_day=day, home_since=reading.ts)
                if self.deadline(resident, day)[0] <= reading.ts:
                    m.check_day = _next_day(day)
                self.state.mornings[resident] = m
            if returned:
                self.state.mornings[resident].home_since = reading.ts
        if not moved:
            return []
        self._follow_unseen_return(reading)
        room = self.ctx.room_of(reading)
        out: list[Transition] = []
        for resident in self._residents(reading):
            m = self.state.mornings[resident]
            ev = EvidenceData.seen(reading, seen(EvidenceCode.MOVEMENT), room_id=room)
            m.last_move = ev
            s = self._settings(resident)
            resting = room is None or self.ctx.is_bedroom(room) or self.ctx.is_bathroom(room)
            if resting and not self._left_own_bed(reading, resident):
                continue
            if self.ctx.minute_of_day(reading.ts) < minutes_of_day(s.day_start):
                continue
            day = self.ctx.local_day(reading.ts)
            if m.up_day == day:
                continue
            m.up_day = day
            day_start = self.ctx.at_local(day, minutes_of_day(s.day_start))
            if m.raised_day is not None:
                deadline = self.deadline(resident, m.raised_day)[0]
                if m.raised_day == day and m.home_since is not None and m.home_since <= day_start:
                    # Alerted and then up: still her wake time that morning. Never learning
                    # alerted mornings kept a late riser at the 10:00 default for ever.
                    m.wake.learn(day, self.ctx.minute_of_day(reading.ts))
                m.raised_day = None
                out.append(
                    self.ctx.transition(
                        TransitionAction.CLEAR,
                        AlertKind.NOT_UP,
                        reading.ts,
                        resident_id=resident or None,
                        room_id=room,
                        device_id=reading.device_id,
                        evidence=evidence(ev),
                        details={"minutes_late": round((reading.ts - deadline) / 60, 1)},
                    )
                )
            elif m.home_since is not None and m.home_since <= day_start and not returned:
                m.wake.learn(day, self.ctx.minute_of_day(reading.ts))
        return out

    def compute_due(self) -> float | None:
        dues = [
            self.deadline(r, m.check_day)[0]
            for r, m in self.state.mornings.items()
            if self._settings(r).enabled
        ]
        return min(dues) if dues else None

    def fire(self, due: float) -> list[Transition]:
        out: list[Transition] = []
        for resident in sorted(self.state.mornings):
            if not self._settings(resident).enabled:
                continue
            m = self.state.mornings[resident]
            deadline, learned = self.deadline(resident, m.check_day)
            if deadline != due:
                continue
            day = m.check_day
            m.check_day = _next_day(day)
            if m.up_day == day or m.raised_day is not None:
                continue  # up already, or still open from an earlier morning
            if self.picture.is_away(due):
                continue
            m.raised_day = day
            last = m.last_move
            out.append(
                self.ctx.transition(
                    TransitionAction.RAISE,
                    AlertKind.NOT_UP,
                    due,
                    resident_id=resident or None,
                    room_id=last.room_id if last else None,
                    device_id=last.device_id if last else None,
                    evidence=evidence(last),
                    details={
                        "deadline": self.ctx.local(due).strftime("%H:%M"),
                        "learned": learned,
                        "last_active_at": self.ctx.local(last.ts).strftime("%Y-%m-%d %H:%M")
                        if last
                        else None,
                    },
                )
            )
        return out
