"""The curation queue: pending matches of the user's outlet's subscriptions, decisions one at a time or in bulk,
and the audit trail (pages and /api/queue). Decisions are fed back to matching as curator feedback."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from db import Database
from distribution.curation import (
    ACTIONS,
    AlreadySent,
    CurationError,
    decide,
    decide_event,
    enqueue_new_matches,
    queue,
    sent_items,
    undo,
    visible_subscription_ids,
)
from distribution.curation import visible_audit as curation_audit
from distribution.curation_queue import STATUSES, DocumentGroup, QueueFilter, document_page, groups_of_items
from distribution.digest import why_lines
from distribution.feedback import reader_judgements
from distribution.ipc_titles import subclass_title
from distribution.models import AuditEvent, ReviewItem
from index.base import Index
from matching.explain import Explanation
from patentsift.web.auth import AdminUser, CurrentUser, check_subscription, visible_outlet_ids
from patentsift.web.deps import get_db, get_index, get_session, language, templates
from patentsift.web.routes_profiles import Store
from subscribers.models import Organization, StaffUser, Subscription
from subscribers.service import describe, list_subscriptions

router = APIRouter()
DbSession = Annotated[Session, Depends(get_session)]
Action = Literal["approve", "reject", "annotate", "pin", "unpin"]
PAGE_LIMIT = 200
PER_PAGE = 50  # documents per page of the queue
Status = Literal["pending", "approved", "rejected", "sent", "all"]


# --- authorization ----------------------------------------------------------------------------------------------
def visible_subscriptions(session: Session, user: StaffUser) -> list[Subscription]:
    return list_subscriptions(session, outlet_id=None if user.role == "admin" else user.outlet_id)


def checked_items(session: Session, user: StaffUser, ids: list[int]) -> list[int]:
    """The ids, each an existing review item of a subscription the user may see; else 404 naming them."""
    outlets = visible_outlet_ids(user)
    q = select(ReviewItem.id).where(ReviewItem.id.in_(ids))
    if outlets is not None:
        q = q.where(ReviewItem.subscription_id.in_(visible_subscription_ids(outlets)))
    found = set(session.scalars(q))
    bad = [i for i in ids if i not in found]
    if bad:
        raise HTTPException(404, f"no review item(s) {', '.join(map(str, bad))}")
    return ids


def _items(session: Session, user: StaffUser, subscription_id: int | None, status: str | None) -> list[ReviewItem]:
    if subscription_id is not None:
        check_subscription(session, user, subscription_id)
    return queue(session, subscription_id, status, outlet_ids=visible_outlet_ids(user))


def _apply(db: Database, user: StaffUser, store: Any, ids: list[int], action: str, note: str | None) -> int:
    """Check and record a decision, its audit event and the feedback it triggers in one transaction."""
    if not ids:
        raise HTTPException(422, "select at least one item")
    with db.begin() as s:
        checked_items(s, user, ids)
        try:
            return len(decide(s, ids, action, user.email, note, match_store=store))
        except CurationError as exc:
            raise HTTPException(422, str(exc)) from None


# --- API --------------------------------------------------------------------------------------------------------
class ReviewItemOut(BaseModel):
    id: int
    subscription_id: int
    match_id: int
    doc_id: str
    profile: str
    score: float
    status: str
    pinned: bool
    note: str | None
    decided_by: str | None
    decided_at: datetime | None
    explanation: dict[str, Any] | None


class DecisionIn(BaseModel):
    ids: list[int] = Field(min_length=1)
    action: Action
    note: str | None = None


class DecisionOut(BaseModel):
    action: str
    count: int


class AuditEventOut(BaseModel):
    id: int
    who: str
    at: datetime
    action: str
    item_ids: list[int]
    detail: dict[str, Any]


def _item_out(i: ReviewItem) -> ReviewItemOut:
    return ReviewItemOut(id=i.id, subscription_id=i.subscription_id, match_id=i.match_id, doc_id=i.doc_id,
                         profile=i.profile_name, score=i.score, status=i.status, pinned=i.pinned, note=i.note,
                         decided_by=i.decided_by, decided_at=i.decided_at, explanation=i.explanation)


@router.get("/api/queue", response_model=list[ReviewItemOut], tags=["curation"])
def api_queue(user: CurrentUser, session: DbSession, subscription_id: int | None = None,
              status: Literal["pending", "approved", "rejected", "all"] = "pending") -> list[ReviewItemOut]:
    items = _items(session, user, subscription_id, None if status == "all" else status)
    return [_item_out(i) for i in items]


@router.post("/api/queue/decisions", response_model=DecisionOut, tags=["curation"])
def api_decide(body: DecisionIn, user: CurrentUser, store: Store,
               db: Annotated[Database, Depends(get_db)]) -> DecisionOut:
    return DecisionOut(action=body.action, count=_apply(db, user, store, body.ids, body.action, body.note))


def visible_audit(session: Session, user: StaffUser) -> list[tuple[Any, list[int]]]:
    """Audit events touching items the user may see, each with only those item ids (newest first)."""
    return curation_audit(session, visible_outlet_ids(user), limit=PAGE_LIMIT)


@router.get("/api/queue/audit", response_model=list[AuditEventOut], tags=["curation"])
def api_audit(user: CurrentUser, session: DbSession) -> list[AuditEventOut]:
    return [AuditEventOut(id=e.id, who=e.who, at=e.at, action=e.action, item_ids=ids, detail=public_detail(e))
            for e, ids in visible_audit(session, user)]


def public_detail(event: AuditEvent) -> dict[str, Any]:
    """An audit event's detail without what an undoable decision keeps for `undo` (previous state, feedback ids)."""
    return {k: v for k, v in (event.detail or {}).items() if k not in ("before", "feedback")}


