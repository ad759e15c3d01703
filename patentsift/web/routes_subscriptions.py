"""Organizations, contacts and subscriptions of the user's outlet (pages and /api/subscriptions), the digest
preview, and a subscriber's own page through a signed link (/manage: pause, resume, unsubscribe; /confirm)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from distribution.delivery import SmtpSettings, subscriber_links
from distribution.digest import Digest, build_digest
from distribution.render import RenderedDigest, render_digest
from index.base import Index
from patentsift.config import load_secret_key
from patentsift.web.auth import (
    CurrentUser,
    check_contact,
    check_organization,
    check_subscription,
    subscriber_from_token,
    visible_outlet_ids,
)
from patentsift.web.deps import get_cfg, get_index, get_session, templates
from patentsift.web.i18n import register_strings
from patentsift.web.routes_profiles import Store, visible_profiles
from subscribers import service
from subscribers.models import Organization, Outlet, StaffUser, Subscription
from subscribers.service import SubscriberError, describe
from subscribers.tokens import InvalidToken, make_token

router = APIRouter()
DbSession = Annotated[Session, Depends(get_session)]
DIGEST_CSP = ("sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
              "frame-ancestors 'self'; base-uri 'none'; form-action 'none'")

register_strings({
    "nav.subscriptions": {"en": "Subscriptions", "zh": "订阅"},
    "subs.title": {"en": "Organizations and subscriptions", "zh": "企业与订阅"},
    "subs.organizations": {"en": "Organizations", "zh": "企业"},
    "subs.new_org": {"en": "New organization", "zh": "新建企业"},
    "subs.outlet": {"en": "Outlet", "zh": "服务网点"},
    "subs.name": {"en": "Name", "zh": "名称"},
    "subs.contacts": {"en": "Contacts", "zh": "联系人"},
    "subs.new_contact": {"en": "Add contact", "zh": "添加联系人"},
    "subs.email": {"en": "E-mail", "zh": "电子邮箱"},
    "subs.language": {"en": "Language", "zh": "语言"},
    "subs.timezone": {"en": "Time zone", "zh": "时区"},
    "subs.subscriptions": {"en": "Subscriptions", "zh": "订阅"},
    "subs.new_sub": {"en": "New subscription", "zh": "新建订阅"},
    "subs.contact": {"en": "Contact", "zh": "联系人"},
    "subs.profiles": {"en": "Profiles", "zh": "关注主题"},
    "subs.frequency": {"en": "Frequency", "zh": "频率"},
    "subs.max_items": {"en": "Max items", "zh": "最多条数"},
    "subs.format": {"en": "Format", "zh": "格式"},
    "subs.auto_approve": {"en": "Auto-approve above", "zh": "自动通过阈值"},
    "subs.status": {"en": "Status", "zh": "状态"},
    "subs.pause": {"en": "Pause", "zh": "暂停"},
    "subs.resume": {"en": "Resume", "zh": "恢复"},
    "subs.unsubscribe": {"en": "Unsubscribe", "zh": "退订"},
    "subs.confirm": {"en": "Confirm subscription", "zh": "确认订阅"},
    "subs.preview": {"en": "Digest preview", "zh": "快讯预览"},
    "subs.add": {"en": "Add", "zh": "添加"},
    "subs.none": {"en": "None yet.", "zh": "暂无。"},
    "subs.created": {"en": "Subscription created; it becomes active once the contact confirms this link:",
                     "zh": "订阅已创建；联系人确认以下链接后生效："},
    "subs.items": {"en": "item(s)", "zh": "条"},
    "subs.subject": {"en": "Subject", "zh": "主题"},
    "manage.title": {"en": "Your subscription", "zh": "您的订阅"},
    "manage.done": {"en": "Saved.", "zh": "已保存。"},
    "manage.left": {"en": "You are unsubscribed and will receive no more digests.",
                    "zh": "您已退订，将不再收到快讯。"},
    "status.pending": {"en": "waiting for confirmation", "zh": "待确认"},
    "status.active": {"en": "active", "zh": "生效中"},
    "status.paused": {"en": "paused", "zh": "已暂停"},
    "status.unsubscribed": {"en": "unsubscribed", "zh": "已退订"},
})


def _secret(request: Request) -> str:
    return load_secret_key(request.app.state.cfg)


def _fail(exc: SubscriberError) -> HTTPException:
    return HTTPException(404 if isinstance(exc, LookupError) else 422, str(exc))


def _outlet_for_new(session: Session, user: StaffUser, outlet_id: int | None) -> int:
    """Staff create in their own outlet; an admin may name another."""
    if outlet_id is None or outlet_id == user.outlet_id:
        return user.outlet_id
    if visible_outlet_ids(user) is not None or session.get(Outlet, outlet_id) is None:
        raise HTTPException(404, f"no outlet with id {outlet_id}")
    return outlet_id


def _organizations(session: Session, user: StaffUser) -> list[Organization]:
    q = select(Organization).order_by(Organization.name)
    visible = visible_outlet_ids(user)
    if visible is not None:
        q = q.where(Organization.outlet_id.in_(visible))
    return list(session.scalars(q))


def _subscriptions(session: Session, user: StaffUser) -> list[Subscription]:
    return service.list_subscriptions(session, outlet_id=None if user.role == "admin" else user.outlet_id)


def _check_profiles(store: Any, user: StaffUser, names: list[str]) -> list[str]:
    """Profiles a subscription may follow: those the user sees (unknown or hidden ones answer 422)."""
    seen = {p.name for p in visible_profiles(store, user)}
    hidden = [n for n in names if n not in seen]
    if hidden:
        raise HTTPException(422, f"unknown profile(s): {', '.join(hidden)}")
    return names


def _create_subscription(request: Request, session: Session, store: Any, user: StaffUser, contact_id: int,
                         profiles: list[str], frequency: str, max_items: int, fmt: str,
                         auto_approve_above: float | None) -> tuple[Subscription, str]:
    check_contact(session, user, contact_id)
    _check_profiles(store, user, profiles)
    try:
        sub, token = service.subscribe(session, _secret(request), contact_id, profiles, frequency=frequency,
                                       max_items=max_items, format=fmt, auto_approve_above=auto_approve_above,
                                       detail=f"web:{user.email}")
    except SubscriberError as exc:
        raise _fail(exc) from None
    base = request.app.state.cfg.smtp.base_url.rstrip("/")
    return sub, f"{base}/confirm?token={token}"


def _change(session: Session, user: StaffUser, sub_id: int, action: str) -> Subscription:
    check_subscription(session, user, sub_id)
    try:
        return (service.pause if action == "pause" else service.resume)(session, sub_id, f"web:{user.email}")
    except SubscriberError as exc:
        raise _fail(exc) from None


def _render_preview(request: Request, session: Session, index: Index,
                    sub: Subscription) -> tuple[Digest, RenderedDigest]:
    """What the subscription's next digest would hold now (approved, unsent items); sends nothing."""
    digest = build_digest(session, sub, service.period_key(sub, datetime.now(UTC)), index)
    links = subscriber_links(SmtpSettings.from_config(get_cfg(request).smtp), _secret(request), sub.id)
    return digest, render_digest(digest, unsubscribe_url=links.unsubscribe_url, manage_url=links.manage_url,
                                 fmt=sub.format)


