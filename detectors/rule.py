"""The shared machinery of a rule: timers fired at their due time, state snapshots.

A rule implements `on_reading` (a reading arrived, timers up to its time already
fired), `compute_due` and `fire(due)` (handle whatever is due at exactly `due`).
`advance(now)` fires every timer due by `now` in order, each stamped with its own
due time, so calling `advance` once or many times between two readings gives the
same transitions: replayed days raise the same alerts at the same event times.

State lives in one `RuleState` (`self.state`) of plain data, a slots dataclass validated
by pydantic, so `snapshot` and `restore` are a dump and a validated load.

A rule that judges where the resident is and what she does (`reads_picture`) reads the
site's shared `ResidentPicture` (`resident_state.py`) and keeps no copy of it: the
catalogue builds one model per site, hosted first in the site's detector set, and hands
its read-only view to every such rule. A rule built on its own (tests, tools) gets a
private model it feeds itself before each reading, kept in its snapshot.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import fields
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    Generic,
    Literal,
    Self,
    TypeVar,
    cast,
    dataclass_transform,
)

from pydantic import ConfigDict, Field, TypeAdapter
from pydantic.dataclasses import dataclass as pydantic_dataclass

from detectors.site_context import SiteContext
from eldercare.domain import AlertKind, Evidence, Reading, Stream, Transition
from eldercare.evidence import Observation, describe

if TYPE_CHECKING:
    from detectors.resident_state import ResidentPicture, ResidentStateModel

StateT = TypeVar("StateT", bound="RuleState")

_OWN_PICTURE = "_resident_state"  # a rule built alone keeps its private picture here
_MAX_FIRES_PER_ADVANCE = 100_000  # a timer that never moves on is a bug, not a hang


class RuleState:
    """Base of a rule's state (and its parts): declare one with `@rule_state`, as a pydantic
    model's fields. A worker keeps some thirty per site, by the thousand sites: as slots
    dataclasses they hold no `__dict__` (a pydantic model's costs ~100-650 bytes, and its
    "fields set" more), and they validate and dump through a pydantic `TypeAdapter` to
    the JSON the models wrote, so snapshots are unchanged either way."""

    __slots__ = ()

    def model_dump(self, mode: Literal["json", "python"] = "python") -> dict[str, Any]:
        dumped: dict[str, Any] = _adapter(type(self)).dump_python(self, mode=mode)
        return dumped

    @classmethod
    def model_validate(cls, data: Any) -> Self:
        return _adapter(cls).validate_python(data)

    @classmethod
    def field_names(cls) -> frozenset[str]:
        return frozenset(f.name for f in fields(cast(Any, cls)))


_ADAPTERS: dict[type[Any], TypeAdapter[Any]] = {}


def _adapter(model: type[S]) -> TypeAdapter[S]:
    found = _ADAPTERS.get(model)
    if found is None:
        if "__dataclass_fields__" not in vars(model):  # it would dump as its base
            raise TypeError(f"{model.__qualname__} is not declared with @rule_state")
        found = _ADAPTERS[model] = TypeAdapter(model)
    return found


S = TypeVar("S", bound=RuleState)


@dataclass_transform(kw_only_default=True, field_specifiers=(Field,))
def rule_state(cls: type[S]) -> type[S]:
    """Make a `RuleState` subclass a slots dataclass validated as its pydantic model was:
    keyword arguments, unknown fields refused."""
    return pydantic_dataclass(  # type: ignore[return-value]
        cls, slots=True, kw_only=True, config=ConfigDict(extra="forbid")
    )


@pydantic_dataclass(frozen=True, slots=True, kw_only=True, config=ConfigDict(extra="forbid"))
class EvidenceData(RuleState):
    """`Evidence` as plain data, to be kept in snapshots: a frozen `rule_state` (made per
    reading by several rules and kept in their state)."""

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


def evidence(*items: EvidenceData | None) -> tuple[Evidence, ...]:
    return tuple(i.to_evidence() for i in items if i is not None)


class Rule(ABC, Generic[StateT]):
    """Base of every rule in the catalogue; implements the `Detector` protocol."""

    name: ClassVar[str]  # catalogue name, also the settings key
    kinds: tuple[AlertKind, ...]
    state_model: ClassVar[type[RuleState]]
    # The streams whose readings can change the rule's state (None: every stream). The
    # runtime gives a rule only those, besides the first reading after it is built or
    # restored; its timers fire whatever the reading. A stream left out by mistake loses
    # alerts silently: tests/unit/detectors/test_detectors_routing.py checks each declaration.
    streams: ClassVar[frozenset[Stream] | None] = None
    # Reads the site's shared resident picture (`self.picture`); such a rule must declare
    # every stream that can change the picture (`occupancy.WATCHED_STREAMS`) or none, so
    # that its due time is recomputed whenever the picture changes.
    reads_picture: ClassVar[bool] = False
    # One of each rule a site, by the thousand sites: no `__dict__` (~50 bytes a rule).
    # A subclass declares `__slots__` too (its own attributes, or none); one that does not
    # (the silence rules: `functools.cached_property`) gets a `__dict__` as before.
    __slots__ = ("_cached_due", "_cached_due_known", "_own_model", "_picture", "ctx", "state")

    def __init__(self, ctx: SiteContext, picture: ResidentPicture | None = None) -> None:
        self.ctx = ctx
        self.state: StateT = self.state_model()  # type: ignore[assignment]
        self._cached_due: float | None = None
        self._cached_due_known = False  # valid until the state changes
        self._own_model: ResidentStateModel | None = None
        if self.reads_picture and picture is None:
            from detectors.resident_state import ResidentStateModel

            self._own_model = ResidentStateModel(ctx)
            picture = self._own_model.view
        self._picture = picture

    @property
    def picture(self) -> ResidentPicture:
        if self._picture is None:
            raise TypeError(f"{self.name} does not read the resident picture")
        return self._picture

    # --- protocol -------------------------------------------------------------------------

    def update(self, reading: Reading) -> list[Transition]:
        out = self.advance(reading.ts)
        self._cached_due_known = False  # on_reading may change state, then advance
        if self._own_model is not None:
            self._own_model.feed(reading)  # hosted: the runtime fed the shared one already
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
        out = self.state.model_dump(mode="json")
        if self._own_model is not None:
            out[_OWN_PICTURE] = self._own_model.snapshot()
        return out

    def restore(self, state: Mapping[str, Any]) -> None:
        data = dict(state)
        own = data.pop(_OWN_PICTURE, None)
        if self.reads_picture:
            # A snapshot from before the shared picture: the rule's own copies of it
            # (`movement`, `absence`) are the picture's business now.
            data = {k: v for k, v in data.items() if k in self.state_model.field_names()}
        self.state = self.state_model.model_validate(data)  # type: ignore[assignment]
        if self._own_model is not None and isinstance(own, Mapping):
            self._own_model.restore(own)
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
