"""Organizations, contacts and subscriptions of the user's outlet (pages and /api/subscriptions), the digest
preview, the confirmation message (mailed on creation, resent on request) and un-flagging a contact. The
subscriber's own pages (signed links, no login) are in routes_public.py."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from db import Database
from distribution import urls
from distribution.delivery import SmtpSettings
from distribution.digest import Digest, build_digest
from distribution.message import render_for
from distribution.render import RenderedDigest
from index.base import Index
from patentsift.web.auth import (
    CurrentUser,
    can_see_outlet,
    check_contact,
    check_organization,
    check_subscription,
    visible_outlet_ids,
)
from patentsift.web.deps import get_cfg, get_db, get_index, get_session, templates
from patentsift.web.i18n import register_strings
from patentsift.web.routes_profiles import Store, visible_profiles
from subscribers import service
from subscribers.models import Organization, Outlet, StaffUser, Subscription
from subscribers.service import SubscriberError, describe

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
    "subs.mailed": {"en": "The confirmation message was mailed to the contact.", "zh": "确认邮件已发送给联系人。"},
    "subs.mail_error": {"en": "The confirmation message was not sent (the subscription stays pending; resend it "
                              "once mail works):",
                        "zh": "确认邮件未能发送（订阅仍待确认，邮件恢复后请重新发送）："},
    "subs.resend": {"en": "Resend confirmation", "zh": "重发确认邮件"},
    "subs.unflag": {"en": "Un-flag", "zh": "解除标记"},
    "subs.unflagged": {"en": "The contact is un-flagged: digests go to it again from the next run.",
                       "zh": "已解除该联系人的标记，下次运行起将恢复推送。"},
    "subs.send_when_empty": {"en": "Send even when there is nothing new", "zh": "无新内容时也发送"},
    "subs.identity": {"en": "How digests present the outlet", "zh": "快讯中的网点信息"},
    "subs.sender_name": {"en": "Sender name (From)", "zh": "发件人名称"},
    "subs.contact_address": {"en": "Contact address (footer)", "zh": "联系方式（页脚）"},
    "subs.footer_note": {"en": "Footer note", "zh": "页脚附注"},
    "subs.save": {"en": "Save", "zh": "保存"},
    "subs.subject": {"en": "Subject", "zh": "主题"},
    "status.pending": {"en": "waiting for confirmation", "zh": "待确认"},
    "status.active": {"en": "active", "zh": "生效中"},
    "status.paused": {"en": "paused", "zh": "已暂停"},
    "status.unsubscribed": {"en": "unsubscribed", "zh": "已退订"},
})


def _secret(request: Request) -> str:
    return str(request.app.state.system.secret)


def _smtp(request: Request) -> SmtpSettings:
    """The SMTP settings and public base URL, from the one builder of delivery settings (patentsift.wiring)."""
    return request.app.state.system.delivery_settings().smtp


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


def _mail_confirmation(request: Request, db: Database, sub_id: int) -> str | None:
    """Mail a pending subscription's confirmation message (in a transaction of its own, after the subscription
    was committed); None when the server took it, else why not (the subscription stays pending: resend)."""
    from distribution.confirmation import ConfirmationNotSent, send_confirmation

    try:
        with db.begin() as s:
            send_confirmation(s, sub_id, settings=_smtp(request), secret=_secret(request))
    except (ConfirmationNotSent, SubscriberError) as exc:
        return str(exc)
    return None


def _create_subscription(request: Request, db: Database, store: Any, user: StaffUser, contact_id: int,
                         profiles: list[str], frequency: str, max_items: int, fmt: str,
                         auto_approve_above: float | None,
                         send_when_empty: bool = False) -> tuple[dict[str, Any], str, str | None]:
    """Create a pending subscription (committed), then mail the contact its confirmation link: its description,
    the link, and why the mail did not go out (None when it did)."""
    with db.begin() as session:
        check_contact(session, user, contact_id)
        _check_profiles(store, user, profiles)
        try:
            sub, _ = service.subscribe(session, _secret(request), contact_id, profiles, frequency=frequency,
                                       max_items=max_items, format=fmt, auto_approve_above=auto_approve_above,
                                       detail=f"web:{user.email}", send_when_empty=send_when_empty)
        except SubscriberError as exc:
            raise _fail(exc) from None
        sub_id = sub.id
    error = _mail_confirmation(request, db, sub_id)
    with db.begin() as session:
        described = describe(service.get_subscription(session, sub_id))
    return described, urls.confirm_url(get_cfg(request).smtp.base_url, _secret(request), sub_id), error


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
    return digest, render_for(digest, sub, settings=_smtp(request), secret=_secret(request))


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
    send_when_empty: bool = False
    confirmation_sent_at: str | None = None


class SubscriptionIn(BaseModel):
    contact_id: int
    profiles: list[str] = Field(min_length=1)
    frequency: str = "weekly"
    max_items: int = 20
    format: Literal["html", "text"] = "html"
    auto_approve_above: float | None = None
    send_when_empty: bool = False


class SubscriptionCreated(SubscriptionOut):
    confirm_url: str
    confirmation_sent: bool  # the confirmation message was mailed to the contact
    confirmation_error: str | None = None  # why not (the subscription stays pending: resend it)


class ConfirmationOut(BaseModel):
    subscription_id: int
    sent: bool
    error: str | None = None


class ContactOut(BaseModel):
    id: int
    email: str
    flagged: bool
    flag_reason: str | None


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
def api_subscribe(request: Request, body: SubscriptionIn, user: CurrentUser, store: Store,
                  db: Annotated[Database, Depends(get_db)]) -> SubscriptionCreated:
    described, url, error = _create_subscription(request, db, store, user, body.contact_id, body.profiles,
                                                 body.frequency, body.max_items, body.format,
                                                 body.auto_approve_above, body.send_when_empty)
    return SubscriptionCreated(**described, confirm_url=url, confirmation_sent=error is None,
                               confirmation_error=error)


def _resend(request: Request, db: Database, user: StaffUser, sub_id: int) -> str | None:
    with db.begin() as session:
        sub = check_subscription(session, user, sub_id)
        if sub.status != "pending":
            raise HTTPException(409, f"subscription {sub_id} is {sub.status}: only a pending one is waiting for "
                                "confirmation")
    return _mail_confirmation(request, db, sub_id)


def _unflag(session: Session, user: StaffUser, contact_id: int) -> Any:
    check_contact(session, user, contact_id)
    try:
        return service.unflag_contact(session, contact_id)
    except SubscriberError as exc:
        raise _fail(exc) from None


@router.post("/api/subscriptions/{sub_id}/confirmation/resend", response_model=ConfirmationOut,
             tags=["subscriptions"])
def api_resend_confirmation(request: Request, sub_id: int, user: CurrentUser,
                            db: Annotated[Database, Depends(get_db)]) -> ConfirmationOut:
    """Mail a pending subscription's confirmation message again."""
    error = _resend(request, db, user, sub_id)
    return ConfirmationOut(subscription_id=sub_id, sent=error is None, error=error)


