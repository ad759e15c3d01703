"""Organizations, contacts and subscriptions of the user's outlet (pages and /api/subscriptions), the digest
preview, the confirmation message (mailed on creation, resent on request) and un-flagging a contact. The
subscriber's own pages (signed links, no login) are in routes_public.py."""

from __future__ import annotations

import zoneinfo
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
from distribution.status import delivery_status
from index.base import Index
from patentsift.web.auth import (
    CurrentUser,
    can_see_outlet,
    check_contact,
    check_organization,
    check_subscription,
    visible_outlet_ids,
)
from patentsift.web.deps import get_cfg, get_db, get_index, get_session, language, templates
from patentsift.web.routes_profiles import Store, visible_profiles
from subscribers import editing, service
from subscribers.models import FREQUENCIES, LANGUAGES, Organization, Outlet, StaffUser, Subscription
from subscribers.service import SubscriberError, describe

router = APIRouter()
DbSession = Annotated[Session, Depends(get_session)]
DIGEST_CSP = ("sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
              "frame-ancestors 'self'; base-uri 'none'; form-action 'none'")


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
        dup = editing.find_duplicate(session, contact_id, profiles)
        if dup is not None:
            raise HTTPException(409, f"this contact already has subscription #{dup.id} to the same profile(s) "
                                     f"({', '.join(dup.profile_names)}): change that one instead")
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
TIMEZONES = sorted(zoneinfo.available_timezones())


def _page_context(request: Request, session: Session, user: StaffUser, store: Any) -> dict[str, Any]:
    """What the subscriptions page lists: organizations, subscriptions with their frequency in words and
    delivery status, the profiles and outlets the user may choose."""
    outlets = list(session.scalars(select(Outlet).order_by(Outlet.name))) if user.role == "admin" else []
    subs = _subscriptions(session, user)
    lang = language(request)
    return {"organizations": _organizations(session, user), "subscriptions": subs,
            "profiles": [p.name for p in visible_profiles(store, user)], "outlets": outlets,
            "identity_outlets": outlets or [session.get(Outlet, user.outlet_id)],
            "delivery": delivery_status(session, subs, datetime.now(UTC)),
            "in_words": {sub.id: editing.describe_frequency(sub.frequency, lang) for sub in subs},
            "frequencies": FREQUENCIES, "timezones": TIMEZONES, "contact_languages": LANGUAGES,
            "errors": {}, "form": {}}


@router.get("/subscriptions", include_in_schema=False)
def subscriptions_page(request: Request, user: CurrentUser, session: DbSession, store: Store,
                       confirm_url: str | None = None, mailed: int | None = None,
                       mail_error: str | None = None, unflagged: int | None = None,
                       saved: int | None = None) -> Response:
    return templates.TemplateResponse(request, "subscriptions.html", {
        **_page_context(request, session, user, store),
        "confirm_url": confirm_url, "mailed": mailed, "mail_error": mail_error, "unflagged": unflagged,
        "saved": saved})


async def _form_fields(request: Request) -> tuple[dict[str, str], list[str]]:
    """A posted form's single values, and its (multiple) `profiles`."""
    form = await request.form()
    return ({k: v for k, v in form.items() if isinstance(v, str)},
            [v for v in form.getlist("profiles") if isinstance(v, str)])


def _form_change(form: dict[str, str], profiles: list[str], language_: str, timezone: str) -> editing.SubscriptionChange:
    frequency = form.get("frequency", "weekly").strip()
    return editing.SubscriptionChange(
        profiles=profiles, frequency=frequency, cron=form.get("cron", ""), max_items=form.get("max_items", "20"),
        format=form.get("format", "html"), language=form.get("contact_language", language_),
        timezone=form.get("timezone", timezone), auto_approve_above=form.get("auto_approve_above", ""),
        send_when_empty=form.get("send_when_empty", "") in ("true", "on", "1"))


