"""Structured logging: one line per event, key=value text or JSON."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any

_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None)))

# Secrets must never reach a log line, whoever logged them (us, apprise, uvicorn):
# credentials in URLs (Apprise, database, broker), bearer tokens, password/token fields.
_SECRET_PATTERNS = (
    # Notification URLs (wecombot://KEY, tgram://TOKEN/chat, ...) carry the secret in
    # the path itself: mask everything after the scheme of any non-infrastructure URL.
    (
        re.compile(
            r"(?i)(?<![a-z0-9+.-])(?!(?:https?|wss?|mqtts?|file|sqlite[a-z+]*|postgres[a-z+]*)://)"
            r"([a-z][a-z0-9+.-]*://)[^\s'\"]+"
        ),
        r"\1***",
    ),
    (re.compile(r"(?i)(?<![a-z0-9+.-])([a-z][a-z0-9+.-]*://)[^/\s@'\"]+@"), r"\1***@"),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 ***"),
    (
        re.compile(
            r"(?i)([\"']?(?:password|passwd|token|secret|apikey|api_key|authorization)[\"']?"
            r"\s*[:=]\s*[\"']?)[^\s\"'&,}]+"
        ),
        r"\1***",
    ),
)


def redact_secrets(text: str) -> str:
    """The text with credentials in URLs, bearer tokens and password fields masked."""
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class _Formatter(logging.Formatter):
    def __init__(self, as_json: bool) -> None:
        super().__init__()
        self.as_json = as_json

    def format(self, record: logging.LogRecord) -> str:
        extra = {k: v for k, v in vars(record).items() if k not in _RESERVED and k != "message"}
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        if self.as_json:
            doc: dict[str, Any] = {
                "ts": f"{ts}.{int(record.msecs):03d}Z",
                "level": record.levelname.lower(),
                "logger": record.name,
                "event": record.getMessage(),
                **extra,
            }
            if record.exc_info:
                doc["exc"] = self.formatException(record.exc_info)
            return redact_secrets(json.dumps(doc, ensure_ascii=False, default=str))
        kv = " ".join(f"{k}={v!r}" for k, v in extra.items())
        line = f"{ts}Z {record.levelname:<7} {record.name}: {record.getMessage()}"
        if kv:
            line += " " + kv
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return redact_secrets(line)


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(as_json=fmt == "json"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpcore", "aiosqlite", "asyncio", "apprise"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name)
