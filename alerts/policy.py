"""Escalation, inhibition and silences, declared as data (YAML) and loaded into
strict pydantic models.

`alerts/policies/default.yaml` ships with the package; a site may override it with
`<overrides dir>/<site id>.yaml` (same schema, every key optional): a severity given
there replaces the default's policy for that severity whole, and a `centre` given
there replaces the default centre. Merging is explicit in `PolicySet.for_site`.

A kind may have its own policy under `kinds:`, used instead of its severity's: smoke,
gas and carbon monoxide go to the centre and the family at the same moment, because
a fire does not wait for the centre to pick up. A site override's `kinds` entry
replaces the default's for that kind whole, like a severity.

Auto-resolve: a severity may set `auto_resolve_cleared: true` so that an alert
whose condition cleared by itself is resolved by the system (outcome
`auto_cleared`). It is refused for critical and high: those always wait for a
person to resolve them.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from eldercare.domain import DEFAULT_SEVERITY, AlertKind, Severity
from eldercare.errors import EldercareError

POLICY_DIR = Path(__file__).parent / "policies"
DEFAULT_POLICY_FILE = POLICY_DIR / "default.yaml"
DEFAULT_INHIBIT_FILE = POLICY_DIR / "inhibit.yaml"
LIMITS_FILE = "limits.yaml"  # sending limits (alerts.limits), beside the site overrides

ROLES = ("centre", "family", "neighbour", "responder", "supervisor", "doctor")
_RECIPIENT = r"^(centre|family|neighbour|responder|supervisor|doctor)(#[1-9][0-9]*)?$"
RecipientSpec = Annotated[
    str,
    Field(
        pattern=_RECIPIENT,
        description="a role (every contact of it, in escalation order) or role#N (the N-th)",
    ),
]
_SPEC_RE = re.compile(_RECIPIENT)


class PolicyError(EldercareError, ValueError):
    """A policy file that cannot be used; the message names the file and the problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Step(_Strict):
    notify: list[RecipientSpec] = Field(description="who is notified when this step runs")
    wait_s: float = Field(
        ge=0, description="seconds to wait for an acknowledgement before the next step"
    )


class Repeat(_Strict):
    every_s: float = Field(gt=0, description="re-notify this often until acknowledged")
    notify: list[RecipientSpec] = Field(description="who is re-notified")


class SeverityPolicy(_Strict):
    steps: list[Step] = Field(default_factory=list, description="ordered escalation steps")
    repeat: Repeat | None = Field(None, description="after the last step, until acknowledged")
    auto_resolve_cleared: bool = Field(
        False, description="resolve by itself when the condition clears (not critical/high)"
    )


class Centre(_Strict):
    name: dict[Literal["zh-CN", "en"], str] = Field(
        default_factory=lambda: {"zh-CN": "服务中心", "en": "the service centre"},  # type: ignore[arg-type]
        description="how messages name the monitoring centre",
    )
    phone: str | None = Field(None, description="the centre's phone number, quoted in messages")
    language: Literal["zh-CN", "en"] = Field("zh-CN", description="language of operator messages")
    apprise: list[str] = Field(
        default_factory=list, description="Apprise URLs of the duty operators (besides the console)"
    )


class Delivery(_Strict):
    timeout_s: float = Field(10.0, gt=0, description="per-send time limit")
    max_attempts: int = Field(
        3, ge=1, description="failed sends before a message counts unanswered"
    )
    backoff_s: float = Field(5.0, gt=0, description="first retry delay; doubles each attempt")
    per_channel_concurrency: int = Field(
        4, ge=1, description="sends in flight per channel, so one slow channel can't hog threads"
    )


class Silence(_Strict):
    """A maintenance window: alerts matching it are stored and shown, not notified."""

    kinds: list[AlertKind] = Field(default_factory=list, description="empty: every kind")
    starts: datetime = Field(description="ISO 8601 with offset")
    ends: datetime = Field(description="ISO 8601 with offset")
    reason: str = Field(min_length=1, description="why, shown in the alert's history")

    @model_validator(mode="after")
    def _ordered(self) -> Silence:
        if self.starts.tzinfo is None or self.ends.tzinfo is None:
            raise ValueError("silence times need a UTC offset")
        if self.ends <= self.starts:
            raise ValueError("a silence must end after it starts")
        return self

    def covers(self, kind: str, now: float) -> bool:
        in_window = self.starts.timestamp() <= now < self.ends.timestamp()
        return in_window and (not self.kinds or kind in self.kinds)


