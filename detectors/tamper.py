"""Tamper: a device's tamper switch reports its case opened or the device removed."""

from __future__ import annotations

from detectors import device_set
from detectors.rule import EvidenceData, Rule
from detectors.settings import TamperSettings
from eldercare.domain import AlertKind, Reading, Stream, Transition
from eldercare.evidence import EvidenceCode, seen


class TamperRule(Rule[device_set.DeviceSetState]):
    __slots__ = ()

    name = "tamper"
    kinds = (AlertKind.TAMPER,)
    state_model = device_set.DeviceSetState
    streams = frozenset({Stream.TAMPER})

    def on_reading(self, reading: Reading) -> list[Transition]:
        if self.state.members:
            pruned = device_set.prune_removed(self.state, self.ctx, AlertKind.TAMPER, reading.ts)
            if pruned:
                return pruned + self.on_reading(reading)
        if reading.stream != Stream.TAMPER:
            return []
        if not self.ctx.settings(self.name, TamperSettings).enabled:
            return []
        tampered = bool(reading.fields.get("tamper", False))
        why = EvidenceData.seen(reading, seen(EvidenceCode.TAMPER)) if tampered else None
        return device_set.change(
            self.state, self.ctx, AlertKind.TAMPER, reading.ts, reading.device_id, why
        )
