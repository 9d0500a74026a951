"""Momentary emergencies: readings whose alert must be raised however late they arrive.

A press of an SOS button or a fall a device reports happens once; if the message
comes late (a gateway that was offline, a spool draining), the person may still be
on the floor. So the runtime never leaves such a reading out of detection for
lateness (`too_old`): it is applied like any late reading (at the site's clock) and
the alert it raises or updates carries `details["late_s"]`, how long after its event
time it reached detection, for the console ("迟到 16 分钟 / 16 min late").

A new kind joins by adding its stream and test below. Not here: the wearable's raw
ACCEL batches, which its detector orders and judges itself (a fall reported by the
wearable is a FALL reading).

Not here either: the hazard alarms (smoke, gas, carbon monoxide, water leak;
`detectors.hazard_alarm`). Their readings are states, not events: `smoke: true` says
the alarm is sounding, `smoke: false` that it stopped, and the rule raises on the one and
clears on the other. A state reading older than the dedupe window has been superseded
by what the site said since: applied at the site's clock it would sound an alarm that
has stopped (after its `false` arrived, nothing would ever clear it again). A hazard
that is still sounding is reported again by its device (and a late one within the
window is applied, like any late reading).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from eldercare.domain import AlertKind, Reading, Stream

# stream → (is this reading an emergency, the alert kinds it raises)
EMERGENCIES: Mapping[Stream, tuple[Callable[[Reading], bool], frozenset[AlertKind]]] = {
    Stream.SOS: (lambda r: bool(r.fields.get("pressed", False)), frozenset({AlertKind.SOS})),
    Stream.FALL: (
        lambda r: r.fields.get("status") == "fall",
        frozenset({AlertKind.FALL, AlertKind.WEARABLE_FALL}),
    ),
}

# Arrived later than this after its event time: marked late. Under it, ordinary
# network and batching delay.
LATE_MARK_S = 60.0


def emergency_kinds(reading: Reading) -> frozenset[AlertKind]:
    """The alert kinds `reading` raises as an emergency; empty when it is none."""
    entry = EMERGENCIES.get(reading.stream)
    if entry is None:
        return frozenset()
    is_emergency, kinds = entry
    try:
        return kinds if is_emergency(reading) else frozenset()
    except Exception:  # a malformed field: not an emergency by this test; detectors judge it
        return frozenset()