class EscalationPolicy(_Strict):
    centre: Centre = Field(default_factory=Centre)
    delivery: Delivery = Field(default_factory=Delivery)
    severities: dict[Severity, SeverityPolicy] = Field(description="one policy per severity")
    kinds: dict[AlertKind, SeverityPolicy] = Field(
        default_factory=dict, description="a kind's own policy, used instead of its severity's"
    )
    silences: list[Silence] = Field(default_factory=list)

    @field_validator("severities")
    @classmethod
    def _complete(cls, v: dict[Severity, SeverityPolicy]) -> dict[Severity, SeverityPolicy]:
        missing = [s.value for s in Severity if s not in v]
        if missing:
            raise ValueError(f"no policy for severities: {', '.join(missing)}")
        _check_auto_resolve(v)
        return v

    @field_validator("kinds")
    @classmethod
    def _kinds_not_auto(cls, v: dict[AlertKind, SeverityPolicy]) -> dict[AlertKind, SeverityPolicy]:
        _check_kinds_auto_resolve(v)
        return v

    def for_alert(self, kind: AlertKind | str, severity: Severity | str) -> SeverityPolicy:
        """The policy an alert escalates by: its kind's own, else its severity's."""
        own = self.kinds.get(AlertKind(kind))
        return own if own is not None else self.severities[Severity(severity)]


class SitePolicyOverride(_Strict):
    centre: Centre | None = None
    delivery: Delivery | None = None
    severities: dict[Severity, SeverityPolicy] = Field(default_factory=dict)
    kinds: dict[AlertKind, SeverityPolicy] = Field(default_factory=dict)
    silences: list[Silence] = Field(default_factory=list)

    @field_validator("severities")
    @classmethod
    def _no_auto_critical(cls, v: dict[Severity, SeverityPolicy]) -> dict[Severity, SeverityPolicy]:
        _check_auto_resolve(v)
        return v

    @field_validator("kinds")
    @classmethod
    def _kinds_not_auto(cls, v: dict[AlertKind, SeverityPolicy]) -> dict[AlertKind, SeverityPolicy]:
        _check_kinds_auto_resolve(v)
        return v


def _check_auto_resolve(v: dict[Severity, SeverityPolicy]) -> None:
    for severity in (Severity.CRITICAL, Severity.HIGH):
        p = v.get(severity)
        if p is not None and p.auto_resolve_cleared:
            raise ValueError(f"auto_resolve_cleared is not allowed for {severity.value}")


def _check_kinds_auto_resolve(v: dict[AlertKind, SeverityPolicy]) -> None:
    for kind, p in v.items():
        serious = DEFAULT_SEVERITY[kind] in (Severity.CRITICAL, Severity.HIGH)
        if serious and p.auto_resolve_cleared:
            raise ValueError(f"auto_resolve_cleared is not allowed for {kind.value}")


class InhibitRule(_Strict):
    name: str = Field(min_length=1)
    source_kinds: list[AlertKind] = Field(min_length=1, description="kinds that inhibit")
    target_kinds: list[AlertKind] = Field(min_length=1, description="kinds that are inhibited")
    equal: list[Literal["site", "resident"]] = Field(
        description="labels source and target must share"
    )


class InhibitRules(_Strict):
    rules: list[InhibitRule] = Field(default_factory=list)


def parse_spec(spec: str) -> tuple[str, int | None]:
    """'family#2' -> ('family', 2); 'family' -> ('family', None)."""
    m = _SPEC_RE.match(spec)
    if m is None:
        raise PolicyError(f"bad recipient {spec!r}")
    role, index = m.group(1), m.group(2)
    return role, int(index[1:]) if index else None


def _load_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise PolicyError(f"{path}: {exc}") from exc


def load_policy(path: Path = DEFAULT_POLICY_FILE) -> EscalationPolicy:
    try:
        return EscalationPolicy.model_validate(_load_yaml(path))
    except ValueError as exc:
        raise PolicyError(f"{path}: {exc}") from exc


def load_inhibit_rules(path: Path = DEFAULT_INHIBIT_FILE) -> InhibitRules:
    try:
        return InhibitRules.model_validate(_load_yaml(path))
    except ValueError as exc:
        raise PolicyError(f"{path}: {exc}") from exc


class PolicySet:
    """The default policy plus per-site overrides."""

    def __init__(
        self,
        default: EscalationPolicy,
        overrides: dict[str, SitePolicyOverride] | None = None,
    ) -> None:
        self.default = default
        self.overrides = overrides or {}
        self._cache: dict[str, EscalationPolicy] = {}

    @classmethod
    def load(
        cls, default_file: Path = DEFAULT_POLICY_FILE, overrides_dir: Path | None = None
    ) -> PolicySet:
        overrides: dict[str, SitePolicyOverride] = {}
        if overrides_dir is not None:
            for path in sorted(overrides_dir.glob("*.yaml")):
                if path.name == LIMITS_FILE:
                    continue
                try:
                    overrides[path.stem] = SitePolicyOverride.model_validate(_load_yaml(path))
                except ValueError as exc:
                    raise PolicyError(f"{path}: {exc}") from exc
        return cls(load_policy(default_file), overrides)

    def for_site(self, site_id: str) -> EscalationPolicy:
        cached = self._cache.get(site_id)
        if cached is not None:
            return cached
        o = self.overrides.get(site_id)
        if o is None:
            policy = self.default
        else:
            policy = EscalationPolicy(
                centre=o.centre or self.default.centre,
                delivery=o.delivery or self.default.delivery,
                severities={**self.default.severities, **o.severities},
                kinds={**self.default.kinds, **o.kinds},
                silences=[*self.default.silences, *o.silences],
            )
        self._cache[site_id] = policy
        return policy