# --- API --------------------------------------------------------------------------------------------------------
class SubscriptionOut(BaseModel):
    id: int
    contact: str
    organization: str
    profiles: list[str]
    frequency: str
    max_items: int
    format: str
    status: str
    language: str
    timezone: str
    flagged: bool
    auto_approve_above: float | None
    confirmed_at: str | None


class SubscriptionIn(BaseModel):
    contact_id: int
    profiles: list[str] = Field(min_length=1)
    frequency: str = "weekly"
    max_items: int = 20
    format: Literal["html", "text"] = "html"
    auto_approve_above: float | None = None


class SubscriptionCreated(SubscriptionOut):
    confirm_url: str


class DigestPreviewOut(BaseModel):
    subscription_id: int
    subject: str
    items: int
    text: str
    html: str | None


@router.get("/api/subscriptions", response_model=list[SubscriptionOut], tags=["subscriptions"])
def api_subscriptions(user: CurrentUser, session: DbSession) -> list[SubscriptionOut]:
    return [SubscriptionOut(**describe(s)) for s in _subscriptions(session, user)]


@router.get("/api/subscriptions/{sub_id}", response_model=SubscriptionOut, tags=["subscriptions"])
def api_subscription(sub_id: int, user: CurrentUser, session: DbSession) -> SubscriptionOut:
    return SubscriptionOut(**describe(check_subscription(session, user, sub_id)))


