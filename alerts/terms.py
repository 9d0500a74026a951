"""The words people read: alert kinds, severities, handling states and outcomes in zh-CN and en.

These are the terms of UX.md's table; the console, the family portal and every
notification use them, so keep them here and nowhere else.
"""

from __future__ import annotations

from enum import StrEnum

from eldercare.domain import AlertKind, Severity

Language = str  # "zh-CN" | "en"
LANGUAGES: tuple[Language, ...] = ("zh-CN", "en")


class Outcome(StrEnum):
    """How an alert ended. Stable identifiers, stored and used in statistics."""

    FALSE_ALARM = "false_alarm"
    RESIDENT_FINE = "resident_fine"
    ASSISTED_ON_SITE = "assisted_on_site"
    FAMILY_ATTENDED = "family_attended"
    AMBULANCE_CALLED = "ambulance_called"
    DEVICE_FAULT = "device_fault"
    # Only the pipeline uses this: a warning/info alert whose condition cleared by itself.
    AUTO_CLEARED = "auto_cleared"
    OTHER = "other"


KIND_TERMS: dict[AlertKind, dict[Language, str]] = {
    AlertKind.SOS: {"zh-CN": "一键呼叫", "en": "SOS call"},
    AlertKind.FALL: {"zh-CN": "跌倒", "en": "Fall"},
    AlertKind.WEARABLE_FALL: {"zh-CN": "跌倒（穿戴设备）", "en": "Fall (wearable)"},
    AlertKind.BED_EXIT_NO_RETURN: {"zh-CN": "夜间离床未归", "en": "Out of bed at night"},
    AlertKind.BATHROOM_TOO_LONG: {"zh-CN": "如厕时间过长", "en": "Long bathroom stay"},
    AlertKind.INACTIVITY: {"zh-CN": "长时间无活动", "en": "No activity"},
    AlertKind.NIGHT_DOOR_EXIT: {"zh-CN": "夜间出门", "en": "Left home at night"},
    AlertKind.NOT_RETURNED: {"zh-CN": "外出未归", "en": "Not back home"},
    AlertKind.NOT_UP: {"zh-CN": "未按时起床", "en": "Not up as usual"},
    AlertKind.VITALS: {"zh-CN": "生命体征异常", "en": "Abnormal vital signs"},
    AlertKind.DEVICE_OFFLINE: {"zh-CN": "设备离线", "en": "Device offline"},
    AlertKind.SITE_OFFLINE: {"zh-CN": "站点离线（无监护）", "en": "Site offline (unprotected)"},
    AlertKind.LOW_BATTERY: {"zh-CN": "电量低", "en": "Low battery"},
    AlertKind.TAMPER: {"zh-CN": "防拆报警", "en": "Tamper"},
    AlertKind.ROUTINE_DEVIATION: {"zh-CN": "作息异常", "en": "Unusual routine"},
    AlertKind.SMOKE: {"zh-CN": "烟雾报警", "en": "Smoke alarm"},
    AlertKind.GAS: {"zh-CN": "燃气泄漏", "en": "Gas leak"},
    AlertKind.CARBON_MONOXIDE: {"zh-CN": "一氧化碳报警", "en": "Carbon monoxide alarm"},
    AlertKind.WATER_LEAK: {"zh-CN": "漏水", "en": "Water leak"},
    AlertKind.HEAT: {"zh-CN": "室内高温", "en": "Heat risk indoors"},
    AlertKind.COLD: {"zh-CN": "室内低温", "en": "Cold home"},
    AlertKind.DEVICE_FAULT: {
        "zh-CN": "设备故障（待检测或维修）",
        "en": "Device fault (test or repair due)",
    },
}

# What to do, said in every hazard notification and shown with the alert: the first
# minutes decide (leave, ventilate, no sparks), before anyone arrives.
HAZARD_ADVICE: dict[AlertKind, dict[Language, str]] = {
    AlertKind.SMOKE: {
        "zh-CN": "请立即确认是否起火；如有明火或浓烟，协助老人撤离并拨打119",
        "en": "Check at once whether there is a fire; if there is fire or thick smoke, "
        "get the resident out and call 119",
    },
    AlertKind.GAS: {
        "zh-CN": "请勿开关电器、勿用明火，开窗通风，关闭燃气总阀，撤离后拨打燃气抢修电话",
        "en": "Do not switch anything on or off and no flames; open windows, shut the gas "
        "valve, leave, then call the gas emergency line",
    },
    AlertKind.CARBON_MONOXIDE: {
        "zh-CN": "请立即开窗通风并撤离到室外；如有头晕、恶心、意识模糊，拨打120",
        "en": "Open windows and get out into fresh air at once; if dizzy, sick or confused, "
        "call 120",
    },
    AlertKind.WATER_LEAK: {
        "zh-CN": "请关闭进水总阀，提醒老人小心地滑",
        "en": "Shut the main water valve and warn the resident of the slippery floor",
    },
    AlertKind.HEAT: {
        "zh-CN": "请帮老人降温：开空调或风扇、多喝水；如有头晕、意识模糊，拨打120",
        "en": "Help the resident cool down: air conditioning or a fan, plenty to drink; "
        "if dizzy or confused, call 120",
    },
    AlertKind.COLD: {
        "zh-CN": "请帮老人保暖：开暖气、加衣被、喝热饮",
        "en": "Help the resident keep warm: heating on, more layers and blankets, a hot drink",
    },
}

