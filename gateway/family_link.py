"""Which registry contact a family account is, so that what she chooses in the portal
(channels for safety alerts and the rest, the daily summary) reaches the alert pipeline.

An account is linked to a contact by `site_id/contact_id` (`eldercare users add --role
family --contact hh-401/li-mei`, or `contact` in `POST /api/users`), or found by the
phone number the registry holds for the contact (`--contact-phone`). A contact belongs
to at most one account. `GatewayContactPreferences` serves the saved choices of linked
accounts to `alerts` through its `ContactPreferences` protocol.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import Integer, String, UniqueConstraint, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from alerts.recipients import ContactKey, ContactPreference
from eldercare.db import Base
from eldercare.registry_index import RegistryIndex
from eldercare.registry_model import Contact, Site
from gateway.users import Account, AccountError, Role, Sessions, create_user, resident_ref


class FamilyContactRow(Base):
    __tablename__ = "gateway_family_contact"
    __table_args__ = (UniqueConstraint("site_id", "contact_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer, index=True)
    site_id: Mapped[str] = mapped_column(String(64))
    contact_id: Mapped[str] = mapped_column(String(64))


@dataclass(frozen=True, slots=True)
class LinkedContact:
    site: Site
    contact: Contact

    @property
    def ref(self) -> str:
        return f"{self.site.id}/{self.contact.id}"

    def resident_ids(self) -> list[str]:
        """The residents this contact looks after: the listed ones, else the whole home."""
        return list(self.contact.residents) or [r.id for r in self.site.residents]


def _digits(phone: str) -> str:
    return re.sub(r"\D", "", phone)


def find_contact(
    index: RegistryIndex, ref: str | None = None, phone: str | None = None
) -> LinkedContact:
    """The family contact named by `site_id/contact_id`, or the only one with `phone`."""
    if ref:
        site_id, _, contact_id = ref.partition("/")
        site = index.sites.get(site_id)
        contact = next((c for c in site.contacts if c.id == contact_id), None) if site else None
        if site is None or contact is None:
            raise AccountError(f"no contact {ref!r} in the registry (site_id/contact_id)")
        if contact.role != "family":
            raise AccountError(f"contact {ref!r} is a {contact.role}, not family")
        return LinkedContact(site, contact)
    wanted = _digits(phone or "")
    if len(wanted) < 5:
        raise AccountError("give --contact site_id/contact_id or a phone number")
    found = [
        LinkedContact(site, c)
        for site in index.sites.values()
        for c in site.contacts
        if c.role == "family" and c.phone and _digits(c.phone) == wanted
    ]
    if len(found) != 1:
        which = ", ".join(f.ref for f in found) or "none"
        raise AccountError(f"phone {phone!r} must match exactly one family contact ({which})")
    return found[0]


async def link_contact(sessions: Sessions, user_id: int, linked: LinkedContact) -> None:
    async with sessions() as session:
        session.add(
            FamilyContactRow(user_id=user_id, site_id=linked.site.id, contact_id=linked.contact.id)
        )
        try:
            await session.commit()
        except IntegrityError as exc:
            raise AccountError(f"contact {linked.ref} is linked to an account already") from exc


async def linked_contacts(sessions: Sessions, user_id: int) -> list[ContactKey]:
    async with sessions() as session:
        rows = await session.scalars(
            select(FamilyContactRow).where(FamilyContactRow.user_id == user_id)
        )
        return [(r.site_id, r.contact_id) for r in rows]


def to_contact_preference(data: Mapping[str, object]) -> ContactPreference:
    """The pipeline's view of a saved portal preference (`routes_family.Preferences`)."""
    from gateway.routes_family import Preferences

    p = Preferences.model_validate(data)
    return ContactPreference(
        safety_channels=frozenset(p.safety_channels),
        other_channels=frozenset(p.other_channels),
        daily_summary=p.daily_summary_time if p.daily_summary else None,
    )


class GatewayContactPreferences:
    """`alerts.recipients.ContactPreferences` over the gateway's tables."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    async def contact_preferences(self) -> dict[ContactKey, ContactPreference]:
        from gateway.routes_family import FamilyPrefRow

        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(FamilyContactRow, FamilyPrefRow).join(
                        FamilyPrefRow, FamilyPrefRow.user_id == FamilyContactRow.user_id
                    )
                )
            ).all()
        return {(link.site_id, link.contact_id): to_contact_preference(p.data) for link, p in rows}


async def create_family_account(
    sessions: Sessions,
    index: RegistryIndex,
    *,
    username: str,
    password: str,
    now: float,
    contact: str | None = None,
    contact_phone: str | None = None,
    residents: list[str] | None = None,
    display_name: str = "",
    language: str | None = None,
) -> tuple[Account, LinkedContact]:
    """A family account linked to its registry contact; its residents default to the
    ones the contact looks after, its name and language to the contact's."""
    linked = find_contact(index, contact, contact_phone)
    site_id = linked.site.id
    # Residents may be given bare (they live at the contact's site) or as site_id/id.
    chosen_ids = [r.removeprefix(f"{site_id}/") for r in residents or linked.resident_ids()]
    stray = sorted(set(chosen_ids) - {r.id for r in linked.site.residents})
    if stray:
        raise AccountError(f"residents {stray} do not live at {site_id}")
    chosen = sorted({resident_ref(site_id, rid) for rid in chosen_ids})
    async with sessions() as session:
        taken = await session.scalar(
            select(FamilyContactRow.id).where(
                FamilyContactRow.site_id == linked.site.id,
                FamilyContactRow.contact_id == linked.contact.id,
            )
        )
    if taken is not None:
        raise AccountError(f"contact {linked.ref} is linked to an account already")
    account = await create_user(
        sessions,
        username=username,
        role=Role.FAMILY,
        password=password,
        now=now,
        residents=chosen,
        display_name=display_name or linked.contact.name,
        language=language or linked.contact.language,
    )
    await link_contact(sessions, account.id, linked)
    return account, linked