# --- pages ------------------------------------------------------------------------------------------------------
def _card(g: DocumentGroup, doc: Any, lang: str, subs: dict[int, dict[str, Any]], readers: dict[int, Any]
          ) -> dict[str, Any]:
    """What one document's card shows: the document, why it matched (per profile) and its items."""
    why: dict[str, list[str]] = {}
    for i in g.items:
        why.setdefault(i.profile_name, why_lines(Explanation.from_dict(i.explanation or {}), lang))
    classes = list(dict.fromkeys(c.display for c in [*(doc.ipc if doc else []), *(doc.cpc if doc else [])]))
    decidable = g.decidable
    return {
        "group": g, "doc_id": g.doc_id, "title": (doc.title(lang) if doc else None) or g.doc_id,
        "applicants": doc.applicant_names()[:3] if doc else [],
        "published": doc.publication_date if doc else None, "abstract": doc.abstract(lang) if doc else "",
        "classes": [(c, subclass_title(c, lang)) for c in classes], "why": why,
        "rows": [{"item": i, "sub": subs.get(i.subscription_id), "reader": readers.get(i.id),
                  "sent_at": g.sent.get(i.id)} for i in g.items],
        "readers": [readers[i.id] for i in g.items if i.id in readers],
        "decidable": " ".join(str(i.id) for i in decidable), "all_ids": " ".join(str(i.id) for i in g.items),
        "pinned": bool(decidable) and all(i.pinned for i in decidable),
        "notes": list(dict.fromkeys(i.note for i in g.items if i.note)),
    }


def _cards(session: Session, user: StaffUser, index: Index, groups: list[DocumentGroup], lang: str
           ) -> list[dict[str, Any]]:
    subs = {s.id: describe(s) for s in visible_subscriptions(session, user)}
    readers = reader_judgements(session, [i.id for g in groups for i in g.items])
    return [_card(g, index.get(g.doc_id), lang, subs, readers) for g in groups]


