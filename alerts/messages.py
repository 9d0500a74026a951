"""Notification texts: short, specific, actionable, in the recipient's language.

    【紧急】张秀英（黄河社区 3-2-401）卧室 02:41 跌倒。请致电本人 138xxxx 或联系服务中心
    0543-xxxxxxx。查看：<link>
    [URGENT] Zhang Xiuying (Huanghe community 3-2-401), bedroom, 02:41: Fall. Call her on
    138xxxx or the service centre 0543-xxxxxxx. Details: <link>

Event times are shown in the site's time zone; the date is added when it is not
the day the message is sent.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from alerts.channels.templates import TemplateParams
from alerts.policy import Centre
from alerts.recipients import Recipient, contacts_for
from alerts.records import AlertRecord
from alerts.terms import (
    AGAIN_TERMS,
    again_term,
    hazard_advice,
    kind_term,
    language_of,
    outcome_term,
    severity_tag,
)
from eldercare.registry_model import Resident, Site


def local_time(ts: float, timezone: str, now: float | None = None) -> str:
    """'02:41', or '11-22 02:41' when `ts` is not on the same local day as `now`."""
    tz = ZoneInfo(timezone)
    t = datetime.fromtimestamp(ts, tz)
    if now is not None and datetime.fromtimestamp(now, tz).date() != t.date():
        return t.strftime("%m-%d %H:%M")
    return t.strftime("%H:%M")


def alert_link(public_url: str, alert_id: int, portal: str) -> str:
    page = "family" if portal == "family" else "console"
    return f"{public_url.rstrip('/')}/{page}#alert-{alert_id}"


def _who(alert: AlertRecord, site: Site | None) -> tuple[str, Resident | None]:
    resident = site.resident(alert.resident) if site else None
    if resident is not None:
        return resident.name, resident
    if site is not None:
        return site.name, None
    return alert.resident or alert.site, None


def _place(site: Site | None, alert: AlertRecord) -> str:
    if site is None:
        return alert.site
    return site.address or site.name


def _room(site: Site | None, alert: AlertRecord) -> str:
    room = site.room(alert.room) if site else None
    if room is None:
        return alert.room or ""
    return room.name or room.id


def _pronoun(resident: Resident | None) -> str:
    if resident is not None and resident.sex == "f":
        return "her"
    if resident is not None and resident.sex == "m":
        return "him"
    return "them"


def _minutes(alert: AlertRecord, lang: str) -> str:
    minutes = alert.details.get("minutes")
    if not isinstance(minutes, int | float) or isinstance(minutes, bool):
        return ""
    return f"（已 {minutes:.0f} 分钟）" if lang == "zh-CN" else f" ({minutes:.0f} min)"


def _again(alert: AlertRecord, lang: str) -> tuple[str, float]:
    """("（再次按下）" / " (pressed again)", its event time) for a re-raised alert, else
    ("", the first trigger's time)."""
    again = alert.details.get("re_raised")
    if not isinstance(again, dict) or again.get("what") not in AGAIN_TERMS:
        return "", alert.raised_at
    term = again_term(str(again["what"]), language_of(lang))
    ts = again.get("ts")
    when = float(ts) if isinstance(ts, int | float) else alert.last_update
    return (f"（{term}）" if lang == "zh-CN" else f" ({term})"), when


def alert_message(
    alert: AlertRecord,
    site: Site | None,
    recipient: Recipient,
    centre: Centre,
    public_url: str,
    now: float,
) -> tuple[str, str]:
    """(title, body) of an alert notification for one recipient."""
    lang = language_of(recipient.language)
    name, resident = _who(alert, site)
    place = _place(site, alert)
    room = _room(site, alert)
    tz = site.timezone if site else "Asia/Shanghai"
    again, at = _again(alert, lang)
    when = local_time(at, tz, now)
    kind = kind_term(alert.kind, lang) + again
    tag = severity_tag(alert.severity, lang)
    link = alert_link(public_url, alert.id, recipient.portal)
    if resident is None and site is not None and len(site.residents) == 1:
        # A site-level alert (site offline) at a home of one: she is the one to call.
        resident = site.residents[0]
    phone = resident.phone if resident else None
    centre_name = centre.name.get("en" if lang == "en" else "zh-CN") or (
        "服务中心" if lang == "zh-CN" else "the service centre"
    )
    advice = hazard_advice(alert.kind, lang)
    family = contacts_for(site, alert.resident, "family")
    first_family = next((c for c in family if c.phone), None)
    if lang == "zh-CN":
        actions: list[str] = []
        if phone:
            actions.append(f"致电本人 {phone}")
        if recipient.portal == "family":
            actions.append(f"联系{centre_name}" + (f" {centre.phone}" if centre.phone else ""))
        elif first_family is not None:
            actions.append(f"联系家属 {first_family.name} {first_family.phone}")
        todo = "请" + " 或 ".join(actions) + "。" if actions else ""
        if advice:
            todo = f"{advice}。{todo}"
        where = f"{room} " if room else ""
        body = (
            f"{tag}{name}（{place}）{where}{when} {kind}{_minutes(alert, lang)}。{todo}查看：{link}"
        )
        title = f"{tag}{kind}：{name}"
        return title, body
    actions = []
    if phone:
        actions.append(f"Call {_pronoun(resident)} on {phone}")
    if recipient.portal == "family":
        actions.append(f"contact {centre_name}" + (f" {centre.phone}" if centre.phone else ""))
    elif first_family is not None:
        actions.append(f"call family {first_family.name} on {first_family.phone}")
    todo = ""
    if actions:
        sentence = " or ".join(actions)
        todo = sentence[0].upper() + sentence[1:] + ". "
    if advice:
        todo = f"{advice}. {todo}"
    where = f", {room}" if room else ""
    body = (
        f"{tag} {name} ({place}){where}, {when}: {kind}{_minutes(alert, lang)}. "
        f"{todo}Details: {link}"
    )
    title = f"{tag} {kind}: {name}"
    return title, body


def followup_message(
    alert: AlertRecord,
    site: Site | None,
    recipient: Recipient,
    public_url: str,
    now: float,
) -> tuple[str, str]:
    """(title, body) telling someone who was alerted when and how the alert was handled."""
    lang = language_of(recipient.language)
    name, _ = _who(alert, site)
    tz = site.timezone if site else "Asia/Shanghai"
    raised = local_time(alert.raised_at, tz, now)
    handled = local_time(alert.resolved_at or now, tz, now)
    kind = kind_term(alert.kind, lang)
    outcome = outcome_term(alert.outcome or "other", lang)
    by = alert.resolved_by or ""
    link = alert_link(public_url, alert.id, recipient.portal)
    note = (alert.note or "").strip()
    if lang == "zh-CN":
        note_text = f"备注：{note}。" if note else ""
        body = (
            f"【已处置】{name}的{kind}警报（{raised}）已于 {handled} 由{by}处置："
            f"{outcome}。{note_text}查看：{link}"
        )
        return f"【已处置】{kind}：{name}", body
    note_text = f"Note: {note}. " if note else ""
    body = (
        f"[Handled] {name}'s {kind} alert ({raised}) was handled at {handled} by {by}: "
        f"{outcome}. {note_text}Details: {link}"
    )
    return f"[Handled] {kind}: {name}", body


def template_params(
    alert: AlertRecord,
    site: Site | None,
    recipient: Recipient,
    centre: Centre,
    now: float,
) -> TemplateParams:
    """The variables of an SMS or voice provider's template (always zh-CN: the
    providers' templates are approved in Chinese): who, what, when, what to do."""
    name, resident = _who(alert, site)
    tz = site.timezone if site else "Asia/Shanghai"
    if resident is None and site is not None and len(site.residents) == 1:
        resident = site.residents[0]
    actions: list[str] = []
    if resident is not None and resident.phone:
        actions.append(f"致电本人 {resident.phone}")
    if recipient.portal == "family":
        actions.append("联系服务中心" + (f" {centre.phone}" if centre.phone else ""))
    else:
        first_family = next(
            (c for c in contacts_for(site, alert.resident, "family") if c.phone), None
        )
        if first_family is not None:
            actions.append(f"联系家属 {first_family.name} {first_family.phone}")
    return TemplateParams(
        name=name,
        kind=kind_term(alert.kind, "zh-CN") + _minutes(alert, "zh-CN"),
        time=local_time(alert.raised_at, tz, now),
        action="请" + " 或 ".join(actions) if actions else "请查看控制台",
    )
