"""The digest a group bot gets in a storm, instead of more messages than it may take:

    【汇总】滨城区 7 条新警报：跌倒 2 条，一键呼叫 1 条，…… 请打开控制台：<link>
    [Digest] 7 new alerts in Bincheng: 2 × Fall, 1 × SOS call, … Open the console: <link>

Kinds are listed most frequent first; the place is the narrowest organisation
holding all of them (the last part of their common path), else their site, else
the number of sites.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from alerts.records import AlertRecord
from alerts.terms import kind_term, language_of
from eldercare.registry_index import RegistryIndex

MAX_KINDS = 4


def _place(alerts: Sequence[AlertRecord], index: RegistryIndex, lang: str) -> str:
    """The narrowest area holding every alert: the last part of the organisations'
    common path ("滨州市/滨城区/..." → 滨城区), else the one site, else how many."""
    sites = [index.sites.get(a.site) for a in alerts]
    paths = [s.organisation.split("/") for s in sites if s is not None and s.organisation]
    if paths and len(paths) == len(alerts):
        common: list[str] = []
        for parts in zip(*paths, strict=False):
            if len(set(parts)) != 1:
                break
            common.append(parts[0])
        if common:
            return common[-1]
    names = {s.name if s is not None else a.site for s, a in zip(sites, alerts, strict=True)}
    if len(names) == 1:
        return names.pop()
    return f"{len(names)} 处" if lang == "zh-CN" else f"{len(names)} places"


def digest_message(
    alerts: Sequence[AlertRecord], others: int, index: RegistryIndex, language: str, link: str
) -> tuple[str, str]:
    """(title, body) summing `alerts` (and `others`, messages of no alert) for one bot."""
    lang = language_of(language)
    total = len(alerts) + others
    kinds = Counter(a.kind for a in alerts).most_common()
    place = _place(alerts, index, lang) if alerts else ""
    if lang == "zh-CN":
        parts = [f"{kind_term(k, lang)} {n} 条" for k, n in kinds[:MAX_KINDS]]
        if others:
            parts.append(f"其他消息 {others} 条")
        more = "，……" if len(kinds) > MAX_KINDS else ""
        where = f"{place} " if place else ""
        body = f"【汇总】{where}{total} 条新警报：{'，'.join(parts)}{more}。请打开控制台：{link}"
        return f"【汇总】{total} 条新警报", body
    parts = [f"{n} × {kind_term(k, lang)}" for k, n in kinds[:MAX_KINDS]]
    if others:
        parts.append(f"{others} other messages")
    more = ", …" if len(kinds) > MAX_KINDS else ""
    where = f" in {place}" if place else ""
    body = f"[Digest] {total} new alerts{where}: {', '.join(parts)}{more}. Open the console: {link}"
    return f"[Digest] {total} new alerts", body