SEVERITY_TERMS: dict[Severity, dict[Language, str]] = {
    Severity.CRITICAL: {"zh-CN": "紧急", "en": "critical"},
    Severity.HIGH: {"zh-CN": "高", "en": "high"},
    Severity.MEDIUM: {"zh-CN": "中", "en": "medium"},
    Severity.WARNING: {"zh-CN": "提示", "en": "warning"},
    Severity.INFO: {"zh-CN": "信息", "en": "info"},
}

# The tag a message starts with; English uses URGENT for critical as in UX.md's example.
SEVERITY_TAGS: dict[Severity, dict[Language, str]] = {
    Severity.CRITICAL: {"zh-CN": "【紧急】", "en": "[URGENT]"},
    Severity.HIGH: {"zh-CN": "【高】", "en": "[HIGH]"},
    Severity.MEDIUM: {"zh-CN": "【中】", "en": "[MEDIUM]"},
    Severity.WARNING: {"zh-CN": "【提示】", "en": "[WARNING]"},
    Severity.INFO: {"zh-CN": "【信息】", "en": "[INFO]"},
}

STATUS_TERMS: dict[str, dict[Language, str]] = {
    "open": {"zh-CN": "待处理", "en": "open"},
    "acknowledged": {"zh-CN": "已接警", "en": "acknowledged"},
    "resolved": {"zh-CN": "已处置", "en": "resolved"},
}

OUTCOME_TERMS: dict[Outcome, dict[Language, str]] = {
    Outcome.FALSE_ALARM: {"zh-CN": "误报", "en": "false alarm"},
    Outcome.RESIDENT_FINE: {"zh-CN": "老人无恙", "en": "resident fine"},
    Outcome.ASSISTED_ON_SITE: {"zh-CN": "上门协助", "en": "assisted on site"},
    Outcome.FAMILY_ATTENDED: {"zh-CN": "家属到场", "en": "family attended"},
    Outcome.AMBULANCE_CALLED: {"zh-CN": "已呼叫120", "en": "ambulance called"},
    Outcome.DEVICE_FAULT: {"zh-CN": "设备故障", "en": "device fault"},
    Outcome.AUTO_CLEARED: {"zh-CN": "自动恢复", "en": "cleared by itself"},
    Outcome.OTHER: {"zh-CN": "其他", "en": "other"},
}

# What re-raised an acknowledged alert (`alerts.decisions.RE_RAISING_TRIGGERS`).
AGAIN_TERMS: dict[str, dict[str, str]] = {
    "pressed_again": {"zh-CN": "再次按下", "en": "pressed again"},
    "fell_again": {"zh-CN": "再次跌倒", "en": "fell again"},
    "alarmed_again": {"zh-CN": "再次报警", "en": "alarming again"},
}


def language_of(value: str | None) -> Language:
    """A contact's language, defaulting to Simplified Chinese for anything unknown."""
    return "en" if value == "en" else "zh-CN"


def kind_term(kind: AlertKind | str, language: Language) -> str:
    return KIND_TERMS[AlertKind(kind)][language_of(language)]


def severity_term(severity: Severity | str, language: Language) -> str:
    return SEVERITY_TERMS[Severity(severity)][language_of(language)]


def severity_tag(severity: Severity | str, language: Language) -> str:
    return SEVERITY_TAGS[Severity(severity)][language_of(language)]


def status_term(status: str, language: Language) -> str:
    return STATUS_TERMS[status][language_of(language)]


def outcome_term(outcome: Outcome | str, language: Language) -> str:
    return OUTCOME_TERMS[Outcome(outcome)][language_of(language)]


def again_term(what: str, language: Language) -> str:
    return AGAIN_TERMS[what][language_of(language)]


def hazard_advice(kind: AlertKind | str, language: Language) -> str | None:
    """What to do about a hazard, or None for an alert that is not one."""
    advice = HAZARD_ADVICE.get(AlertKind(kind))
    return advice[language_of(language)] if advice else None