def _options(session: Session, user: StaffUser) -> tuple[list[str], list[Organization]]:
    """The profiles and organizations the user's queue can be filtered by."""
    outlets = visible_outlet_ids(user)
    profiles = select(ReviewItem.profile_name).distinct().order_by(ReviewItem.profile_name)
    orgs = select(Organization).order_by(Organization.name)
    if outlets is not None:
        profiles = profiles.where(ReviewItem.subscription_id.in_(visible_subscription_ids(outlets)))
        orgs = orgs.where(Organization.outlet_id.in_(list(outlets)))
    return list(session.scalars(profiles)), list(session.scalars(orgs))


@router.get("/curation", include_in_schema=False)
def curation_page(request: Request, user: CurrentUser, session: DbSession,
                  index: Annotated[Index, Depends(get_index)], subscription: int | None = None,
                  status: Annotated[Status, Query()] = "pending", profile: str | None = None,
                  organization: int | None = None, min_score: Annotated[float | None, Query(ge=0, le=1)] = None,
                  page: Annotated[int, Query(ge=1)] = 1, per_page: Annotated[int, Query(ge=1, le=200)] = PER_PAGE,
                  done: int | None = None) -> Response:
    lang = language(request)
    if subscription is not None:
        check_subscription(session, user, subscription)
    if organization is not None:
        from patentsift.web.auth import check_organization

        check_organization(session, user, organization)
    subs = {s.id: describe(s) for s in visible_subscriptions(session, user)}
    flt = QueueFilter(visible_outlet_ids(user), subscription, profile or None, organization, min_score, status)
    result = document_page(session, flt, page, per_page)
    profiles, orgs = _options(session, user)
    query = {k: v for k, v in {"status": status, "subscription": subscription, "profile": profile,
                               "organization": organization, "min_score": min_score,
                               "per_page": per_page if per_page != PER_PAGE else None}.items() if v not in (None, "")}
    return templates.TemplateResponse(request, "curation.html", {
        "mode": "queue", "cards": _cards(session, user, index, result.groups, lang), "result": result,
        "subs": subs, "subscription": subscription, "status": status, "statuses": STATUSES, "profile": profile,
        "profiles": profiles, "organization": organization, "organizations": orgs, "min_score": min_score,
        "query": query, "actions": ACTIONS, "done": done})


def _ids(values: list[str]) -> list[int]:
    """Form values of item ids; one value may hold several (a document's card: "12 45 78")."""
    try:
        return list(dict.fromkeys(int(v) for value in values for v in value.replace(",", " ").split()))
    except ValueError:
        raise HTTPException(422, "item ids must be numbers") from None


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def _render_cards(request: Request, user: StaffUser, index: Index, db: Database, ids: list[int]) -> str:
    """The cards of these items' documents, as the page renders them (the page's script swaps them in)."""
    with db.begin() as s:
        cards = _cards(s, user, index, groups_of_items(s, ids), language(request))
        res = templates.TemplateResponse(request, "_curation_cards.html", {"cards": cards})
    return bytes(res.body).decode()


def _back(back: str, count: int) -> Response:
    back = back if back.startswith("/curation") and "//" not in back else "/curation"
    sep = "&" if "?" in back else "?"
    return RedirectResponse(f"{back}{sep}done={count}", status_code=303)


def _answer(request: Request, run: Callable[[], Response]) -> Response:
    """Run a page action; a JSON caller (the queue's script) gets its refusal as JSON {"error": ...}."""
    try:
        return run()
    except HTTPException as exc:
        if not _wants_json(request):
            raise
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)


@router.post("/curation/decide", include_in_schema=False)
def curation_decide(request: Request, user: CurrentUser, store: Store, db: Annotated[Database, Depends(get_db)],
                    index: Annotated[Index, Depends(get_index)],
                    action: Annotated[str, Form()] = "", ids: Annotated[list[str], Form()] = [],  # noqa: B006
                    note: Annotated[str | None, Form()] = None, override: Annotated[str | None, Form()] = None,
                    shown: Annotated[list[str], Form()] = [],  # noqa: B006
                    back: Annotated[str, Form()] = "/curation") -> Response:
    """A decision on the checked cards (each card: every item of its document not mailed yet) or, with
    `override=ACTION:ID`, on one subscription's item; JSON callers get the re-rendered cards and an undo id."""
    return _answer(request, lambda: _decide(request, user, store, db, index, action, ids, note, override, shown,
                                            back))


