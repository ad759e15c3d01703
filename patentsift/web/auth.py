"""Staff login/logout, the server-side session, and the authorization helpers every route uses.

The signed session cookie (Starlette's SessionMiddleware, set up in app.py) carries `sid`, the token of a
server-side session row (patentsift/web/sessions.py: revocable, with idle and absolute lifetimes), `csrf` the
double-submit token and `lang`. Staff see only their own outlet's organizations and subscriptions; an admin sees
every outlet. An object outside the user's outlet answers 404, exactly like one that does not exist.

Login holds under attack: attempts are throttled per account (the lookup's own address folding) and per client
address (behind trusted proxies only: security.TrustedProxyMiddleware); every path costs exactly one argon2
verification (an unknown address is checked against a dummy hash); argon2 runs in a small bounded thread pool,
never on the event loop nor in the request threads that searches need.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from db import Database
from patentsift.config import load_secret_key
from patentsift.web.deps import get_session, templates
from patentsift.web.security import (
    CSRF_SESSION_KEY,
    LoginThrottle,
    account_key,
    client_address,
    csrf_token,
    run_password_work,
)
from patentsift.web.sessions import SESSION_ID_KEY, SessionStore
from subscribers.models import Contact, Organization, StaffUser, Subscription
from subscribers.service import find_staff, hash_password, needs_rehash, normalize_email, password_matches
from subscribers.tokens import InvalidToken, read_token

router = APIRouter()


class LoginRequired(HTTPException):
    """No (valid) session: HTML requests are redirected to /login, /api requests get JSON 401 (see app.py)."""

    def __init__(self) -> None:
        super().__init__(401, "not logged in")


@dataclass(frozen=True)
class UserView:
    """What pages show of the logged-in user (request.state.user): outlives the request's DB session, so error
    pages rendered after a rollback still have it."""

    id: int
    email: str
    name: str
    role: str
    outlet_id: int


def is_api(request: Request) -> bool:
    return request.url.path == "/api" or request.url.path.startswith("/api/")


def session_store(request: Request) -> SessionStore:
    return request.app.state.sessions


def current_user(request: Request, session: Annotated[Session, Depends(get_session)]) -> StaffUser:
    """The staff user of a live server-side session (also set as request.state.user for templates); else
    LoginRequired (and the dead session id leaves the cookie)."""
    store, token = session_store(request), request.session.get(SESSION_ID_KEY)
    user, touch = store.resolve(session, token)
    if (user is None and token is not None) or touch:
        # in a short transaction of its own: the request's may roll back, and must not hold a write lock
        with request.app.state.system.database.begin() as own:
            if user is None:
                store.end(own, token)  # a dead session stays dead (re-activating the user does not revive it)
            else:
                store.touch(own, str(token))
    if user is None:
        for key in (SESSION_ID_KEY, "uid", "login_at"):  # uid/login_at: cookies from before server-side sessions
            request.session.pop(key, None)
        raise LoginRequired()
    request.state.user = UserView(user.id, user.email, user.name, user.role, user.outlet_id)
    return user


def require_admin(user: Annotated[StaffUser, Depends(current_user)]) -> StaffUser:
    if user.role != "admin":
        raise HTTPException(403, "this needs an administrator")
    return user


CurrentUser = Annotated[StaffUser, Depends(current_user)]
AdminUser = Annotated[StaffUser, Depends(require_admin)]


# --- authorization ---------------------------------------------------------------------------------------------
def visible_outlet_ids(user: StaffUser) -> frozenset[int] | None:
    """The outlets whose data `user` may see: None means every outlet (admin); staff get their own outlet."""
    return None if user.role == "admin" else frozenset({user.outlet_id})


def can_see_outlet(user: StaffUser, outlet_id: int) -> bool:
    visible = visible_outlet_ids(user)
    return visible is None or outlet_id in visible


def _not_found(what: str, ref: int) -> HTTPException:
    return HTTPException(404, f"no {what} with id {ref}")


def check_organization(session: Session, user: StaffUser, org_id: int) -> Organization:
    """The organization if `user` may see it; 404 when it does not exist or belongs to another outlet."""
    org = session.get(Organization, org_id)
    if org is None or not can_see_outlet(user, org.outlet_id):
        raise _not_found("organization", org_id)
    return org


def check_contact(session: Session, user: StaffUser, contact_id: int) -> Contact:
    contact = session.get(Contact, contact_id)
    if contact is None or not can_see_outlet(user, contact.organization.outlet_id):
        raise _not_found("contact", contact_id)
    return contact


def check_subscription(session: Session, user: StaffUser, sub_id: int) -> Subscription:
    """The subscription if `user` may see it (through its contact's organization's outlet); else 404."""
    sub = session.get(Subscription, sub_id)
    if sub is None or not can_see_outlet(user, sub.contact.organization.outlet_id):
        raise _not_found("subscription", sub_id)
    return sub


def subscription_id_from_token(request: Request, token: str) -> int:
    """The subscription a signed 'manage' link names; 403 with the reason when it is bad or expired."""
    try:
        return read_token(load_secret_key(request.app.state.cfg), "manage", token)
    except InvalidToken as exc:
        raise HTTPException(403, str(exc)) from None


def subscriber_from_token(request: Request, token: str,
                          session: Annotated[Session, Depends(get_session)]) -> Subscription:
    """The one subscription a subscriber's signed 'manage' link gives access to (usable as a dependency with a
    `token` path or query parameter, or called directly)."""
    sub_id = subscription_id_from_token(request, token)
    sub = session.get(Subscription, sub_id)
    if sub is None:
        raise _not_found("subscription", sub_id)
    return sub


# --- login and logout ------------------------------------------------------------------------------------------
def safe_next(target: str | None) -> str:
    """A local path to go to after login (never another site: no scheme, no `//host`)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/search"
    return target


