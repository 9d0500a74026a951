"""Not back home: the resident left (outer door, then no indoor movement) and is still
away after the absence limit, or, having left before the night window, still away
by night. A departure inside the night window is `night_door_exit`'s business, and
only the absence limit applies to it. Clears when the resident is back.

"By night" is personal: someone who habitually comes home at 23:00 must not alarm
every evening, someone never out after 20:00 must alarm when still out at 22:30.
So the night deadline is the resident's usual latest return (`ReturnBaseline`: the
upper quartile of the latest return of each evening out) + `margin_minutes`,
bounded to [night_start, latest_night_deadline]. Only evenings out teach it (an
absence begun before the night window, still in progress at `evening_start`, 21:00,
and ending before night_end): how late a resident comes home when out in the evening
is not told by the afternoons she came home from the shops or from work, which would
otherwise pull the deadline back to night_start, nor by outings begun in the night
(`night_door_exit`'s; the night deadline never applies to them).

The absence limit is personal too: the resident's usual long absence
(`DurationBaseline`: upper quartile of each day's longest absence) × `duration_factor`,
within [max_hours, max_hours_cap] (12–24 h).

During the warm-up (before `learn_days` days of data and `min_evenings` evenings out,
or `min_absences` days with an absence) the defaults apply (night_start, max_hours),
except where she has already done more on her own: the night deadline is then never
before her latest evening return so far + `margin_minutes`, the absence limit never
below her longest absence so far × `duration_factor`, within the same ceilings. A
default she has already exceeded and come home from is not conservative, it is wrong
for her (ARAS house B, two young adults out 9-16 h every day: raised at the 12 h
default and at 22:00 three times in the first week, each time after days they had
come home later on their own). A real "not back" in the first week is still raised,
at the latest by the ceilings (03:00, 24 h).

Every return is learned, alerted or not (issue 16: baselines learn from what actually
happened, including days a rule fired and the resident came home on her own). Without
it a deadline that alerted could never move: a resident whose evenings out grow later
is alerted every evening, however many (ARAS house B in view). What bounds the
cost of learning from a real incident (found and brought home at 04:00) is the ceiling:
the night deadline never passes `latest_night_deadline` (03:00) and the absence limit
never passes `max_hours_cap` (24 h), whatever was learned.

A declared absence (`planned_absence_until`, a resident override in the registry:
"at my daughter's until Sunday 18:00", set by family or an operator) moves every
deadline of an absence begun before its end to that end + `margin_minutes`; it is not
learned from (declared, not habitual). One declared after the alert (the operator
called the daughter: "she is with me until Sunday") re-arms it: if the resident is
still away at the declared end + margin, it raises again.
"""

from __future__ import annotations

from pydantic import Field

from detectors.baseline import DurationBaseline, ReturnBaseline
from detectors.occupancy import WATCHED_STREAMS
from detectors.rule import EvidenceData, Rule, RuleState, evidence, rule_state
from detectors.settings import AbsenceSettings, NotReturnedSettings, minutes_of_day
from eldercare.domain import AlertKind, Reading, Transition, TransitionAction
from eldercare.evidence import EvidenceCode, seen


@rule_state
class NotReturnedState(RuleState):
    raised_for: float | None = None  # away_since of the absence that raised
    # It raised against a learned deadline. Not read since every return is learned;
    # kept so that snapshots holding it still restore.
    raised_learned: bool = False
    raised_at: float | None = None  # when it last raised (a later declaration re-arms it)
    returns: ReturnBaseline = Field(default_factory=ReturnBaseline)
    durations: DurationBaseline = Field(default_factory=DurationBaseline)


