"""Every string the pages show, in zh-CN and en, served as one catalogue (`/i18n.json`).

Alert kinds, severities, handling states and outcomes come from `alerts.terms`
(UX.md's table), so a term is written once for pages and notifications alike.
`{name}`-style placeholders are filled in by the pages.
"""

from __future__ import annotations

from typing import Any

from alerts import terms
from eldercare.domain import AlertKind, Severity

UI: dict[str, dict[str, str]] = {
    "app.title": {"zh-CN": "居家养老安全监护", "en": "Elder-care monitoring"},
    "console.title": {"zh-CN": "值班台", "en": "Operator console"},
    "floor.title": {"zh-CN": "楼层视图", "en": "Floor view"},
    "devices.title": {"zh-CN": "设备状态", "en": "Device health"},
    "family.title": {"zh-CN": "家属端", "en": "Family"},
    "login.title": {"zh-CN": "登录", "en": "Sign in"},
    "login.username": {"zh-CN": "用户名", "en": "User name"},
    "login.password": {"zh-CN": "密码", "en": "Password"},
    "login.submit": {"zh-CN": "登录", "en": "Sign in"},
    "login.failed": {"zh-CN": "用户名或密码错误", "en": "Wrong user name or password"},
    "nav.queue": {"zh-CN": "警情队列", "en": "Queue"},
    "nav.floor": {"zh-CN": "楼层", "en": "Floor"},
    "nav.devices": {"zh-CN": "设备", "en": "Devices"},
    "nav.logout": {"zh-CN": "退出", "en": "Sign out"},
    "top.sites": {"zh-CN": "监护站点", "en": "Sites monitored"},
    "top.offline": {"zh-CN": "离线站点（无监护）", "en": "Sites offline (unprotected)"},
    "top.open": {"zh-CN": "待处理警情", "en": "Open alerts"},
    "top.ack60": {"zh-CN": "今日60秒接警率", "en": "Acknowledged ≤60 s today"},
    "stream.live": {"zh-CN": "实时连接正常", "en": "Live"},
    "stream.connecting": {"zh-CN": "正在连接…", "en": "Connecting…"},
    "stream.lost": {
        "zh-CN": "实时连接中断！警情可能未显示，正在重连…",
        "en": "LIVE CONNECTION LOST — new alerts may not show. Reconnecting…",
    },
    "stream.lost_short": {"zh-CN": "连接中断", "en": "LOST"},
    "floor.legend_out": {"zh-CN": "夜间离床", "en": "Out of bed at night"},
    "queue.empty": {"zh-CN": "当前没有待处理警情", "en": "No open alerts"},
    "queue.waiting": {"zh-CN": "等待", "en": "waiting"},
    "detail.none": {"zh-CN": "请在左侧选择一条警情", "en": "Select an alert on the left"},
    "detail.resident": {"zh-CN": "老人信息", "en": "Resident"},
    "detail.age": {"zh-CN": "{n}岁", "en": "{n} years"},
    "detail.conditions": {"zh-CN": "健康状况", "en": "Conditions"},
    "detail.room": {"zh-CN": "房间/床位", "en": "Room / bed"},
    "detail.address": {"zh-CN": "地址", "en": "Address"},
    "detail.map": {"zh-CN": "地图", "en": "Map"},
    "detail.contacts": {"zh-CN": "联系人（按通知顺序）", "en": "Contacts (escalation order)"},
    "detail.evidence": {"zh-CN": "依据", "en": "Evidence"},
    "detail.activity": {"zh-CN": "近12小时活动", "en": "Last 12 hours"},
    "detail.history": {"zh-CN": "处理记录", "en": "History"},
    "detail.no_activity": {"zh-CN": "暂无活动数据", "en": "No activity data"},
    "detail.call": {"zh-CN": "拨打", "en": "Call"},
    "detail.resident_phone": {"zh-CN": "本人", "en": "Resident"},
    "action.ack": {"zh-CN": "接警 (A)", "en": "Acknowledge (A)"},
    "action.assign": {"zh-CN": "派单", "en": "Assign / dispatch"},
    "action.note": {"zh-CN": "备注", "en": "Add note"},
    "action.resolve": {"zh-CN": "处置完成 (R)", "en": "Resolve (R)"},
    "action.assignee": {"zh-CN": "派给（人员）", "en": "Responder"},
    "action.note_text": {"zh-CN": "备注内容", "en": "Note"},
    "action.outcome": {"zh-CN": "处置结果", "en": "Outcome"},
    "action.save": {"zh-CN": "确定", "en": "Save"},
    "action.cancel": {"zh-CN": "取消", "en": "Cancel"},
    "action.mute": {"zh-CN": "静音5分钟", "en": "Mute 5 min"},
    "action.muted": {"zh-CN": "已静音 {m}:{s}", "en": "Muted {m}:{s}"},
    "action.sound_on": {"zh-CN": "开启声音", "en": "Enable sound"},
    "history.raised": {"zh-CN": "发生", "en": "raised"},
    "history.updated": {"zh-CN": "更新", "en": "updated"},
    "history.cleared": {"zh-CN": "情况解除", "en": "condition cleared"},
    "history.notified": {"zh-CN": "已通知", "en": "notified"},
    "history.escalated": {"zh-CN": "升级", "en": "escalated"},
    "history.acknowledged": {"zh-CN": "接警", "en": "acknowledged"},
    "history.assigned": {"zh-CN": "派单", "en": "assigned"},
    "history.note": {"zh-CN": "备注", "en": "note"},
    "history.resolved": {"zh-CN": "处置完成", "en": "resolved"},
    "history.inhibited": {"zh-CN": "已抑制", "en": "inhibited"},
    "history.released": {"zh-CN": "解除抑制", "en": "released"},
    "history.silenced": {"zh-CN": "已静默", "en": "silenced"},
    "history.unanswered": {"zh-CN": "无人响应", "en": "unanswered"},
    "history.notification_failed": {"zh-CN": "通知失败", "en": "notification failed"},
    "history.centre": {"zh-CN": "服务中心", "en": "service centre"},
    "floor.occupied": {"zh-CN": "在床", "en": "In bed"},
    "floor.empty": {"zh-CN": "空床", "en": "Empty"},
    "floor.out_of_bed": {"zh-CN": "夜间离床 {n} 分钟", "en": "Out of bed {n} min"},
    "floor.alerting": {"zh-CN": "报警中", "en": "Alerting"},
    "floor.unknown": {"zh-CN": "无数据", "en": "No data"},
    "floor.site": {"zh-CN": "机构", "en": "Institution"},
    "devices.problems": {"zh-CN": "离线设备与低电量", "en": "Offline devices and low batteries"},
    "devices.unregistered": {
        "zh-CN": "未登记但在发送数据的设备",
        "en": "Unknown devices sending data",
    },
    "devices.col.problem": {"zh-CN": "问题", "en": "Problem"},
    "devices.col.site": {"zh-CN": "站点", "en": "Site"},
    "devices.col.device": {"zh-CN": "设备 · 房间", "en": "Device · room"},
    "devices.col.since": {"zh-CN": "开始时间", "en": "Since"},
    "devices.col.identity": {"zh-CN": "设备标识", "en": "Identity"},
    "devices.col.last_seen": {"zh-CN": "最近消息", "en": "Last message"},
    "devices.col.messages": {"zh-CN": "消息数", "en": "Messages"},
    "devices.col.sample": {"zh-CN": "消息样例", "en": "Sample"},
    "devices.col.received": {"zh-CN": "接收时间", "en": "Received"},
    "devices.col.cause": {"zh-CN": "原因", "en": "Cause"},
    "devices.col.topic": {"zh-CN": "主题", "en": "Topic"},
    "devices.quarantined": {"zh-CN": "被隔离的消息", "en": "Quarantined messages"},
    "devices.none": {"zh-CN": "全部正常", "en": "All fine"},
    "devices.intake.unregistered": {
        "zh-CN": "未登记设备 {n} 台。",
        "en": "{n} unregistered devices.",
    },
    "devices.intake.quarantined": {
        "zh-CN": "被隔离的消息 {n} 条（最近一条 {newest}）。",
        "en": "{n} quarantined messages (latest {newest}).",
    },
    "devices.intake.tell_admin": {
        "zh-CN": "详情仅管理员可见，请告知管理员登记设备或检查消息。",
        "en": "Only admins see the details: please tell an admin to register or check them.",
    },
    "devices.since": {"zh-CN": "自", "en": "since"},
    "devices.not_available": {
        "zh-CN": "仅管理员可见，或接入服务未记录",
        "en": "Admins only, or not recorded by ingest",
    },
    "family.state.at_home": {
        "zh-CN": "{name}在家，{ago}在{room}有活动",
        "en": "{name} is at home, last active {ago} in the {room}",
    },
    "family.state.at_home_noroom": {
        "zh-CN": "{name}在家，{ago}有活动",
        "en": "{name} is at home, last active {ago}",
    },
    "family.state.in_bed": {"zh-CN": "{name}{time}起在床上", "en": "{name} is in bed since {time}"},
    "family.state.out": {"zh-CN": "{name}{time}出门了", "en": "{name} went out at {time}"},
    "family.state.unknown": {
        "zh-CN": "暂时没有{name}的活动数据",
        "en": "No recent activity data for {name}",
    },
    "family.ago.now": {"zh-CN": "刚刚", "en": "just now"},
    "family.ago.min": {"zh-CN": "{n}分钟前", "en": "{n} minutes ago"},
    "family.ago.hour": {"zh-CN": "{n}小时前", "en": "{n} hours ago"},
    "family.today": {"zh-CN": "今天", "en": "Today"},
    "family.today_empty": {"zh-CN": "今天还没有记录", "en": "Nothing recorded yet today"},
    "family.alerts": {"zh-CN": "提醒与处理", "en": "Alerts and how they were handled"},
    "family.alerts_none": {"zh-CN": "最近30天没有提醒", "en": "No alerts in the last 30 days"},
    "family.alert.open": {
        "zh-CN": "{time}发生“{kind}”，服务中心正在处理",
        "en": "{time}: {kind}. The service centre is on it.",
    },
    "family.alert.acknowledged": {
        "zh-CN": "{time}发生“{kind}”，{who}已接警，正在处理",
        "en": "{time}: {kind}. {who} took it and is handling it.",
    },
    "family.alert.resolved": {
        "zh-CN": "{time}发生“{kind}”，{who}已处理：{outcome}",
        "en": "{time}: {kind}. Handled by {who}: {outcome}.",
    },
    "family.timeline.got_up": {"zh-CN": "起床", "en": "Got up"},
    "family.timeline.kitchen": {"zh-CN": "厨房活动（做饭/用餐）", "en": "Kitchen activity (meal)"},
    "family.timeline.went_out": {"zh-CN": "外出", "en": "Went out"},
    "family.timeline.night_bathroom": {"zh-CN": "夜间如厕", "en": "Night bathroom visit"},
    "family.timeline.in_bed": {"zh-CN": "上床休息", "en": "Went to bed"},
    "family.timeline.until": {"zh-CN": "至 {time}", "en": "until {time}"},
    "family.prefs": {"zh-CN": "通知设置", "en": "Notification preferences"},
    "family.prefs.safety": {
        "zh-CN": "安全警报（不能关闭，只能选择接收方式）",
        "en": "Safety alerts (cannot be switched off, only re-routed)",
    },
    "family.prefs.other": {"zh-CN": "其他通知", "en": "Other notifications"},
    "family.prefs.summary": {"zh-CN": "每日小结", "en": "Daily summary"},
    "family.prefs.summary_time": {"zh-CN": "发送时间", "en": "Time"},
    "family.prefs.nickname": {"zh-CN": "称呼（如：妈妈）", "en": "Call her (e.g. Mum)"},
    "family.prefs.save": {"zh-CN": "保存", "en": "Save"},
    "family.prefs.saved": {"zh-CN": "已保存", "en": "Saved"},
    "family.prefs.need_one": {
        "zh-CN": "安全警报至少要选择一种接收方式",
        "en": "Choose at least one channel for safety alerts",
    },
    "family.prefs.not_set_up": {"zh-CN": "（未登记）", "en": " (not set up)"},
    "family.prefs.unlinked": {
        "zh-CN": "此账户尚未关联到登记的联系人，设置暂不影响通知。请联系服务中心。",
        "en": "This account is not linked to a registered contact yet, so these choices "
        "do not change notifications. Please ask the service centre.",
    },
    "family.prefs.fallback": {
        "zh-CN": "所选方式都未登记时，安全警报会发到您登记的全部方式。",
        "en": "If none of the chosen channels is set up, safety alerts go to all of yours.",
    },
    "channel.sms": {"zh-CN": "短信", "en": "SMS"},
    "channel.wechat_work": {"zh-CN": "企业微信", "en": "WeChat Work"},
    "channel.email": {"zh-CN": "电子邮件", "en": "E-mail"},
    "channel.push": {"zh-CN": "推送", "en": "Push"},
    "channel.voice": {"zh-CN": "语音电话", "en": "Voice call"},
    "site_kind.home": {"zh-CN": "家庭养老床位", "en": "home-care bed"},
    "site_kind.institution": {"zh-CN": "养老机构", "en": "institution"},
    "contact_role.family": {"zh-CN": "家属", "en": "family"},
    "contact_role.neighbour": {"zh-CN": "邻居", "en": "neighbour"},
    "contact_role.responder": {"zh-CN": "响应人员", "en": "responder"},
    "contact_role.operator": {"zh-CN": "值班员", "en": "operator"},
    "contact_role.supervisor": {"zh-CN": "主管", "en": "supervisor"},
    "contact_role.doctor": {"zh-CN": "医生", "en": "doctor"},
    "flag.dementia": {"zh-CN": "认知障碍", "en": "dementia"},
    "flag.hypertension": {"zh-CN": "高血压", "en": "hypertension"},
    "flag.diabetes": {"zh-CN": "糖尿病", "en": "diabetes"},
    "flag.heart_disease": {"zh-CN": "心脏病", "en": "heart disease"},
    "flag.mobility": {"zh-CN": "行动不便", "en": "limited mobility"},
    "flag.lives_alone": {"zh-CN": "独居", "en": "lives alone"},
    "room_kind.bedroom": {"zh-CN": "卧室", "en": "bedroom"},
    "room_kind.bathroom": {"zh-CN": "卫生间", "en": "bathroom"},
    "room_kind.toilet": {"zh-CN": "厕所", "en": "toilet"},
    "room_kind.living": {"zh-CN": "客厅", "en": "living room"},
    "room_kind.kitchen": {"zh-CN": "厨房", "en": "kitchen"},
    "room_kind.entrance": {"zh-CN": "门厅", "en": "entrance"},
    "room_kind.hallway": {"zh-CN": "走廊", "en": "hallway"},
    "room_kind.dining": {"zh-CN": "餐厅", "en": "dining room"},
    "room_kind.balcony": {"zh-CN": "阳台", "en": "balcony"},
    "room_kind.corridor": {"zh-CN": "走廊", "en": "corridor"},
    "room_kind.other": {"zh-CN": "其他房间", "en": "other room"},
    "error.generic": {"zh-CN": "操作失败：{msg}", "en": "Failed: {msg}"},
    "lang.switch": {"zh-CN": "English", "en": "中文"},
}


def catalogue() -> dict[str, Any]:
    """{"zh-CN": {key: text}, "en": {...}} with kind.*, severity.*, handling.*, outcome.*."""
    out: dict[str, dict[str, str]] = {lang: {} for lang in terms.LANGUAGES}
    for lang in terms.LANGUAGES:
        for key, texts in UI.items():
            out[lang][key] = texts[lang]
        for kind in AlertKind:
            out[lang][f"kind.{kind.value}"] = terms.kind_term(kind, lang)
        for sev in Severity:
            out[lang][f"severity.{sev.value}"] = terms.severity_term(sev, lang)
        for status in terms.STATUS_TERMS:
            out[lang][f"handling.{status}"] = terms.status_term(status, lang)
        for outcome in terms.Outcome:
            out[lang][f"outcome.{outcome.value}"] = terms.outcome_term(outcome, lang)
    return out
