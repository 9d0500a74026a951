"""Apprise plugins for Chinese SMS and voice providers, through their official SDKs.

    aliyunsms://KEY_ID:SECRET@TEMPLATE_CODE/PHONE[/PHONE...]?sign=签名
    aliyunvoice://KEY_ID:SECRET@TTS_CODE/PHONE?show=CALLED_SHOW_NUMBER
    tencentsms://SECRET_ID:SECRET_KEY@SDK_APP_ID/PHONE?sign=签名&template=TEMPLATE_ID
    tencentvoice://SECRET_ID:SECRET_KEY@VOICE_SDK_APP_ID/PHONE?template=TEMPLATE_ID

Secrets may instead come from files (`key_file=`, `secret_file=`, as Docker or
systemd secrets are mounted); `endpoint=host:port&protocol=http` points the SDK at
another endpoint (a private gateway, or the test session's local provider).
`register()` adds the plugins to Apprise once per process; see docs/notifications.md.
"""

from __future__ import annotations

import threading

from alerts.channels.aliyun import NotifyAliyunSms, NotifyAliyunVoice
from alerts.channels.tencent import NotifyTencentSms, NotifyTencentVoice

PLUGINS = (NotifyAliyunSms, NotifyAliyunVoice, NotifyTencentSms, NotifyTencentVoice)
_registered = False
_lock = threading.Lock()


def register() -> None:
    """Make the four schemes known to Apprise (idempotent, thread safe)."""
    global _registered
    with _lock:
        if _registered:
            return
        from apprise.manager_plugins import NotificationManager

        manager = NotificationManager()
        for plugin in PLUGINS:
            manager.add(plugin, force=True)
        _registered = True
