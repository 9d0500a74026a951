"""Where an alert would go: `eldercare alerts route --site S --kind fall` shows who
is notified when, from the registry's contacts and the escalation policy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from alerts.policy import EscalationPolicy, InhibitRules, PolicySet
from alerts.recipients import Recipient, resolve_all
from alerts.terms import kind_term
from eldercare.domain import DEFAULT_SEVERITY, AlertKind, Severity
from eldercare.registry_index import RegistryIndex


@dataclass(frozen=True, slots=True)
class RouteStep:
    at_s: float  # seconds after the alert is raised, if nobody acknowledges
    what: str  # "step N" or "repeat every S s"
    recipients: list[Recipient]


@dataclass(frozen=True, slots=True)
class RoutePlan:
    site: str
    resident: str | None
    kind: AlertKind
    severity: Severity
    steps: list[RouteStep]
    inhibited_by: list[str]  # what would inhibit it, in words
    silenced: list[str]
    warnings: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "resident": self.resident,
            "kind": self.kind.value,
            "severity": self.severity.value,
            "steps": [
                {
                    "at_s": s.at_s,
                    "what": s.what,
                    "recipients": [
                        {
                            "key": r.key,
                            "role": r.role,
                            "name": r.name,
                            "language": r.language,
                            "phone": r.phone,
                            "channels": len(r.urls),
                        }
                        for r in s.recipients
                    ],
                }
                for s in self.steps
            ],
            "inhibited_by": self.inhibited_by,
            "silenced": self.silenced,
            "warnings": self.warnings,
        }


def plan_route(
    policies: PolicySet,
    rules: InhibitRules,
    index: RegistryIndex,
    site_id: str,
    kind: AlertKind,
    resident_id: str | None = None,
    severity: Severity | None = None,
    repeats_shown: int = 2,
) -> RoutePlan:
    site = index.sites.get(site_id)
    warnings: list[str] = []
    if site is None:
        warnings.append(f"site {site_id!r} is not in the registry: only the centre is reached")
    elif resident_id is None and len(site.residents) == 1:
        resident_id = site.residents[0].id
    severity = severity or DEFAULT_SEVERITY[kind]
    policy: EscalationPolicy = policies.for_site(site_id)
    sp = policy.for_alert(kind, severity)
    steps: list[RouteStep] = []
    at = 0.0
    for i, step in enumerate(sp.steps):
        recipients = resolve_all(list(step.notify), site, resident_id, policy.centre)
        steps.append(RouteStep(at, f"step {i + 1}", recipients))
        for spec in step.notify:
            if not resolve_all([spec], site, resident_id, policy.centre):
                warnings.append(f"step {i + 1}: nobody is {spec} for this alert")
        for r in recipients:
            if not r.urls and r.role != "centre":
                warnings.append(f"{r.key} ({r.name}) has no notification channel")
        at += step.wait_s
    if sp.repeat is not None:
        recipients = resolve_all(list(sp.repeat.notify), site, resident_id, policy.centre)
        for n in range(repeats_shown):
            steps.append(
                RouteStep(
                    at + n * sp.repeat.every_s, f"repeat every {sp.repeat.every_s:g} s", recipients
                )
            )
    inhibited = [
        f"{', '.join(r.source_kinds)} (same {' and '.join(r.equal)}) [{r.name}]"
        for r in rules.rules
        if kind in r.target_kinds
    ]
    silenced = [
        f"{s.starts.isoformat()} – {s.ends.isoformat()}: {s.reason}"
        for s in policy.silences
        if not s.kinds or kind in s.kinds
    ]
    return RoutePlan(site_id, resident_id, kind, severity, steps, inhibited, silenced, warnings)


def format_route(plan: RoutePlan) -> str:
    lines = [
        f"{plan.kind.value} ({kind_term(plan.kind, 'zh-CN')} / {kind_term(plan.kind, 'en')}) "
        f"at site {plan.site}, resident {plan.resident or '-'}: severity {plan.severity.value}",
    ]
    if not plan.steps:
        lines.append("  nobody is notified; the alert shows in the console only")
    for s in plan.steps:
        who = "; ".join(
            f"{r.key} {r.name} [{r.language}, {len(r.urls)} channel(s)"
            + (", console" if r.role == "centre" else "")
            + (f", tel {r.phone}" if r.phone else "")
            + "]"
            for r in s.recipients
        )
        lines.append(f"  +{s.at_s:>6.0f} s  {s.what:<22} {who or '(nobody)'}")
    if plan.steps and plan.steps[-1].what.startswith("repeat"):
        lines.append("  ... until someone acknowledges")
    elif plan.steps:
        lines.append("  (no further steps)")
    for text in plan.inhibited_by:
        lines.append(f"  inhibited while open: {text}")
    for text in plan.silenced:
        lines.append(f"  silenced: {text}")
    for text in plan.warnings:
        lines.append(f"  warning: {text}")
    return "\n".join(lines)