@router.get("/login", include_in_schema=False)
def login_form(request: Request, next: str | None = None) -> Response:
    csrf_token(request)
    return templates.TemplateResponse(request, "login.html", {"next": safe_next(next), "error": None})


@dataclass(frozen=True)
class _Account:
    id: int
    password_hash: str
    active: bool


def _lookup(db: Database, email: str) -> _Account | None:
    with db.begin() as s:
        user = find_staff(s, email)
        return _Account(user.id, user.password_hash, user.active) if user is not None else None


def _start_session(request: Request, account: _Account, new_hash: str | None) -> bool:
    """Open the server-side session (storing an upgraded hash first); False when the user changed meanwhile."""
    with request.app.state.system.database.begin() as s:
        user = s.get(StaffUser, account.id)
        if user is None or not user.active or user.password_hash != account.password_hash:
            return False
        if new_hash is not None:
            user.password_hash = new_hash
        store = session_store(request)
        store.end(s, request.session.get(SESSION_ID_KEY))  # a login replaces the session the browser had
        token = store.start(s, user)
    lang = request.session.get("lang")
    request.session.clear()  # a fresh cookie (and CSRF token) on every login
    request.session[SESSION_ID_KEY] = token
    if lang:
        request.session["lang"] = lang
    csrf_token(request)
    return True


def _login_page(request: Request, next: str | None, error: str, status: int) -> Response:
    return templates.TemplateResponse(request, "login.html", {"next": safe_next(next), "error": error},
                                      status_code=status)


@router.post("/login", include_in_schema=False)
async def login(request: Request, email: Annotated[str, Form()], password: Annotated[str, Form()],
                next: Annotated[str | None, Form()] = None) -> Response:
    throttle: LoginThrottle = request.app.state.login_throttle
    account_id, address = account_key(email, normalize_email), client_address(request)
    wait = throttle.attempt(account_id, address)
    if wait is not None:
        response = _login_page(request, next, "login.throttled", 429)
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    account = await run_in_threadpool(_lookup, request.app.state.system.database, email)
    ok = await run_password_work(password_matches, account.password_hash if account else None, password)
    if ok and account is not None and account.active:
        new_hash = None
        if needs_rehash(account.password_hash):
            new_hash = await run_password_work(hash_password, password)
        if await run_in_threadpool(_start_session, request, account, new_hash):
            throttle.succeeded(account_id, address)
            return RedirectResponse(safe_next(next), status_code=303)
    return _login_page(request, next, "login.failed", 400)


@router.post("/logout", include_in_schema=False)
def logout(request: Request, session: Annotated[Session, Depends(get_session)]) -> Response:
    """End the server-side session: the cookie, even a copy taken earlier, logs in no more."""
    session_store(request).end(session, request.session.get(SESSION_ID_KEY))
    lang = request.session.get("lang")
    request.session.clear()
    if lang:
        request.session["lang"] = lang
    return RedirectResponse("/login", status_code=303)


@router.get("/lang/{code}", include_in_schema=False)
def set_language(request: Request, code: str, next: str | None = None) -> Response:
    """Switch the UI language (a display preference kept in the session) and go back."""
    from patentsift.web.i18n import LANGUAGES

    if code in LANGUAGES:
        request.session["lang"] = code
    return RedirectResponse(safe_next(next), status_code=303)


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


__all__ = [
    "CSRF_SESSION_KEY", "AdminUser", "CurrentUser", "LoginRequired", "check_contact", "check_organization",
    "check_subscription", "current_user", "is_api", "login_redirect", "require_admin", "router",
    "subscriber_from_token", "subscription_id_from_token", "visible_outlet_ids",
]
