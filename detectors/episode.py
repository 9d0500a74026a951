"""An open episode in a rule: a condition that began at some event time, on some evidence,
and may have raised its alert ("out of bed since 02:10", "in the bathroom since 03:40").

Rules keep their episodes in their pydantic state, so a snapshot holds them and a
restore resumes them without raising again. `Episode` is the common part (start,
evidence, raised or not); a rule subclasses it for what else it needs. `Episodes` holds
a rule's open episodes by key (a resident id, "" for the site or household), and dumps
to the plain mapping the rules kept before, so older snapshots restore unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, Generic, Literal, TypeVar, cast, get_args

from pydantic import GetCoreSchemaHandler, TypeAdapter, model_validator
from pydantic_core import core_schema

from detectors.rule import EvidenceData, RuleState, rule_state
from eldercare.domain import TransitionAction


@rule_state
class Episode(RuleState):
    """One open episode: since when, on what evidence, and whether its alert is raised."""

    # Field names a rule's snapshots used before this helper (old name → `since` or
    # `evidence`), so that a snapshot written by an older version still restores.
    renamed: ClassVar[Mapping[str, str]] = {}

    since: float
    evidence: EvidenceData
    raised: bool = False

    @model_validator(mode="before")
    @classmethod
    def _old_names(cls, data: Any) -> Any:
        if cls.renamed and isinstance(data, Mapping):
            data = {cls.renamed.get(k, k): v for k, v in data.items()}
        return data

    def mark_raised(self) -> TransitionAction:
        """RAISE the first time, UPDATE after (a raised episode reported again)."""
        action = TransitionAction.UPDATE if self.raised else TransitionAction.RAISE
        self.raised = True
        return action

    def minutes_at(self, ts: float) -> float:
        return round((ts - self.since) / 60, 1)


E = TypeVar("E", bound=Episode)


class Episodes(Generic[E]):
    """A rule's open episodes by key; at most one per key.

    One per rule and site, by the thousand sites, and nearly always empty: a slots object
    whose mapping is made on the first `open` (None until then). In a rule's state it
    validates from and dumps to the plain mapping (`{}` when empty), as the pydantic
    `RootModel` it was did, so snapshots are unchanged."""

    __slots__ = ("_root",)

    def __init__(self, root: dict[str, E] | None = None) -> None:
        self._root = root or None

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        args = get_args(source)
        mapping = handler.generate_schema(dict[str, args[0] if args else Episode])  # type: ignore[misc]
        from_mapping = core_schema.no_info_after_validator_function(cls, mapping)
        return core_schema.json_or_python_schema(
            json_schema=from_mapping,
            python_schema=core_schema.union_schema(
                [core_schema.is_instance_schema(cls), from_mapping]
            ),
            serialization=core_schema.plain_serializer_function_ser_schema(
                cls.as_dict, return_schema=mapping
            ),
        )

    @classmethod
    def model_validate(cls, data: Any) -> Episodes[E]:
        return cast("Episodes[E]", _adapter(cls).validate_python(data))

    def model_dump(self, mode: Literal["json", "python"] = "python") -> dict[str, Any]:
        return cast("dict[str, Any]", _adapter(type(self)).dump_python(self, mode=mode))

    def as_dict(self) -> dict[str, E]:
        """The episodes by key (a new empty mapping when there are none)."""
        return {} if self._root is None else self._root

    def open(self, key: str, episode: E) -> E:
        """Open (or replace) the key's episode."""
        if self._root is None:
            self._root = {}
        self._root[key] = episode
        return episode

    def close(self, key: str) -> E | None:
        """End the key's episode; the one that was open, if any."""
        if self._root is None:
            return None
        closed = self._root.pop(key, None)
        if not self._root:
            self._root = None
        return closed

    def get(self, key: str) -> E | None:
        return None if self._root is None else self._root.get(key)

    def is_open(self, key: str) -> bool:
        return self._root is not None and key in self._root

    def sorted_keys(self) -> list[str]:
        """Keys in sorted order: rules fire them in a reproducible order."""
        return [] if self._root is None else sorted(self._root)

    def items(self) -> Iterator[tuple[str, E]]:
        return iter(self.as_dict().items())

    def __len__(self) -> int:
        return 0 if self._root is None else len(self._root)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Episodes):
            return NotImplemented
        return self.as_dict() == other.as_dict()

    def __repr__(self) -> str:
        return f"Episodes({self.as_dict()!r})"


def _adapter(cls: type[Episodes[Any]]) -> TypeAdapter[Episodes[Any]]:
    # `Episodes[X].model_validate` reaches here with `Episodes` itself (a generic alias
    # hands attribute look-ups to its origin): episodes of the base `Episode` then.
    adapter = _ADAPTERS.get(cls)
    if adapter is None:
        adapter = _ADAPTERS[cls] = TypeAdapter(cls)
    return adapter


_ADAPTERS: dict[type[Episodes[Any]], TypeAdapter[Episodes[Any]]] = {}
