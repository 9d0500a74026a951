"""Low battery, with hysteresis: raised below 15 %, cleared only at 20 % or more, so a
battery hovering around the threshold (cold nights) does not flap."""

from __future__ import annotations

from detectors import device_set
from detectors.rule import EvidenceData, Rule
from detectors.settings import LowBatterySettings
from eldercare.domain import AlertKind, Reading, Stream, Transition
from eldercare.evidence import EvidenceCode, seen


class LowBatteryRule(Rule[device_set.DeviceSetState]):
    __slots__ = ()

    name = "low_battery"
    kinds = (AlertKind.LOW_BATTERY,)
    state_model = device_set.DeviceSetState
    streams = frozenset({Stream.BATTERY})

    def on_reading(self, reading: Reading) -> list[Transition]:
        if self.state.members:
            pruned = device_set.prune_removed(
                self.state, self.ctx, AlertKind.LOW_BATTERY, reading.ts
            )
            if pruned:
                return pruned + self.on_reading(reading)
        if reading.stream != Stream.BATTERY:
            return []
        s = self.ctx.settings(self.name, LowBatterySettings)
        if not s.enabled:
            return []
        percent = reading.fields.get("percent")
        if not isinstance(percent, int | float) or isinstance(percent, bool):
            return self._device_flag(reading)
        extra = {"percent": float(percent)}
        if percent < s.below_percent:
            why = EvidenceData.seen(reading, seen(EvidenceCode.BATTERY, percent=round(percent)))
            return device_set.change(
                self.state,
                self.ctx,
                AlertKind.LOW_BATTERY,
                reading.ts,
                reading.device_id,
                why,
                extra,
            )
        if percent >= s.clear_at_percent:
            return device_set.change(
                self.state,
                self.ctx,
                AlertKind.LOW_BATTERY,
                reading.ts,
                reading.device_id,
                None,
                extra,
            )
        return []

    def _device_flag(self, reading: Reading) -> list[Transition]:
        """A device that reports only its own low-battery flag (zigbee `battery_low`)."""
        low = reading.fields.get("low")
        if not isinstance(low, bool):
            return []
        why = EvidenceData.seen(reading, seen(EvidenceCode.BATTERY_FLAG)) if low else None
        return device_set.change(
            self.state, self.ctx, AlertKind.LOW_BATTERY, reading.ts, reading.device_id, why
        )
