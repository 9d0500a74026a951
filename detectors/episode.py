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
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import Field, RootModel, model_validator

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


class Episodes(RootModel[dict[str, E]], Generic[E]):
    """A rule's open episodes by key; at most one per key."""

    root: dict[str, E] = Field(default_factory=dict)

    def model_post_init(self, context: Any, /) -> None:
        # One per rule and site, by the thousand sites: every one shares a "fields set"
        # (pydantic never changes it in place) rather than holding a set of its own.
        object.__setattr__(self, "__pydantic_fields_set__", _ROOT_FIELDS)

    def open(self, key: str, episode: E) -> E:
        """Open (or replace) the key's episode."""
        self.root[key] = episode
        return episode

    def close(self, key: str) -> E | None:
        """End the key's episode; the one that was open, if any."""
        return self.root.pop(key, None)

    def get(self, key: str) -> E | None:
        return self.root.get(key)

    def is_open(self, key: str) -> bool:
        return key in self.root

    def sorted_keys(self) -> list[str]:
        """Keys in sorted order: rules fire them in a reproducible order."""
        return sorted(self.root)

    def items(self) -> Iterator[tuple[str, E]]:
        return iter(self.root.items())

    def __len__(self) -> int:
        return len(self.root)


_ROOT_FIELDS = {"root"}  # shared by every `Episodes`: see `model_post_init`
