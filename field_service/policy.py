"""How long a responder may take: the field deadlines, as data.

Defaults follow the plans the platform serves: a dispatch must be accepted within
5 minutes or it goes back to the operator; home-care beds promise help at the door
within 30 minutes (the 15–30 minute service radius), an institution's nurse within
10. An organisation may set its own, by organisation-path prefix (the longest
matching prefix wins).
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from eldercare.domain import SiteKind
from eldercare.errors import EldercareError


class DeadlineOverride(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    organisation: str = Field(description="organisation path prefix, e.g. 滨州市/滨城区")
    accept_timeout_s: float | None = Field(None, gt=0)
    arrival_promise_s: float | None = Field(None, gt=0)


class FieldPolicyError(EldercareError, ValueError):
    """A field policy file that cannot be read or does not validate."""


class FieldPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    accept_timeout_s: float = Field(300.0, gt=0, description="dispatched → accepted")
    arrival_promise_s: dict[SiteKind, float] = Field(
        default_factory=lambda: {SiteKind.HOME: 1800.0, SiteKind.INSTITUTION: 600.0},
        description="request → arrived, by site kind",
    )
    overrides: list[DeadlineOverride] = Field(default_factory=list)

    @classmethod
    def load(cls, path: Path | None) -> FieldPolicy:
        """The policy of a YAML file (`ELDERCARE_FIELD_POLICY`), or the defaults; a bad
        file is a clear error naming it, never a silent default."""
        if path is None:
            return cls()
        try:
            return cls.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
        except (OSError, yaml.YAMLError, ValidationError) as exc:
            raise FieldPolicyError(f"field policy {path}: {exc}") from exc

    def _override(self, org_path: tuple[str, ...]) -> DeadlineOverride | None:
        best: DeadlineOverride | None = None
        best_len = -1
        for o in self.overrides:
            prefix = tuple(o.organisation.strip("/").split("/"))
            if org_path[: len(prefix)] == prefix and len(prefix) > best_len:
                best, best_len = o, len(prefix)
        return best

    def accept_timeout(self, org_path: tuple[str, ...]) -> float:
        o = self._override(org_path)
        if o is not None and o.accept_timeout_s is not None:
            return o.accept_timeout_s
        return self.accept_timeout_s

    def arrival_promise(self, site_kind: SiteKind | str, org_path: tuple[str, ...]) -> float:
        o = self._override(org_path)
        if o is not None and o.arrival_promise_s is not None:
            return o.arrival_promise_s
        return self.arrival_promise_s.get(SiteKind(site_kind), 1800.0)
