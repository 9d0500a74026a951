"""The one protocol every detector follows (river-style: time is passed in, never read).

A detector is a state machine for one site (or one resident). It sees readings
through `update`, is told the time through `advance`, and answers with the
transitions (raise / update / clear) that happened, each stamped with the event
time it happened at. It does no I/O, reads no clock and never sleeps.

`next_due()` tells the runtime the earliest event time at which `advance` could
produce something without a new reading (a timer), so the runtime can fire
timers exactly at their due time in `event` clock mode and sleep until then in
`wall` mode.

`snapshot()` returns plain JSON-serialisable data; `restore()` takes it back, so
a restart resumes open conditions ("out of bed since 02:10") without re-raising.

Optionally a detector names the streams whose readings can change it (`streams`, a
frozenset of `Stream`; absent or None: every stream): the runtime then gives it only
those (and the first reading after a build or restore), firing its timers as always.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from eldercare.domain import AlertKind, Reading, Transition


@runtime_checkable
class Detector(Protocol):
    # Read-only, so a rule's own `kinds = (AlertKind.SOS,)` (a one-item tuple) satisfies it.
    @property
    def kinds(self) -> tuple[AlertKind, ...]:
        """The alert kinds it may emit."""
        ...

    def update(self, reading: Reading) -> list[Transition]:
        """Take one reading (must not be mutated); return the transitions it caused."""
        ...

    def advance(self, now: float) -> list[Transition]:
        """Event time has reached `now`; return transitions of timers due by then."""
        ...

    def next_due(self) -> float | None:
        """Earliest event time at which `advance` may emit, or None if no timer runs."""
        ...

    def snapshot(self) -> dict[str, Any]:
        """State as plain JSON-serialisable data."""
        ...

    def restore(self, state: Mapping[str, Any]) -> None:
        """Replace the state with one taken by `snapshot`."""
        ...
