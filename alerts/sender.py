"""Sending one message to one Apprise URL, with a time limit.

Apprise's `notify` is synchronous, so it runs on a thread pool of its own: a slow
or dead channel occupies its threads, never the event loop, and the caller's
per-send timeout bounds how long any message waits for it.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Literal, Protocol

import apprise

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
        self, url: str, title: str, body: str, timeout_s: float, kind: NotifyType = "info"
    ) -> None:
        """Deliver or raise `DeliveryError`."""
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
        self, url: str, title: str, body: str, timeout_s: float, kind: NotifyType = "info"
    ) -> None:
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._pool(), _send_blocking, url, title, body, kind)
        try:
            ok = await asyncio.wait_for(future, timeout_s)
        except TimeoutError as exc:
            raise DeliveryError(f"no answer within {timeout_s:g} s") from exc
        if not ok:
            raise DeliveryError("the channel refused or could not be reached (apprise)")

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


def _load_plugins() -> None:
    # Parsing any URL makes Apprise import and index every plugin, once per process.
    apprise.Apprise().add("json://localhost/")


def _send_blocking(url: str, title: str, body: str, kind: NotifyType) -> bool:
    client = apprise.Apprise()
    if not client.add(url):
        raise DeliveryError("not a valid Apprise URL")
    return bool(client.notify(body=body, title=title, notify_type=apprise.NotifyType(kind)))
