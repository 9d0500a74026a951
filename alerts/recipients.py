"""Who a recipient spec of a policy ('centre', 'family', 'family#1', ...) means for
one alert, from the registry's contacts and the policy's centre.

A contact may have chosen, through the family portal, which of their channels carry
safety alerts and which the rest (and whether and when the daily summary comes). Those
choices reach the pipeline through the small `ContactPreferences` protocol, so this
package does not depend on the gateway that stores them. Channels are classified by
the Apprise URL's scheme (`channel_kind`). Safety alerts are never switched off: if
none of a contact's URLs is of a chosen channel, all of them are used.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from alerts.policy import Centre, parse_spec
from eldercare.domain import Severity
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


ChannelKind = Literal["sms", "voice", "wechat_work", "email", "push"]
CHANNEL_KINDS: tuple[ChannelKind, ...] = ("sms", "voice", "wechat_work", "email", "push")
_SCHEMES: dict[str, ChannelKind] = {
    **dict.fromkeys(("wecombot", "wxwork", "wecom"), "wechat_work"),
    **dict.fromkeys(
        ("mailto", "mailtos", "email", "ses", "sendgrid", "mailgun", "sparkpost", "resend"),
        "email",
    ),
    **dict.fromkeys(
        (
            "sms", "twilio", "sns", "clicksend", "d7sms", "plivo", "msg91", "nexmo", "vonage",
            "bulksms", "bulkvs", "sinch", "kavenegar", "smseagle", "seven", "sms77", "httpsms",
            "burstsms", "voipms", "signal", "smsmgr", "aliyunsms", "tencentsms",
        ),
        "sms",
    ),
    **dict.fromkeys(("voice", "tel", "aliyunvoice", "tencentvoice"), "voice"),
}  # fmt: skip
SAFETY_SEVERITIES = frozenset({Severity.CRITICAL, Severity.HIGH})


def channel_kind(url: str) -> ChannelKind:
    """The kind of channel an Apprise URL is, by its scheme; anything not known as SMS,
    voice, WeChat Work or e-mail (app push, webhooks, other messengers) counts as push."""
    scheme = url.partition("://")[0].strip().lower()
    if scheme in _SCHEMES:
        return _SCHEMES[scheme]
    if "voice" in scheme or "call" in scheme:
        return "voice"
    return "push"


def is_safety(severity: str) -> bool:
    """Safety alerts (critical and high) can be re-routed by a family, never muted."""
    return severity in SAFETY_SEVERITIES


@dataclass(frozen=True, slots=True)
class ContactPreference:
    """A contact's own choices, overriding what the registry says about their channels."""

    safety_channels: frozenset[str]
    other_channels: frozenset[str]
    daily_summary: str | None  # local "HH:MM", or None: no daily summary


ContactKey = tuple[str, str]  # (site id, contact id)


class ContactPreferences(Protocol):
    async def contact_preferences(self) -> Mapping[ContactKey, ContactPreference]:
        """Preferences of the contacts who set any; the others keep the registry's."""
        ...


def routed_urls(
    urls: tuple[str, ...] | list[str], pref: ContactPreference | None, *, safety: bool
) -> tuple[str, ...]:
    """Which of a contact's URLs carry a message of this kind, after their choices."""
    urls = tuple(urls)
    if pref is None:
        return urls
    wanted = pref.safety_channels if safety else pref.other_channels
    chosen = tuple(u for u in urls if channel_kind(u) in wanted)
    if safety and not chosen:
        return urls  # never silent: a choice no URL matches falls back to all of them
    return chosen


def summary_contact(contact: Contact, pref: ContactPreference | None) -> Contact:
    """The contact as the daily summary sees them: their own time (or none) and the
    channels of their other notifications (their safety channels if they chose none)."""
    if pref is None:
        return contact
    urls = routed_urls(contact.apprise, pref, safety=False) or routed_urls(
        contact.apprise, pref, safety=True
    )
    return contact.model_copy(update={"daily_summary": pref.daily_summary, "apprise": list(urls)})


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


def _of_contact(
    c: Contact,
    site: Site | None = None,
    preferences: Mapping[ContactKey, ContactPreference] | None = None,
    safety: bool = True,
) -> Recipient:
    pref = preferences.get((site.id, c.id)) if preferences and site else None
    return Recipient(
        key=f"{c.role}:{c.id}",
        role=c.role,
        name=c.name,
        language=c.language,
        phone=c.phone,
        urls=routed_urls(c.apprise, pref, safety=safety),
        portal="family" if c.role == "family" else "console",
    )


def resolve(
    spec: str,
    site: Site | None,
    resident_id: str | None,
    centre: Centre,
    preferences: Mapping[ContactKey, ContactPreference] | None = None,
    safety: bool = True,
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
    return [_of_contact(c, site, preferences, safety) for c in contacts]


def resolve_all(
    specs: list[str],
    site: Site | None,
    resident_id: str | None,
    centre: Centre,
    preferences: Mapping[ContactKey, ContactPreference] | None = None,
    safety: bool = True,
) -> list[Recipient]:
    """Recipients of several specs, each once, in the order first named; contacts'
    channels as they chose them for safety alerts (`safety`) or the rest."""
    seen: set[str] = set()
    out: list[Recipient] = []
    for spec in specs:
        for r in resolve(spec, site, resident_id, centre, preferences, safety):
            if r.key not in seen:
                seen.add(r.key)
                out.append(r)
    return out
