"""Request security: CSRF double-submit tokens, a login rate limiter, security headers (no database access)."""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import HTTPException, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSRF_SESSION_KEY = "csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none'; "
       "base-uri 'self'; form-action 'self'; frame-ancestors 'none'")

F = TypeVar("F", bound=Callable[..., Any])


def csrf_token(request: Request) -> str:
    """The session's CSRF token (made on first use); put it in forms as `csrf_token` or send `X-CSRF-Token`."""
    token = request.session.get(CSRF_SESSION_KEY)
    if not token:
        token = secrets.token_urlsafe(32)
        request.session[CSRF_SESSION_KEY] = token
    return str(token)


def csrf_exempt(endpoint: F) -> F:
    """Mark a route endpoint as needing no CSRF token (e.g. RFC 8058 one-click unsubscribe, which is signed)."""
    endpoint.csrf_exempt = True  # type: ignore[attr-defined]
    return endpoint


async def csrf_protect(request: Request) -> None:
    """App-wide dependency: an unsafe request must carry the session's token in a form field or header -> 403."""
    if request.method in SAFE_METHODS:
        return
    route = request.scope.get("route")
    if getattr(getattr(route, "endpoint", None), "csrf_exempt", False):
        return
    expected = request.session.get(CSRF_SESSION_KEY)
    sent = request.headers.get(CSRF_HEADER)
    if not sent:
        ctype = request.headers.get("content-type", "")
        if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()  # cached on the request: the endpoint's Form() parameters reuse it
            value = form.get(CSRF_FIELD)
            sent = value if isinstance(value, str) else None
    if not expected or not sent or not secrets.compare_digest(str(expected), sent):
        raise HTTPException(403, "CSRF token missing or invalid: reload the page and try again")


class SlidingWindowLimiter:
    """At most `limit` events per key within `window` seconds (in memory, thread-safe)."""

    def __init__(self, limit: int = 5, window: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> float | None:
        """Record an attempt; None when allowed, else the seconds until the next one is (the attempt is not kept)."""
        now = self.clock()
        with self._lock:
            events = self._events.setdefault(key, deque())
            while events and events[0] <= now - self.window:
                events.popleft()
            if len(events) >= self.limit:
                return max(0.0, events[0] + self.window - now)
            events.append(now)
            if len(self._events) > 10_000:  # drop idle keys so the table cannot grow without bound
                self._events = {k: v for k, v in self._events.items() if v and v[-1] > now - self.window}
            return None

    def reset(self, key: str) -> None:
        with self._lock:
            self._events.pop(key, None)


class SecurityHeadersMiddleware:
    """Adds CSP, nosniff, frame denial, referrer policy, and HSTS on https, to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                extra = {
                    b"content-security-policy": CSP.encode(),
                    b"x-content-type-options": b"nosniff",
                    b"x-frame-options": b"DENY",
                    b"referrer-policy": b"same-origin",
                }
                if https:
                    extra[b"strict-transport-security"] = b"max-age=31536000; includeSubDomains"
                headers += [(k, v) for k, v in extra.items() if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