@router.post("/api/contacts/{contact_id}/unflag", response_model=ContactOut, tags=["subscriptions"])
def api_unflag_contact(contact_id: int, user: CurrentUser, session: DbSession) -> ContactOut:
    """Clear a contact's delivery flag: digests go to it again from the next run."""
    c = _unflag(session, user, contact_id)
    return ContactOut(id=c.id, email=c.email, flagged=c.flagged, flag_reason=c.flag_reason)


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
                       confirm_url: str | None = None, mailed: int | None = None,
                       mail_error: str | None = None, unflagged: int | None = None) -> Response:
    outlets = list(session.scalars(select(Outlet).order_by(Outlet.name))) if user.role == "admin" else []
    return templates.TemplateResponse(request, "subscriptions.html", {
        "organizations": _organizations(session, user), "subscriptions": _subscriptions(session, user),
        "profiles": [p.name for p in visible_profiles(store, user)], "outlets": outlets,
        "identity_outlets": outlets or [session.get(Outlet, user.outlet_id)],
        "confirm_url": confirm_url, "mailed": mailed, "mail_error": mail_error, "unflagged": unflagged})


@router.post("/outlets/{outlet_id}/identity", include_in_schema=False)
def set_outlet_identity(outlet_id: int, user: CurrentUser, session: DbSession,
                        sender_name: Annotated[str, Form()] = "", contact_address: Annotated[str, Form()] = "",
                        footer_note: Annotated[str, Form()] = "") -> Response:
    """The outlet's identity in its digests and confirmation messages (its own staff, or an admin)."""
    outlet = session.get(Outlet, outlet_id)
    if outlet is None or not can_see_outlet(user, outlet_id):
        raise HTTPException(404, f"no outlet with id {outlet_id}")
    try:
        service.set_outlet_identity(session, outlet, sender_name=sender_name, contact_address=contact_address,
                                    footer_note=footer_note)
    except SubscriberError as exc:
        raise _fail(exc) from None
    return RedirectResponse("/subscriptions", status_code=303)


def _after_mail(sub_id: int, error: str | None, confirm_url: str | None = None) -> RedirectResponse:
    from urllib.parse import urlencode

    query: dict[str, Any] = {"confirm_url": confirm_url} if confirm_url else {}
    query.update({"mail_error": error} if error else {"mailed": sub_id})
    return RedirectResponse(f"/subscriptions?{urlencode(query)}", status_code=303)


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
def create_subscription(request: Request, user: CurrentUser, store: Store,
                        db: Annotated[Database, Depends(get_db)],
                        contact_id: Annotated[int, Form()], profiles: Annotated[list[str], Form()],
                        frequency: Annotated[str, Form()] = "weekly", max_items: Annotated[int, Form()] = 20,
                        format: Annotated[Literal["html", "text"], Form()] = "html",
                        auto_approve_above: Annotated[str, Form()] = "",
                        send_when_empty: Annotated[bool, Form()] = False) -> Response:
    try:
        auto = float(auto_approve_above) if auto_approve_above.strip() else None
    except ValueError:
        raise HTTPException(422, f"auto-approve must be a score between 0 and 1, not {auto_approve_above!r}") \
            from None
    described, url, error = _create_subscription(request, db, store, user, contact_id, profiles, frequency,
                                                 max_items, format, auto, send_when_empty)
    return _after_mail(described["id"], error, url)


@router.post("/subscriptions/{sub_id}/confirmation/resend", include_in_schema=False)
def resend_confirmation(request: Request, sub_id: int, user: CurrentUser,
                        db: Annotated[Database, Depends(get_db)]) -> Response:
    return _after_mail(sub_id, _resend(request, db, user, sub_id))


@router.post("/contacts/{contact_id}/unflag", include_in_schema=False)
def unflag_contact(contact_id: int, user: CurrentUser, session: DbSession) -> Response:
    _unflag(session, user, contact_id)
    return RedirectResponse(f"/subscriptions?unflagged={contact_id}", status_code=303)


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
