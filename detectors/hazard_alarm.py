"""Smoke, gas, carbon monoxide and water leak: the home's own alarms, raised as they sound.

The detector decides (its chamber, its threshold); the rule only carries its state
over: raised the moment a device reports its alarm, cleared when every alarming
device of the site has reported clear, raised again when one alarms after that. A
press of the detector's test button (`test: true`) is a test, not a fire: it changes
nothing. Several alarming devices are one alert per site and kind (`details["devices"]`).

A hazard threatens everyone in the home, so the alert belongs to the site, or to its
resident when it has one (the person the family and the centre must reach). Hazards
are never inhibited by a site outage: they arrive with the site's next message, and
`alerts/policies/inhibit.yaml` lists none of them as a target.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from detectors.rule import EvidenceData, Rule, RuleState, evidence, rule_state
from detectors.settings import HazardAlarmSettings
from eldercare.domain import AlertKind, Reading, Stream, Transition, TransitionAction
from eldercare.evidence import EvidenceCode, seen


@rule_state
class HazardAlarmState(RuleState):
    alarming: dict[str, EvidenceData] = Field(default_factory=dict)  # device id → first alarm


class HazardAlarmRule(Rule[HazardAlarmState]):
    """One hazard kind; subclasses name the alert kind, the stream and what the alarm is
    as evidence (`alarm_seen`, a code the gateway renders in zh-CN and en). The rule's
    name, kinds, streams and the reading's flag follow from them (the flag is named as
    its stream)."""

    __slots__ = ()

    state_model = HazardAlarmState
    kind: ClassVar[AlertKind]
    stream: ClassVar[Stream]
    flag: ClassVar[str]
    alarm_seen: ClassVar[EvidenceCode]

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.name = cls.kind.value
        cls.kinds = (cls.kind,)
        cls.streams = frozenset({cls.stream})
        cls.flag = cls.stream.value

    def on_reading(self, reading: Reading) -> list[Transition]:
        out = self._forget_removed(reading.ts)
        if reading.stream != self.stream:
            return out
        alarm = reading.fields.get(self.flag)
        if not isinstance(alarm, bool) or reading.fields.get("test") is True:
            return out  # a test press sounds the siren; it is not a hazard
        if not self.ctx.settings(self.name, HazardAlarmSettings).enabled:
            return out
        if alarm:
            if reading.device_id in self.state.alarming:
                return out  # still alarming: the alert is already raised
            why = EvidenceData.seen(
                reading, seen(self.alarm_seen), room_id=self.ctx.room_of(reading)
            )
            self.state.alarming[reading.device_id] = why
            first = len(self.state.alarming) == 1
            action = TransitionAction.RAISE if first else TransitionAction.UPDATE
            return [*out, self._transition(action, reading.ts, reading.device_id, why)]
        why_was = self.state.alarming.pop(reading.device_id, None)
        if why_was is None:
            return out
        action = TransitionAction.UPDATE if self.state.alarming else TransitionAction.CLEAR
        return [*out, self._transition(action, reading.ts, reading.device_id, why_was)]

    def _forget_removed(self, ts: float) -> list[Transition]:
        """A device taken out of the registry stops alarming (after a rebuild)."""
        out: list[Transition] = []
        for device_id in sorted(self.state.alarming):
            if self.ctx.device(device_id) is None:
                why = self.state.alarming.pop(device_id)
                action = TransitionAction.UPDATE if self.state.alarming else TransitionAction.CLEAR
                out.append(self._transition(action, ts, device_id, why))
        return out

    def _transition(
        self, action: TransitionAction, ts: float, device_id: str, why: EvidenceData
    ) -> Transition:
        residents = self.ctx.resident_ids
        return self.ctx.transition(
            action,
            self.kind,
            ts,
            resident_id=residents[0] if len(residents) == 1 else None,
            room_id=why.room_id,
            device_id=device_id,
            evidence=evidence(why),
            details={"devices": sorted(self.state.alarming), "hazard": self.kind.value},
        )


class SmokeRule(HazardAlarmRule):
    __slots__ = ()

    kind = AlertKind.SMOKE
    stream = Stream.SMOKE
    alarm_seen = EvidenceCode.SMOKE_ALARM


class GasRule(HazardAlarmRule):
    __slots__ = ()

    kind = AlertKind.GAS
    stream = Stream.GAS
    alarm_seen = EvidenceCode.GAS_ALARM


class CarbonMonoxideRule(HazardAlarmRule):
    __slots__ = ()

    kind = AlertKind.CARBON_MONOXIDE
    stream = Stream.CARBON_MONOXIDE
    alarm_seen = EvidenceCode.CO_ALARM


class WaterLeakRule(HazardAlarmRule):
    __slots__ = ()

    kind = AlertKind.WATER_LEAK
    stream = Stream.WATER_LEAK
    alarm_seen = EvidenceCode.WATER_ON_FLOOR
