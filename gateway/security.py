"""Browser-facing defences applied to every request: security headers and protection
against cross-site request forgery (CSRF) for cookie sessions.

CSRF: a request that changes state (POST, PUT, PATCH, DELETE) and is authenticated
by the session cookie must carry `X-CSRF-Token`, equal to a value derived from the
session token. The login response sets it as a readable `eldercare_csrf` cookie (and
`/api/auth/me` re-sets it), so the pages' script can echo it; another site can
neither read the cookie nor forge the value. An `Origin` of another site is refused
outright. Bearer-token requests are exempt: a browser never attaches those by itself.

Headers: a Content-Security-Policy without inline script (the pages load their
scripts and styles from /static), no MIME sniffing, no framing, a same-origin
referrer, no powerful browser features, and HSTS when served over https (the
request's scheme, or a `public_url` starting with https:// behind a proxy).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlsplit

from gateway.auth import SESSION_COOKIE

CSRF_COOKIE = "eldercare_csrf"
CSRF_HEADER = "x-csrf-token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Signing in has no session yet; the Origin check still applies to it.
CSRF_EXEMPT_PATHS = frozenset({"/api/auth/login"})

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Permissions-Policy": (
        "camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()"
    ),
    "Cross-Origin-Opener-Policy": "same-origin",
}
HSTS = "max-age=31536000; includeSubDomains"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def csrf_token_for(session_token: str) -> str:
    """The CSRF value of a session: derived, so nothing more is stored, and useless
    without the (HttpOnly) session cookie it belongs to."""
    return hashlib.sha256(b"eldercare-csrf\0" + session_token.encode()).hexdigest()[:43]


def origin_of(url: str) -> str | None:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def csrf_refusal(
    *,
    method: str,
    path: str,
    origin: str | None,
    own_origins: frozenset[str],
    bearer: bool,
    session_cookie: str | None,
    csrf_header: str | None,
) -> str | None:
    """Why a request must be refused as cross-site, or None to let it through."""
    if method.upper() not in UNSAFE_METHODS or bearer:
        return None
    if origin is not None and origin.lower() not in own_origins:
        return "cross-site request refused (Origin)"
    if session_cookie is None or path in CSRF_EXEMPT_PATHS:
        return None
    expected = csrf_token_for(session_cookie)
    if csrf_header is None or not hmac.compare_digest(csrf_header.encode(), expected.encode()):
        return "missing or wrong X-CSRF-Token for a cookie session"
    return None


class BrowserSecurity:
    """Pure ASGI middleware (it must not buffer the live stream)."""

    def __init__(self, app: ASGIApp, *, public_url: str) -> None:
        self.app = app
        public = origin_of(public_url)
        self.public_origin = public
        self.hsts_always = public_url.lower().startswith("https://")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        scheme = scope.get("scheme", "http")
        own = {f"{scheme}://{headers.get('host', '').lower()}"}
        if self.public_origin:
            own.add(self.public_origin)
        cookies = SimpleCookie()
        try:
            cookies.load(headers.get("cookie", ""))
        except Exception:  # a malformed Cookie header is simply no session
            cookies = SimpleCookie()
        session = cookies[SESSION_COOKIE].value if SESSION_COOKIE in cookies else None
        auth = headers.get("authorization", "")
        scheme_name, _, value = auth.partition(" ")
        refusal = csrf_refusal(
            method=scope["method"],
            path=scope["path"],
            origin=headers.get("origin"),
            own_origins=frozenset(own),
            bearer=scheme_name.lower() == "bearer" and bool(value.strip()),
            session_cookie=session,
            csrf_header=headers.get(CSRF_HEADER),
        )
        extra = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
        if self.hsts_always or scheme == "https":
            extra.append((b"strict-transport-security", HSTS.encode()))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (k, v) for k, v in extra if k not in present
                ]
            await send(message)

        if refusal is not None:
            body = json.dumps({"detail": refusal}).encode()
            await send_with_headers(
                {
                    "type": "http.response.start",
                    "status": 403,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send_with_headers)
