"""One site-wide alert over a set of devices (offline, low battery, tampered).

An alert's identity is (site, resident, kind), so two devices with a low battery
are one alert: raised when the first device joins the set, updated as devices
join or leave, cleared when the set is empty. `details["devices"]` lists them.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import Field

from detectors.no_entries import Entries, no_entries, writable
from detectors.rule import EvidenceData, RuleState, evidence, rule_state
from detectors.site_context import SiteContext
from eldercare.domain import AlertKind, Transition, TransitionAction


@rule_state
class DeviceSetState(RuleState):
    members: Entries[str, EvidenceData] = Field(default_factory=no_entries)  # device id → why


def change(
    state: DeviceSetState,
    ctx: SiteContext,
    kind: AlertKind,
    ts: float,
    device_id: str,
    why: EvidenceData | None,
    extra: Mapping[str, object] | None = None,
) -> list[Transition]:
    """Put a device in the set (`why` given) or take it out (`why` None)."""
    was_open = bool(state.members)
    if why is not None:
        if device_id in state.members:
            return []
        writable(state, "members")[device_id] = why
    else:
        if device_id not in state.members:
            return []
        why = state.members.pop(device_id)
    if state.members:
        action = TransitionAction.UPDATE if was_open else TransitionAction.RAISE
    else:
        action = TransitionAction.CLEAR
    return [
        ctx.transition(
            action,
            kind,
            ts,
            room_id=ctx.device_room(device_id),
            device_id=device_id,
            evidence=evidence(why),
            details={"devices": sorted(state.members), **(extra or {})},
        )
    ]


def prune_removed(
    state: DeviceSetState, ctx: SiteContext, kind: AlertKind, ts: float
) -> list[Transition]:
    """Devices taken out of the registry leave the set (after a rebuild with old state)."""
    out: list[Transition] = []
    for device_id in sorted(state.members):
        if ctx.device(device_id) is None:
            out += change(state, ctx, kind, ts, device_id, None, {"reason": "device removed"})
    return out
