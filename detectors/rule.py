"""The shared machinery of a rule: timers fired at their due time, pydantic state snapshots.

A rule implements `on_reading` (a reading arrived, timers up to its time already
fired), `compute_due` and `fire(due)` (handle whatever is due at exactly `due`).
`advance(now)` fires every timer due by `now` in order, each stamped with its own
due time, so calling `advance` once or many times between two readings gives the
same transitions: replayed days raise the same alerts at the same event times.

State lives in one pydantic model (`self.state`) of plain data, so `snapshot`
and `restore` are a dump and a validated load.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from detectors.site_context import SiteContext
from eldercare.domain import AlertKind, Evidence, Reading, Stream, Transition
from eldercare.evidence import Observation, describe

StateT = TypeVar("StateT", bound=BaseModel)

_MAX_FIRES_PER_ADVANCE = 100_000  # a timer that never moves on is a bug, not a hang


class RuleState(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EvidenceData(BaseModel):
    """`Evidence` as plain data, to be kept in snapshots."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ts: float
    device_id: str | None
    stream: str
    summary: str
    room_id: str | None = None
    observations: tuple[Observation, ...] = ()

    @classmethod
    def seen(
        cls, reading: Reading, *observations: Observation, room_id: str | None = None
    ) -> EvidenceData:
        """Evidence from a reading, as what was seen (codes the gateway renders in zh-CN
        and en); the summary is their English text."""
        return cls.of(reading, describe(observations), room_id, observations)

    @classmethod
    def of(
        cls,
        reading: Reading,
        summary: str,
        room_id: str | None = None,
        observations: tuple[Observation, ...] = (),
    ) -> EvidenceData:
        """Evidence from a reading with a free-text English summary (prefer `seen`)."""
        made = cls(
            ts=reading.ts,
            device_id=reading.device_id,
            stream=reading.stream.value,
            summary=summary,
            room_id=room_id if room_id is not None else reading.room_id,
        )
        # Made per reading by several rules and kept in their state: frozen, so every one
        # can share one "fields set" instead of holding a set of its own (216 bytes).
        object.__setattr__(made, "__pydantic_fields_set__", _EVIDENCE_FIELDS)
        if observations:
            # Typed by construction (`eldercare.evidence.seen`): validating them again on
            # this hot path costs more than the rest of the model; restores still do.
            object.__setattr__(made, "observations", observations)
        return made

    def to_evidence(self) -> Evidence:
        return Evidence(
            ts=self.ts,
            device_id=self.device_id,
            stream=self.stream,
            summary=self.summary,
            room_id=self.room_id,
            observations=self.observations,
        )


_EVIDENCE_FIELDS: set[str] = frozenset(EvidenceData.model_fields)  # type: ignore[assignment]


def evidence(*items: EvidenceData | None) -> tuple[Evidence, ...]:
    return tuple(i.to_evidence() for i in items if i is not None)


class Rule(ABC, Generic[StateT]):
    """Base of every rule in the catalogue; implements the `Detector` protocol."""

    name: ClassVar[str]  # catalogue name, also the settings key
    kinds: tuple[AlertKind, ...]
    state_model: ClassVar[type[BaseModel]]
    # The streams whose readings can change the rule's state (None: every stream). The
    # runtime gives a rule only those, besides the first reading after it is built or
    # restored; its timers fire whatever the reading. A stream left out by mistake loses
    # alerts silently: tests/unit/detectors/test_detectors_routing.py checks each declaration.
    streams: ClassVar[frozenset[Stream] | None] = None

    def __init__(self, ctx: SiteContext) -> None:
        self.ctx = ctx
        self.state: StateT = self.state_model()  # type: ignore[assignment]
        self._cached_due: float | None = None
        self._cached_due_known = False  # valid until the state changes

    # --- protocol -------------------------------------------------------------------------

    def update(self, reading: Reading) -> list[Transition]:
        out = self.advance(reading.ts)
        self._cached_due_known = False  # on_reading may change state, then advance
        out.extend(self.on_reading(reading))
        self._cached_due_known = False
        return out

    def advance(self, now: float) -> list[Transition]:
        due = self._cached_due if self._cached_due_known else self.next_due()
        if due is None or due > now:
            return []  # the common case, once per reading: nothing due
        out: list[Transition] = []
        for _ in range(_MAX_FIRES_PER_ADVANCE):
            due = self.next_due()
            if due is None or due > now:
                return out
            out.extend(self.fire(due))
            self._cached_due_known = False
        raise RuntimeError(f"{self.name}: timer at {self.next_due()} does not move on")

    def next_due(self) -> float | None:
        if not self._cached_due_known:
            self._cached_due = self.compute_due()
            self._cached_due_known = True
        return self._cached_due

    def snapshot(self) -> dict[str, Any]:
        return self.state.model_dump(mode="json")

    def restore(self, state: Mapping[str, Any]) -> None:
        self.state = self.state_model.model_validate(dict(state))  # type: ignore[assignment]
        self._cached_due_known = False

    def state_changed(self) -> None:
        """For a rule that changes its state outside `on_reading` and `fire`."""
        self._cached_due_known = False

    # --- to implement ---------------------------------------------------------------------

    @abstractmethod
    def on_reading(self, reading: Reading) -> list[Transition]: ...

    def compute_due(self) -> float | None:
        """Earliest due timer, from the state (cached by `next_due` until the state changes)."""
        return None

    def fire(self, due: float) -> list[Transition]:
        """Handle every timer due at exactly `due`; must move `next_due` past it."""
        return []
