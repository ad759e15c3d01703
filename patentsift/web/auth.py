"""Staff login/logout, the signed session, and the authorization helpers every route uses.

Sessions live in Starlette's signed cookie (SessionMiddleware, set up in app.py): `uid` is the staff user's id,
`csrf` the double-submit token. Staff see only their own outlet's organizations and subscriptions; an admin
sees every outlet. An object outside the user's outlet answers 404, exactly like one that does not exist.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from patentsift.config import load_secret_key
from patentsift.web.deps import get_session, templates
from patentsift.web.security import CSRF_SESSION_KEY, SlidingWindowLimiter, csrf_token
from subscribers.models import Contact, Organization, StaffUser, Subscription
from subscribers.service import InvalidEmail, authenticate
from subscribers.tokens import InvalidToken, read_token

router = APIRouter()
LOGIN_LIMIT, LOGIN_WINDOW = 5, 60.0  # attempts per (client address, e-mail) per window seconds
_dummy_hash: str | None = None


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


def current_user(request: Request, session: Annotated[Session, Depends(get_session)]) -> StaffUser:
    """The logged-in, active staff user (also set as request.state.user for templates); else LoginRequired."""
    uid = request.session.get("uid")
    user = session.get(StaffUser, uid) if isinstance(uid, int) else None
    if user is None or not user.active:
        if uid is not None:
            request.session.pop("uid", None)
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


def _burn_time(password: str) -> None:
    """Verify against a dummy hash so an unknown address takes as long as a wrong password."""
    global _dummy_hash
    hasher = PasswordHasher()
    if _dummy_hash is None:
        _dummy_hash = hasher.hash("not-a-password")
    try:
        hasher.verify(_dummy_hash, password)
    except VerificationError:
        pass


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.get("/login", include_in_schema=False)
def login_form(request: Request, next: str | None = None) -> Response:
    csrf_token(request)
    return templates.TemplateResponse(request, "login.html", {"next": safe_next(next), "error": None})


@router.post("/login", include_in_schema=False)
def login(request: Request, session: Annotated[Session, Depends(get_session)],
          email: Annotated[str, Form()], password: Annotated[str, Form()],
          next: Annotated[str | None, Form()] = None) -> Response:
    limiter: SlidingWindowLimiter = request.app.state.login_limiter
    key = f"{_client(request)}|{email.strip().lower()}"
    wait = limiter.hit(key)
    if wait is not None:
        response = templates.TemplateResponse(request, "login.html", {"next": safe_next(next),
                                                                      "error": "login.throttled"}, status_code=429)
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    try:
        user = authenticate(session, email, password)
    except InvalidEmail:
        user = None
    if user is None:
        _burn_time(password)
        return templates.TemplateResponse(request, "login.html", {"next": safe_next(next), "error": "login.failed"},
                                          status_code=400)
    limiter.reset(key)
    lang = request.session.get("lang")
    request.session.clear()  # a fresh session (and CSRF token) on every login
    request.session.update({"uid": user.id, "login_at": int(time.time())})
    if lang:
        request.session["lang"] = lang
    csrf_token(request)
    return RedirectResponse(safe_next(next), status_code=303)


@router.post("/logout", include_in_schema=False)
def logout(request: Request) -> Response:
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
