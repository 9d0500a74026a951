"""SOS: a button press raises a critical alert at once.

The press is momentary: presses within `repeat_window_s` of the last one update the
alert (a frightened person presses again and again); once the window passes with
no press the condition clears. Clearing ends the condition only; the alert stays
open for handling until an operator resolves it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from pydantic import Field

from detectors.episode import Episode, Episodes
from detectors.rule import EvidenceData, Rule, RuleState, evidence, rule_state
from detectors.settings import SosSettings
from eldercare.domain import AlertKind, Reading, Stream, Transition, TransitionAction
from eldercare.evidence import EvidenceCode, seen


@rule_state
class _Presses(Episode):
    """Open from the first press (`since`, `evidence`) until the repeat window passes;
    raised from the start."""

    renamed: ClassVar[Mapping[str, str]] = {"first_press": "since", "first_evidence": "evidence"}

    raised: bool = True  # raised by its first press (older snapshots do not say)
    last_press: float
    presses: int
    device_id: str
    room_id: str | None


@rule_state
class SosState(RuleState):
    # resident id ("" = site) → presses
    open: Episodes[_Presses] = Field(default_factory=Episodes[_Presses])


class SosRule(Rule[SosState]):
    __slots__ = ()

    name = "sos"
    kinds = (AlertKind.SOS,)
    state_model = SosState
    streams = frozenset({Stream.SOS})

    def _settings(self, resident: str | None) -> SosSettings:
        return self.ctx.settings(self.name, SosSettings, resident)

    def on_reading(self, reading: Reading) -> list[Transition]:
        if reading.stream != Stream.SOS or not reading.fields.get("pressed", False):
            return []
        resident = self.ctx.reading_resident(reading)
        if not self._settings(resident).enabled:
            return []
        key = resident or ""
        room = self.ctx.room_of(reading)
        ev = EvidenceData.seen(reading, seen(EvidenceCode.SOS_PRESSED), room_id=room)
        episode = self.state.open.get(key)
        if episode is None:
            episode = self.state.open.open(
                key,
                _Presses(
                    since=reading.ts,
                    evidence=ev,
                    last_press=reading.ts,
                    presses=1,
                    device_id=reading.device_id,
                    room_id=room,
                ),
            )
            action = TransitionAction.RAISE
        else:
            episode.last_press = reading.ts
            episode.presses += 1
            action = episode.mark_raised()
        presses = episode.presses
        return [
            self.ctx.transition(
                action,
                AlertKind.SOS,
                reading.ts,
                resident_id=resident,
                room_id=room,
                device_id=reading.device_id,
                evidence=evidence(ev),
                details={"presses": presses},
            )
        ]

    def compute_due(self) -> float | None:
        dues = [
            e.last_press + self._settings(k or None).repeat_window_s
            for k, e in self.state.open.items()
        ]
        return min(dues) if dues else None

    def fire(self, due: float) -> list[Transition]:
        out = []
        for key in self.state.open.sorted_keys():
            e = self.state.open.get(key)
            if e is None or e.last_press + self._settings(key or None).repeat_window_s != due:
                continue
            self.state.open.close(key)
            out.append(
                self.ctx.transition(
                    TransitionAction.CLEAR,
                    AlertKind.SOS,
                    due,
                    resident_id=key or None,
                    room_id=e.room_id,
                    device_id=e.device_id,
                    evidence=evidence(e.evidence),
                    details={"presses": e.presses, "reason": "no further press"},
                )
            )
        return out
