"""Sending one message to one Apprise URL, with a time limit.

Apprise's `notify` is synchronous, so it runs on a thread pool of its own: a slow
or dead channel occupies its threads, never the event loop, and the caller's
per-send timeout bounds how long any message waits for it.

The Chinese SMS and voice providers (`alerts.channels`) are Apprise plugins that
take template variables and tell more than "sent": the sender hands them the
variables and returns their receipt (a call id to ask about later, ...).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Literal, Protocol

import apprise

from alerts import channels
from alerts.channels.base import ProviderPlugin
from alerts.channels.templates import TemplateParams
from alerts.outcomes import Receipt
from eldercare.errors import EldercareError


class DeliveryError(EldercareError, RuntimeError):
    """A message was not delivered; the text says why (kept in the notification log)."""


# Apprise's notification types: services that show them (a colour, an icon, a JSON
# `type` field a receiving integration can route on) tell an emergency from a summary.
NotifyType = Literal["info", "success", "warning", "failure"]
_BY_SEVERITY: dict[str, NotifyType] = {
    "critical": "failure",
    "high": "failure",
    "medium": "warning",
    "warning": "warning",
    "info": "info",
}


def notify_type(purpose: str, severity: str | None) -> NotifyType:
    """An alert by its severity; a follow-up ("handled, resident fine") is good news;
    anything else (a daily summary) is information."""
    if purpose == "alert" and severity is not None:
        return _BY_SEVERITY.get(severity, "warning")
    return "success" if purpose == "followup" else "info"


class NotificationSender(Protocol):
    async def send(
        self,
        url: str,
        title: str,
        body: str,
        timeout_s: float,
        kind: NotifyType = "info",
        params: TemplateParams | None = None,
    ) -> Receipt | None:
        """Deliver or raise `DeliveryError`; a receipt when the channel gives one."""
        ...


class AppriseSender:
    def __init__(self, max_threads: int = 16) -> None:
        self.max_threads = max_threads
        self._executor: ThreadPoolExecutor | None = None

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:  # created on first use, again after close()
            self._executor = ThreadPoolExecutor(self.max_threads, thread_name_prefix="apprise")
        return self._executor

    async def warm(self) -> None:
        """Load Apprise's plugin table now, on a pool thread, instead of in the first send."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._pool(), _load_plugins)

    async def send(
        self,
        url: str,
        title: str,
        body: str,
        timeout_s: float,
        kind: NotifyType = "info",
        params: TemplateParams | None = None,
    ) -> Receipt | None:
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._pool(), _send_blocking, url, title, body, kind, params)
        try:
            return await asyncio.wait_for(future, timeout_s)
        except TimeoutError as exc:
            raise DeliveryError(f"no answer within {timeout_s:g} s") from exc

    async def query(self, url: str, ref: str, sent_at: float, timeout_s: float) -> Receipt | None:
        """Ask the provider behind `url` what became of an earlier send (None: not yet
        known, or the channel cannot be asked)."""
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._pool(), _query_blocking, url, ref, sent_at)
        try:
            return await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            return None

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


def _load_plugins() -> None:
    # Parsing any URL makes Apprise import and index every plugin, once per process.
    channels.register()
    apprise.Apprise().add("json://localhost/")


def _send_blocking(
    url: str, title: str, body: str, kind: NotifyType, params: TemplateParams | None
) -> Receipt | None:
    channels.register()
    plugin = apprise.Apprise.instantiate(url)
    if plugin is None:
        raise DeliveryError("not a valid Apprise URL")
    if isinstance(plugin, ProviderPlugin):
        plugin.template_params = params
        if not plugin.notify(body=body, title=title, notify_type=apprise.NotifyType(kind)):
            raise DeliveryError(getattr(plugin, "last_error", None) or "the provider refused")
        return plugin.receipts[-1] if plugin.receipts else None
    client = apprise.Apprise()
    client.add(plugin)
    if not client.notify(body=body, title=title, notify_type=apprise.NotifyType(kind)):
        raise DeliveryError("the channel refused or could not be reached (apprise)")
    return None


def _query_blocking(url: str, ref: str, sent_at: float) -> Receipt | None:
    channels.register()
    plugin = apprise.Apprise.instantiate(url)
    if not isinstance(plugin, ProviderPlugin):
        return None
    return plugin.query(ref, sent_at)