def _decide(request: Request, user: StaffUser, store: Any, db: Database, index: Index, action: str,
            ids: list[str], note: str | None, override: str | None, shown: list[str], back: str) -> Response:
    if override:
        action, _, one = override.partition(":")
        item_ids = _ids([one])
    else:
        item_ids = _ids(ids)
    if action not in ACTIONS:
        raise HTTPException(422, f"unknown action {action!r}")
    if action == "annotate" and note is None:
        note = ""  # annotating with an empty note clears it
    note = note or ("" if action == "annotate" else None)
    wants_json = _wants_json(request)
    shown_ids = _ids(shown) or item_ids
    if not item_ids:
        raise HTTPException(422, "select at least one item")
    with db.begin() as s:
        checked_items(s, user, list(dict.fromkeys(item_ids + shown_ids)))
        if not override and len(item_ids) > 1:  # a card's decision skips what was mailed since
            mailed = sent_items(s, item_ids)
            item_ids = [i for i in item_ids if i not in mailed] or item_ids
        try:
            items, event = decide_event(s, item_ids, action, user.email, note, match_store=store,
                                        undoable=wants_json)
        except AlreadySent as exc:
            raise HTTPException(409, str(exc)) from None
        except CurationError as exc:
            raise HTTPException(422, str(exc)) from None
        count, event_id = len(items), event.id
    if not wants_json:
        return _back(back, count)
    return JSONResponse({"action": action, "count": count, "event": event_id,
                         "cards": _render_cards(request, user, index, db, shown_ids)})


@router.post("/curation/undo", include_in_schema=False)
def curation_undo(request: Request, user: CurrentUser, store: Store, db: Annotated[Database, Depends(get_db)],
                  index: Annotated[Index, Depends(get_index)], event: Annotated[int, Form()],
                  shown: Annotated[list[str], Form()] = [],  # noqa: B006
                  back: Annotated[str, Form()] = "/curation") -> Response:
    """Undo one undoable decision: its items get their previous state back (recorded as an 'undo' event)."""
    return _answer(request, lambda: _undo(request, user, store, db, index, event, shown, back))


def _undo(request: Request, user: StaffUser, store: Any, db: Database, index: Index, event: int,
          shown: list[str], back: str) -> Response:
    with db.begin() as s:
        found = s.get(AuditEvent, event)
        if found is None:
            raise HTTPException(404, f"no audit event {event}")
        touched = [int(i) for i in (found.detail or {}).get("before") or {}] or list(found.item_ids or [])
        checked_items(s, user, touched)
        try:
            items, _ = undo(s, event, user.email, match_store=store)
        except CurationError as exc:
            raise HTTPException(409, str(exc)) from None
        count = len(items)
    if not _wants_json(request):
        return _back(back, count)
    shown_ids = _ids(shown) or touched
    with db.begin() as s:
        checked_items(s, user, shown_ids)
    return JSONResponse({"action": "undo", "count": count,
                         "cards": _render_cards(request, user, index, db, shown_ids)})


@router.post("/curation/enqueue", include_in_schema=False)
def curation_enqueue(user: AdminUser, store: Store, db: Annotated[Database, Depends(get_db)]) -> Response:
    """Queue every new stored match for the active subscriptions (administrators: it touches every outlet)."""
    with db.begin() as s:
        added = enqueue_new_matches(s, store)
    return RedirectResponse(f"/curation?done={len(added)}", status_code=303)


@router.get("/curation/audit", include_in_schema=False)
def audit_page(request: Request, user: CurrentUser, session: DbSession) -> Response:
    return templates.TemplateResponse(request, "curation.html", {
        "mode": "audit", "events": [(e, ids, public_detail(e)) for e, ids in visible_audit(session, user)]})