class NotReturnedRule(Rule[NotReturnedState]):
    __slots__ = ()

    name = "not_returned"
    kinds = (AlertKind.NOT_RETURNED,)
    state_model = NotReturnedState
    streams = WATCHED_STREAMS
    reads_picture = True

    @property
    def _resident(self) -> str | None:
        ids = self.ctx.resident_ids
        return ids[0] if len(ids) == 1 else None

    @property
    def _settings(self) -> NotReturnedSettings:
        return self.ctx.settings(self.name, NotReturnedSettings, self._resident)

    @property
    def _away_after_s(self) -> float:
        return self.ctx.settings("absence", AbsenceSettings).away_after_minutes * 60

    def on_reading(self, reading: Reading) -> list[Transition]:
        if self.state.returns.first_day is None:
            self.state.returns.observe_day(self.ctx.local_day(reading.ts))
        ended = self.picture.ended_absence  # the shared picture saw this reading end one
        if ended is None:
            return []
        since, door = ended
        raised = self.state.raised_for
        self.state.raised_for = None
        self.state.raised_at = None
        if since is not None and not self._planned_covers(since):
            if not self.ctx.in_window(since, self._settings.night_start, self._settings.night_end):
                self._learn_return(reading.ts)
            self.state.durations.learn(self.ctx.local_day(since), (reading.ts - since) / 3600)
        self.state.raised_learned = False
        if raised is None or since is None:
            return []
        return [
            self.ctx.transition(
                TransitionAction.CLEAR,
                AlertKind.NOT_RETURNED,
                reading.ts,
                resident_id=self._resident,
                room_id=self.ctx.room_of(reading),
                device_id=reading.device_id,
                evidence=evidence(door, EvidenceData.seen(reading, seen(EvidenceCode.BACK_HOME))),
                details={"hours_away": round((reading.ts - since) / 3600, 2)},
            )
        ]

    def _learn_return(self, ts: float) -> None:
        """An evening out's return (evening_start to night_end next morning) as minutes
        after the evening's local midnight. Returns earlier in the day say nothing about
        how late the resident stays out when out in the evening, so they are not learned."""
        s = self._settings
        start = minutes_of_day(s.evening_start)
        night = minutes_of_day(s.night_start)
        if 12 * 60 <= night < start:
            start = night  # an earlier night (override): an evening out begins with it
        for back in (0, 1):
            day = self.ctx.local_day(ts - back * 86400)
            minute = (ts - self.ctx.at_local(day, 0)) / 60
            if start <= minute <= 1440 + minutes_of_day(s.night_end):
                self.state.returns.learn(day, minute)
                return

    def _night_deadline(self, since: float) -> tuple[float, bool]:
        """(deadline, learned?) for an absence that began outside the night window."""
        s = self._settings
        default = self.ctx.next_local(since, s.night_start)
        day = self.ctx.local_day(since)
        returns = self.state.returns
        usual = (
            returns.usual_latest_minute(s.min_evenings)
            if returns.ready(day, s.learn_days)
            else None
        )
        learned = usual is not None
        if usual is None:  # warm-up: night_start, or her latest evening return so far
            usual = max(returns.latest.values(), default=None)
        if usual is None:
            return default, False
        earliest = minutes_of_day(s.night_start)
        latest = minutes_of_day(s.latest_night_deadline)
        if latest <= minutes_of_day(s.night_end) or latest < earliest:
            latest += 1440  # after midnight: the next morning of the evening
        minute = min(max(usual + s.margin_minutes, earliest), latest)
        # The evening is the one of `since` (an absence begun before night_end is in window).
        return max(self.ctx.at_local(day, minute), default), learned

    def _limit_hours(self, since: float) -> tuple[float, bool]:
        """(absence limit in hours, learned?): the resident's usual long absence ×
        duration_factor within [max_hours, max_hours_cap]; before learning, max_hours or
        her longest absence so far × duration_factor, within the same bounds."""
        s = self._settings
        durations = self.state.durations
        usual = (
            durations.usual_long_hours(s.min_absences)
            if self.state.returns.ready(self.ctx.local_day(since), s.learn_days)
            else None
        )
        learned = usual is not None
        if usual is None:  # warm-up: max_hours, or her longest absence so far
            usual = max(durations.longest.values(), default=None)
        if usual is None:
            return s.max_hours, False
        return min(
            max(s.max_hours, usual * s.duration_factor), max(s.max_hours_cap, s.max_hours)
        ), learned

    def _planned_end(self) -> float | None:
        """End of the declared absence (`planned_absence_until`), epoch seconds."""
        until = self._settings.planned_absence_until
        if until is None:
            return None
        day, _, hhmm = until.partition("T")
        return self.ctx.at_local(day, minutes_of_day(hhmm))

    def _planned_covers(self, since: float) -> bool:
        end = self._planned_end()
        return end is not None and since < end

    def _deadlines(self) -> list[tuple[float, bool]]:
        """(deadline, not to be learned from?) of the absence in progress: the absence
        limit and the night deadline, each learned (alerts then are not learned from) or
        a default (alerts then are: the default knows nothing of the person)."""
        since = self.picture.away_pending_since()  # confirmed, or once its silence runs out
        s = self._settings
        if since is None or not s.enabled:
            return []
        if self.state.raised_for is not None:
            # Raised, then declared ("she is at my place until Sunday"): expected back by
            # the declared end; raised again once if still away then.
            end = self._planned_end()
            raised_at = self.state.raised_at
            if end is None or since >= end or raised_at is None:
                return []
            again = end + s.margin_minutes * 60
            return [(again, True)] if again > raised_at else []
        hours, learned = self._limit_hours(since)
        out = [(since + hours * 3600, learned)]
        if s.by_night and not self.ctx.in_window(since, s.night_start, s.night_end):
            out.append(self._night_deadline(since))
        # Never before the absence was known.
        out = [(max(d, since + self._away_after_s), why) for d, why in out]
        planned = self._planned_end()
        if planned is not None and since < planned:
            # A declared absence: expected back by its end (+ the margin), not before.
            out = [(max(d, planned + s.margin_minutes * 60), True) for d, _ in out]
        return out

    def _deadline(self) -> float | None:
        deadlines = self._deadlines()
        return min(d for d, _ in deadlines) if deadlines else None

    def compute_due(self) -> float | None:
        return self._deadline()

    def fire(self, due: float) -> list[Transition]:
        if self._deadline() != due:
            return []
        since = self.picture.away_since(due)
        assert since is not None
        learned = any(why for d, why in self._deadlines() if d == due)
        door = self.picture.door_evidence()
        again = self.state.raised_for is not None  # past a declaration made after the alert
        self.state.raised_for = since
        self.state.raised_at = due
        self.state.raised_learned = learned or again
        return [
            self.ctx.transition(
                TransitionAction.RAISE,
                AlertKind.NOT_RETURNED,
                due,
                resident_id=self._resident,
                room_id=door.room_id if door else None,
                device_id=door.device_id if door else None,
                evidence=evidence(door),
                details={
                    "hours_away": round((due - since) / 3600, 2),
                    "left_at": self.ctx.local(since).strftime("%H:%M"),
                    "deadline": self.ctx.local(due).strftime("%H:%M"),
                    "limit_hours": round(self._limit_hours(since)[0], 2),
                    "planned_until": self._settings.planned_absence_until
                    if self._planned_covers(since)
                    else None,
                },
            )
        ]
