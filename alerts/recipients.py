"""Who a recipient spec of a policy ('centre', 'family', 'family#1', ...) means for
one alert, from the registry's contacts and the policy's centre."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

from alerts.policy import Centre, parse_spec
from eldercare.registry_model import Contact, Site

CENTRE_KEY = "centre"


@dataclass(frozen=True, slots=True)
class Recipient:
    key: str  # "centre" or "<role>:<contact id>": stable, part of idempotency keys
    role: str
    name: str
    language: str
    phone: str | None
    urls: tuple[str, ...]
    portal: Literal["console", "family"]  # which page the message links to


def channel_hash(url: str) -> str:
    """Names a channel in the log without storing its URL (URLs may hold secrets)."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:24]


def contacts_for(site: Site | None, resident_id: str | None, role: str) -> list[Contact]:
    """The site's contacts of `role` who look after this resident (or the whole site),
    in escalation order. A site-level alert (no resident) concerns all of them."""
    if site is None:
        return []
    found = [
        c
        for c in site.contacts
        if c.role == role and (resident_id is None or not c.residents or resident_id in c.residents)
    ]
    return sorted(found, key=lambda c: (c.order, c.id))


def _of_contact(c: Contact) -> Recipient:
    return Recipient(
        key=f"{c.role}:{c.id}",
        role=c.role,
        name=c.name,
        language=c.language,
        phone=c.phone,
        urls=tuple(c.apprise),
        portal="family" if c.role == "family" else "console",
    )


def resolve(
    spec: str, site: Site | None, resident_id: str | None, centre: Centre
) -> list[Recipient]:
    role, index = parse_spec(spec)
    if role == "centre":
        # The console always shows the alert; these are the channels besides it.
        out = [
            Recipient(
                key=CENTRE_KEY,
                role="centre",
                name=centre.name[centre.language],
                language=centre.language,
                phone=centre.phone,
                urls=tuple(centre.apprise),
                portal="console",
            )
        ]
        out.extend(_of_contact(c) for c in contacts_for(site, resident_id, "operator"))
        return out
    contacts = contacts_for(site, resident_id, role)
    if index is not None:
        contacts = contacts[index - 1 : index]
    return [_of_contact(c) for c in contacts]


def resolve_all(
    specs: list[str], site: Site | None, resident_id: str | None, centre: Centre
) -> list[Recipient]:
    """Recipients of several specs, each once, in the order first named."""
    seen: set[str] = set()
    out: list[Recipient] = []
    for spec in specs:
        for r in resolve(spec, site, resident_id, centre):
            if r.key not in seen:
                seen.add(r.key)
                out.append(r)
    return out