def _form_echo(form: dict[str, str], profiles: list[str]) -> dict[str, Any]:
    return {**form, "profiles": profiles}


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
def create_subscription(request: Request, user: CurrentUser, store: Store, db: Annotated[Database, Depends(get_db)],
                        profiles: Annotated[list[str] | None, Form()] = None, contact_id: Annotated[str, Form()] = "",
                        frequency: Annotated[str, Form()] = "weekly", cron: Annotated[str, Form()] = "",
                        max_items: Annotated[str, Form()] = "20", format: Annotated[str, Form()] = "html",
                        auto_approve_above: Annotated[str, Form()] = "",
                        send_when_empty: Annotated[str, Form()] = "") -> Response:
    """A new subscription from the form; every problem is shown next to its field at once (422). A plain def:
    the confirmation mail runs its own event loop."""
    form = {"contact_id": contact_id, "frequency": frequency, "cron": cron, "max_items": max_items,
            "format": format, "auto_approve_above": auto_approve_above, "send_when_empty": send_when_empty}
    profiles = profiles or []
    errors: dict[str, list[str]] = {}
    cid: int | None = None
    try:
        cid = int(contact_id)
    except ValueError:
        errors["contact_id"] = ["choose a contact"]
    if cid is not None:
        with db.begin() as session:
            contact = check_contact(session, user, cid)
            checked = editing.check_change(session, _form_change(form, profiles, contact.language, contact.timezone),
                                           contact_id=contact.id, outlet_id=contact.organization.outlet_id)
            errors.update(checked.errors)
    if errors or cid is None:
        with db.begin() as session:
            return templates.TemplateResponse(request, "subscriptions.html", {
                **_page_context(request, session, user, store), "errors": errors,
                "form": _form_echo(form, profiles)}, status_code=422)
    v = checked.values
    described, url, error = _create_subscription(
        request, db, store, user, cid, list(v["profile_names"]), str(v["frequency"]),  # type: ignore[call-overload]
        int(v["max_items"]), str(v["format"]), v["auto_approve_above"], bool(v["send_when_empty"]))  # type: ignore[call-overload, arg-type]
    return _after_mail(described["id"], error, url)


def _edit_page(request: Request, session: Session, user: StaffUser, store: Any, sub: Subscription,
               form: dict[str, Any] | None = None, errors: dict[str, list[str]] | None = None,
               status: int = 200) -> Response:
    c = sub.contact
    freq = sub.frequency
    current = {"profiles": sub.profile_names, "frequency": freq if freq in FREQUENCIES else "cron",
               "cron": "" if freq in FREQUENCIES else freq, "max_items": str(sub.max_items), "format": sub.format,
               "contact_language": c.language, "timezone": c.timezone,
               "auto_approve_above": "" if sub.auto_approve_above is None else str(sub.auto_approve_above),
               "send_when_empty": "true" if sub.send_when_empty else ""}
    now = datetime.now(UTC)
    profiles = [p.name for p in visible_profiles(store, user)]
    profiles += [p for p in sub.profile_names if p not in profiles]
    return templates.TemplateResponse(request, "subscription_edit.html", {
        "sub": sub, "form": form or current, "errors": errors or {}, "profiles": profiles,
        "frequencies": FREQUENCIES, "timezones": TIMEZONES, "contact_languages": LANGUAGES,
        "in_words": editing.describe_frequency(freq, language(request)),
        "delivery": delivery_status(session, [sub], now)[sub.id]}, status_code=status)


@router.get("/subscriptions/{sub_id}/edit", include_in_schema=False)
def edit_subscription_page(request: Request, sub_id: int, user: CurrentUser, session: DbSession,
                           store: Store) -> Response:
    return _edit_page(request, session, user, store, check_subscription(session, user, sub_id))


@router.post("/subscriptions/{sub_id}/edit", include_in_schema=False)
async def edit_subscription(request: Request, sub_id: int, user: CurrentUser, session: DbSession,
                            store: Store) -> Response:
    """Save the form: all fields checked at once (422 with every problem next to its field), duplicates refused."""
    sub = check_subscription(session, user, sub_id)
    form, profiles = await _form_fields(request)
    c = sub.contact
    checked = editing.check_change(session, _form_change(form, profiles, c.language, c.timezone), contact_id=c.id,
                                   outlet_id=c.organization.outlet_id, subscription_id=sub.id)
    if checked.errors:
        return _edit_page(request, session, user, store, sub, _form_echo(form, profiles), checked.errors, 422)
    editing.apply_change(session, sub, checked)
    return RedirectResponse(f"/subscriptions?saved={sub.id}#sub-{sub.id}", status_code=303)


class FrequencyWordsOut(BaseModel):
    frequency: str
    valid: bool
    words: str


@router.get("/api/frequency/words", response_model=FrequencyWordsOut, tags=["subscriptions"])
def api_frequency_words(request: Request, user: CurrentUser, frequency: str,
                        lang: Literal["zh", "en"] | None = None) -> FrequencyWordsOut:
    """A frequency (daily, weekly, monthly or a cron expression) in words, in `lang` (default: the UI's)."""
    try:
        value = service.check_frequency(frequency)
    except SubscriberError as exc:
        return FrequencyWordsOut(frequency=frequency, valid=False, words=str(exc))
    return FrequencyWordsOut(frequency=value, valid=True,
                             words=editing.describe_frequency(value, lang or language(request)))


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