@router.post("/api/subscriptions", response_model=SubscriptionCreated, status_code=201, tags=["subscriptions"])
def api_subscribe(request: Request, body: SubscriptionIn, user: CurrentUser, session: DbSession,
                  store: Store) -> SubscriptionCreated:
    sub, url = _create_subscription(request, session, store, user, body.contact_id, body.profiles, body.frequency,
                                    body.max_items, body.format, body.auto_approve_above)
    return SubscriptionCreated(**describe(sub), confirm_url=url)


@router.post("/api/subscriptions/{sub_id}/{action}", response_model=SubscriptionOut, tags=["subscriptions"])
def api_change(sub_id: int, action: Literal["pause", "resume"], user: CurrentUser,
               session: DbSession) -> SubscriptionOut:
    return SubscriptionOut(**describe(_change(session, user, sub_id, action)))


@router.get("/api/subscriptions/{sub_id}/digest/preview", response_model=DigestPreviewOut, tags=["subscriptions"])
def api_digest_preview(request: Request, sub_id: int, user: CurrentUser, session: DbSession,
                       index: Annotated[Index, Depends(get_index)]) -> DigestPreviewOut:
    sub = check_subscription(session, user, sub_id)
    digest, rendered = _render_preview(request, session, index, sub)
    return DigestPreviewOut(subscription_id=sub.id, subject=rendered.subject, text=rendered.text,
                            html=rendered.html, items=len(digest))


# --- staff pages ------------------------------------------------------------------------------------------------
@router.get("/subscriptions", include_in_schema=False)
def subscriptions_page(request: Request, user: CurrentUser, session: DbSession, store: Store,
                       confirm_url: str | None = None) -> Response:
    outlets = list(session.scalars(select(Outlet).order_by(Outlet.name))) if user.role == "admin" else []
    return templates.TemplateResponse(request, "subscriptions.html", {
        "organizations": _organizations(session, user), "subscriptions": _subscriptions(session, user),
        "profiles": [p.name for p in visible_profiles(store, user)], "outlets": outlets,
        "confirm_url": confirm_url})


@router.post("/organizations", include_in_schema=False)
def create_organization(user: CurrentUser, session: DbSession, name: Annotated[str, Form()],
                        outlet_id: Annotated[int | None, Form()] = None) -> Response:
    try:
        service.create_organization(session, _outlet_for_new(session, user, outlet_id), name)
    except SubscriberError as exc:
        raise _fail(exc) from None
    return RedirectResponse("/subscriptions", status_code=303)


@router.post("/organizations/{org_id}/contacts", include_in_schema=False)
def add_contact(org_id: int, user: CurrentUser, session: DbSession, email: Annotated[str, Form()],
                name: Annotated[str, Form()] = "", contact_language: Annotated[str, Form()] = "en",
                timezone: Annotated[str, Form()] = "UTC") -> Response:
    check_organization(session, user, org_id)
    try:
        service.add_contact(session, org_id, email, name, contact_language, timezone)
    except SubscriberError as exc:
        raise _fail(exc) from None
    return RedirectResponse("/subscriptions", status_code=303)


@router.post("/subscriptions", include_in_schema=False)
def create_subscription(request: Request, user: CurrentUser, session: DbSession, store: Store,
                        contact_id: Annotated[int, Form()], profiles: Annotated[list[str], Form()],
                        frequency: Annotated[str, Form()] = "weekly", max_items: Annotated[int, Form()] = 20,
                        format: Annotated[Literal["html", "text"], Form()] = "html",
                        auto_approve_above: Annotated[str, Form()] = "") -> Response:
    try:
        auto = float(auto_approve_above) if auto_approve_above.strip() else None
    except ValueError:
        raise HTTPException(422, f"auto-approve must be a score between 0 and 1, not {auto_approve_above!r}") \
            from None
    _, url = _create_subscription(request, session, store, user, contact_id, profiles, frequency, max_items, format,
                                  auto)
    from urllib.parse import quote

    return RedirectResponse(f"/subscriptions?confirm_url={quote(url, safe='')}", status_code=303)


