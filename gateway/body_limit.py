"""A limit on request bodies, enforced while they stream in.

Every request body is counted as it arrives: a declared `Content-Length` over the
limit is refused before a byte is read, and a chunked body is cut off with 413 as
soon as it passes the limit, so an unauthenticated 200 MB upload costs the limit,
not 200 MB of memory. JSON endpoints get a few hundred kB; the few that need more
(a whole site replaced at once) name their own limit.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from starlette.exceptions import HTTPException

from gateway.security import ASGIApp, Message, Receive, Scope, Send

DEFAULT_LIMIT = 256 * 1024
# A whole site (an institution's hundreds of beds and devices) replaced in one PUT.
SITE_LIMIT = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class PathLimit:
    method: str
    path: re.Pattern[str]
    limit: int


LARGER_LIMITS: tuple[PathLimit, ...] = (
    PathLimit("PUT", re.compile(r"^/api/sites/[^/]+$"), SITE_LIMIT),
)


def too_large_detail(limit: int) -> str:
    return f"request body too large: at most {limit} bytes ({limit // 1024} kB) here"


class BodyLimit:
    """ASGI middleware: 413 for bodies over the limit of their method and path."""

    def __init__(
        self,
        app: ASGIApp,
        default: int = DEFAULT_LIMIT,
        larger: Sequence[PathLimit] = LARGER_LIMITS,
    ) -> None:
        self.app = app
        self.default = default
        self.larger = tuple(larger)

    def limit_for(self, method: str, path: str) -> int:
        for rule in self.larger:
            if rule.method == method and rule.path.match(path):
                return rule.limit
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["method"], scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(send, limit)
            return
        seen = 0
        cut_off = False

        async def counted() -> Message:
            nonlocal seen, cut_off
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    cut_off = True
                    # FastAPI passes an HTTPException raised while reading the body
                    # through as the response; nothing more of the body is read.
                    raise HTTPException(413, too_large_detail(limit))
            return message

        async def closing(message: Message) -> None:
            if cut_off and message["type"] == "http.response.start":
                # Close the connection after the 413, so the server stops reading (and
                # discarding) the rest of the body.
                message["headers"] = [*message.get("headers", []), (b"connection", b"close")]
            await send(message)

        await self.app(scope, counted, closing)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _refuse(send: Send, limit: int) -> None:
    body = json.dumps({"detail": too_large_detail(limit)}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
