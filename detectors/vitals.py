"""Vital signs out of range: heart or breathing rate from a bed sensor (or a contact-free
monitor) outside its range continuously for longer than `minutes`.

Judged on readings (monitors report every few seconds): the alert is raised by the
first out-of-range reading that comes `minutes` after the run of out-of-range
readings began, with no in-range reading between; it clears on an in-range
reading. A rate of 0 or a missing rate is "no measurement" (nobody in bed), which
ends a run rather than extending it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from pydantic import Field

from detectors.episode import Episode, Episodes
from detectors.rule import EvidenceData, Rule, RuleState, evidence, rule_state
from detectors.settings import VitalsSettings
from eldercare.domain import AlertKind, Reading, Stream, Transition, TransitionAction
from eldercare.evidence import EvidenceCode, Observation, seen


@rule_state
class _Run(Episode):
    """A run of out-of-range readings, from its first (`since`, `evidence`)."""

    renamed: ClassVar[Mapping[str, str]] = {"first": "evidence"}


@rule_state
class VitalsState(RuleState):
    # resident id ("" = unknown) → run
    runs: Episodes[_Run] = Field(default_factory=Episodes[_Run])


def _problems(reading: Reading, s: VitalsSettings) -> tuple[list[Observation], bool]:
    """(what is out of range, any valid measurement present)."""
    out: list[Observation] = []
    measured = False
    for key, lo, hi, unit in (
        ("heart_rate", s.heart_rate_min, s.heart_rate_max, "bpm"),
        ("breathing_rate", s.breathing_rate_min, s.breathing_rate_max, "/min"),
    ):
        value = reading.fields.get(key)
        if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
            continue
        measured = True
        if value < lo:
            out.append(seen(EvidenceCode.VITAL_LOW, measure=key, value=value, unit=unit, limit=lo))
        elif value > hi:
            out.append(seen(EvidenceCode.VITAL_HIGH, measure=key, value=value, unit=unit, limit=hi))
    return out, measured


class VitalsRule(Rule[VitalsState]):
    __slots__ = ()

    name = "vitals"
    kinds = (AlertKind.VITALS,)
    state_model = VitalsState
    streams = frozenset({Stream.VITALS})

    def on_reading(self, reading: Reading) -> list[Transition]:
        if reading.stream != Stream.VITALS:
            return []
        resident = self.ctx.reading_resident(reading)
        s = self.ctx.settings(self.name, VitalsSettings, resident)
        if not s.enabled:
            return []
        key = resident or ""
        problems, measured = _problems(reading, s)
        run = self.state.runs.get(key)
        room = self.ctx.room_of(reading)
        details = {
            k: reading.fields[k] for k in ("heart_rate", "breathing_rate") if k in reading.fields
        }
        if not problems:
            if run is None:
                return []
            self.state.runs.close(key)
            if not run.raised:
                return []
            why = EvidenceCode.VITALS_OK if measured else EvidenceCode.NO_MEASUREMENT
            return [
                self.ctx.transition(
                    TransitionAction.CLEAR,
                    AlertKind.VITALS,
                    reading.ts,
                    resident_id=resident,
                    room_id=room,
                    device_id=reading.device_id,
                    evidence=evidence(EvidenceData.seen(reading, seen(why), room_id=room)),
                    details={**details, "minutes": run.minutes_at(reading.ts)},
                )
            ]
        ev = EvidenceData.seen(reading, *problems, room_id=room)
        if run is None:
            self.state.runs.open(key, _Run(since=reading.ts, evidence=ev))
            return []
        minutes = (reading.ts - run.since) / 60
        if minutes < s.minutes:
            return []
        if run.raised:
            return []  # one raise per run; the alert shows the values it was raised with
        return [
            self.ctx.transition(
                run.mark_raised(),
                AlertKind.VITALS,
                reading.ts,
                resident_id=resident,
                room_id=room,
                device_id=reading.device_id,
                evidence=evidence(run.evidence, ev),
                details={
                    **details,
                    "minutes": round(minutes, 1),
                    "problems": [p.english() for p in problems],
                },
            )
        ]