@router.post("/subscriptions/{sub_id}/{action}", include_in_schema=False)
def change_subscription(sub_id: int, action: Literal["pause", "resume"], user: CurrentUser,
                        session: DbSession) -> Response:
    _change(session, user, sub_id, action)
    return RedirectResponse("/subscriptions", status_code=303)


@router.get("/subscriptions/{sub_id}/digest", include_in_schema=False)
def digest_preview_page(request: Request, sub_id: int, user: CurrentUser, session: DbSession,
                        index: Annotated[Index, Depends(get_index)]) -> Response:
    sub = check_subscription(session, user, sub_id)
    digest, rendered = _render_preview(request, session, index, sub)
    return templates.TemplateResponse(request, "digest_preview.html", {
        "sub": describe(sub), "items": len(digest), "subject": rendered.subject, "text": rendered.text, "has_html": bool(rendered.html)})


@router.get("/subscriptions/{sub_id}/digest/raw", include_in_schema=False)
def digest_preview_raw(request: Request, sub_id: int, user: CurrentUser, session: DbSession,
                       index: Annotated[Index, Depends(get_index)]) -> Response:
    """The digest HTML alone, for the preview page's iframe: a sandboxed document (CSP sandbox, no scripts)."""
    sub = check_subscription(session, user, sub_id)
    _, rendered = _render_preview(request, session, index, sub)
    return HTMLResponse(rendered.html or "", headers={"Content-Security-Policy": DIGEST_CSP,
                                                      "X-Frame-Options": "SAMEORIGIN"})


# --- the subscriber's own pages (signed links) ------------------------------------------------------------------
def _manage_page(request: Request, sub: Subscription, token: str, *, purpose: str, message: str | None = None,
                 status: int = 200) -> Response:
    c = sub.contact
    return templates.TemplateResponse(request, "subscription_manage.html", {
        "status_": sub.status, "email": c.email, "profiles": sub.profile_names, "frequency": sub.frequency,
        "token": token, "purpose": purpose, "message": message}, status_code=status)


@router.get("/manage", include_in_schema=False)
def manage_page(request: Request, token: str, session: DbSession) -> Response:
    sub = subscriber_from_token(request, token, session)
    return _manage_page(request, sub, token, purpose="manage")


@router.post("/manage", include_in_schema=False)
def manage(request: Request, session: DbSession, token: Annotated[str, Form()],
           action: Annotated[Literal["pause", "resume", "unsubscribe"], Form()]) -> Response:
    sub = subscriber_from_token(request, token, session)
    try:
        if action == "unsubscribe":  # the manage link proves who it is: end it as the unsubscribe link would
            service.unsubscribe(session, _secret(request), make_token(_secret(request), "unsubscribe", sub.id),
                                via="manage-link")
        else:
            (service.pause if action == "pause" else service.resume)(session, sub.id, "manage-link")
    except SubscriberError as exc:
        return _manage_page(request, sub, token, purpose="manage", message=str(exc), status=409)
    return _manage_page(request, sub, token, purpose="manage", message="manage.done")


@router.get("/confirm", include_in_schema=False)
def confirm_page(request: Request, token: str, session: DbSession) -> Response:
    """The double opt-in link: a page with a button (a GET never confirms: mail scanners follow links)."""
    from subscribers.tokens import read_token

    try:
        sub = service.get_subscription(session, read_token(_secret(request), "confirm", token))
    except (InvalidToken, SubscriberError) as exc:
        raise HTTPException(403 if isinstance(exc, InvalidToken) else 404, str(exc)) from None
    return _manage_page(request, sub, token, purpose="confirm")


@router.post("/confirm", include_in_schema=False)
def confirm(request: Request, session: DbSession, token: Annotated[str, Form()]) -> Response:
    try:
        sub = service.confirm(session, _secret(request), token, detail="link")
    except InvalidToken as exc:
        raise HTTPException(403, str(exc)) from None
    except SubscriberError as exc:
        raise _fail(exc) from None
    return _manage_page(request, sub, token, purpose="confirm", message="manage.done")
