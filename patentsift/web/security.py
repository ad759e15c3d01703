"""Request security: CSRF double-submit tokens, the login throttle, the client address behind trusted proxies,
a bounded pool for password hashing, security headers (no database access)."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import secrets
import threading
import time
import unicodedata
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
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

    def release(self, key: str) -> None:
        """Take back the latest attempt of `key` (a login that succeeded does not count against its address)."""
        with self._lock:
            events = self._events.get(key)
            if events:
                events.pop()


# --- the login throttle ----------------------------------------------------------------------------------------
ACCOUNT_LIMIT, ACCOUNT_WINDOW = 5, 60.0  # attempts per account (however spelled, from anywhere) per window
ADDRESS_LIMIT, ADDRESS_WINDOW = 30, 60.0  # failed or pending attempts per client address per window


def account_key(email: str, normalize: Callable[[str], str]) -> str:
    """The throttle key of a login name: the lookup's own normalization (`normalize`, which folds case, full-width
    forms and the ideographic full stop), else (not an address at all) the NFKC case-folded text."""
    try:
        return "account:" + normalize(email)
    except ValueError:
        return "account?:" + unicodedata.normalize("NFKC", email).strip().casefold()


class LoginThrottle:
    """Two sliding windows checked on every attempt: one per account, one per client address. An attempt is
    counted before the password is checked (parallel attempts cannot slip through); a successful login clears the
    account's count and takes its attempt back from the address's."""

    def __init__(self, account_limit: int = ACCOUNT_LIMIT, address_limit: int = ADDRESS_LIMIT,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.accounts = SlidingWindowLimiter(account_limit, ACCOUNT_WINDOW, clock)
        self.addresses = SlidingWindowLimiter(address_limit, ADDRESS_WINDOW, clock)

    def attempt(self, account: str, address: str) -> float | None:
        """None when the attempt may go on, else the seconds to wait (the attempt is refused)."""
        wait = self.addresses.hit("addr:" + address)
        if wait is not None:
            return wait
        wait = self.accounts.hit(account)
        if wait is not None:
            self.addresses.release("addr:" + address)
        return wait

    def succeeded(self, account: str, address: str) -> None:
        self.accounts.reset(account)
        self.addresses.release("addr:" + address)


# --- the client address ----------------------------------------------------------------------------------------
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_trusted_proxies(values: Iterable[str]) -> tuple[Network, ...]:
    """`trusted_proxies` as networks (an address is a /32 or /128); a value that is neither raises ValueError
    naming it (the caller turns it into a ConfigError)."""
    out: list[Network] = []
    for value in values:
        try:
            out.append(ipaddress.ip_network(str(value).strip(), strict=False))
        except ValueError:
            raise ValueError(f"trusted_proxies: {value!r} is not an IP address or network (e.g. 10.0.0.5, "
                             "10.0.0.0/8, ::1)") from None
    return tuple(out)


def _is_trusted(host: str, trusted: tuple[Network, ...]) -> bool:
    try:
        address = ipaddress.ip_address(host.strip().strip("[]"))
    except ValueError:
        return False
    return any(address in net for net in trusted)


def forwarded_client(peer: str | None, forwarded_for: str | None, trusted: tuple[Network, ...]) -> str | None:
    """The client address: the peer, unless the peer is a trusted proxy; then the rightmost `X-Forwarded-For`
    entry that is not itself a trusted proxy (entries left of it are the client's own claims)."""
    if not peer or not trusted or not forwarded_for or not _is_trusted(peer, trusted):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted):
            return hop
    return hops[0] if hops else peer


class TrustedProxyMiddleware:
    """Sets the ASGI `client` (and `scheme`, from `X-Forwarded-Proto`) from the proxy headers, but only for
    requests whose peer is one of the configured trusted proxies; every other request keeps its real peer."""

    def __init__(self, app: ASGIApp, trusted: tuple[Network, ...]) -> None:
        self.app, self.trusted = app, trusted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and self.trusted:
            peer = scope.get("client")
            if peer and _is_trusted(str(peer[0]), self.trusted):
                headers = [(k.lower(), v.decode("latin-1")) for k, v in scope.get("headers", [])]
                xff = ", ".join(v for k, v in headers if k == b"x-forwarded-for")
                client = forwarded_client(str(peer[0]), xff, self.trusted)
                proto = next((v for k, v in reversed(headers) if k == b"x-forwarded-proto"), "")
                proto = proto.split(",")[0].strip().lower()
                if client and client != peer[0]:
                    scope["client"] = (client, 0)
                if proto in ("http", "https"):
                    scope["scheme"] = proto if scope["type"] == "http" else proto.replace("http", "ws")
        await self.app(scope, receive, send)


def client_address(request: Request) -> str:
    """The client's address as the app sees it (TrustedProxyMiddleware has already applied trusted headers)."""
    return request.client.host if request.client else "unknown"


# --- password hashing off the event loop -----------------------------------------------------------------------
PASSWORD_WORKERS = max(1, min(4, (os.cpu_count() or 2) // 2))  # argon2 is CPU- and memory-heavy: a few at once
_password_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()

R = TypeVar("R")


def password_pool() -> ThreadPoolExecutor:
    """The process's bounded pool for argon2 work: at most PASSWORD_WORKERS hashes run at once, whatever the
    number of parallel logins (the others wait in its queue, holding neither the event loop nor a request thread)."""
    global _password_pool
    with _pool_lock:
        if _password_pool is None:
            _password_pool = ThreadPoolExecutor(max_workers=PASSWORD_WORKERS, thread_name_prefix="password")
        return _password_pool


async def run_password_work(fn: Callable[..., R], *args: Any) -> R:
    """Run `fn(*args)` (an argon2 hash or verification) in the bounded password pool and await it."""
    return await asyncio.get_running_loop().run_in_executor(password_pool(), fn, *args)


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
