"""The curation queue: pending matches of the user's outlet's subscriptions, decisions one at a time or in bulk,
and the audit trail (pages and /api/queue). Decisions are fed back to matching as curator feedback."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from db import Database
from distribution.curation import (
    ACTIONS,
    CurationError,
    decide,
    enqueue_new_matches,
    queue,
    visible_subscription_ids,
)
from distribution.curation import visible_audit as curation_audit
from distribution.digest import why_lines
from distribution.models import ReviewItem
from index.base import Index
from matching.explain import Explanation
from patentsift.web.auth import AdminUser, CurrentUser, check_subscription, visible_outlet_ids
from patentsift.web.deps import get_db, get_index, get_session, language, templates
from patentsift.web.i18n import register_strings
from patentsift.web.routes_profiles import Store
from subscribers.models import StaffUser, Subscription
from subscribers.service import describe, list_subscriptions

router = APIRouter()
DbSession = Annotated[Session, Depends(get_session)]
Action = Literal["approve", "reject", "annotate", "pin", "unpin"]
PAGE_LIMIT = 200

register_strings({
    "nav.curation": {"en": "Curation", "zh": "审核"},
    "curation.title": {"en": "Curation queue", "zh": "审核队列"},
    "curation.audit": {"en": "Audit trail", "zh": "审核记录"},
    "curation.empty": {"en": "Nothing waits for a decision.", "zh": "没有待审核的条目。"},
    "curation.subscription": {"en": "Subscription", "zh": "订阅"},
    "curation.all": {"en": "All subscriptions", "zh": "全部订阅"},
    "curation.status": {"en": "Status", "zh": "状态"},
    "curation.score": {"en": "Score", "zh": "得分"},
    "curation.why": {"en": "Why it matched", "zh": "匹配理由"},
    "curation.note": {"en": "Note", "zh": "备注"},
    "curation.approve": {"en": "Approve", "zh": "通过"},
    "curation.reject": {"en": "Reject", "zh": "拒绝"},
    "curation.annotate": {"en": "Annotate", "zh": "备注"},
    "curation.pin": {"en": "Pin", "zh": "置顶"},
    "curation.unpin": {"en": "Unpin", "zh": "取消置顶"},
    "curation.selected": {"en": "With the selected", "zh": "对所选条目"},
    "curation.select_all": {"en": "Select all", "zh": "全选"},
    "curation.keys": {"en": "Keys: j/k move, x select, a approve, r reject, n note, p pin",
                      "zh": "快捷键：j/k 移动，x 选择，a 通过，r 拒绝，n 备注，p 置顶"},
    "curation.enqueue": {"en": "Queue new matches", "zh": "导入新匹配"},
    "curation.who": {"en": "Who", "zh": "操作人"},
    "curation.when": {"en": "When", "zh": "时间"},
    "curation.action": {"en": "Action", "zh": "操作"},
    "curation.items": {"en": "Items", "zh": "条目"},
    "curation.filter": {"en": "Show", "zh": "显示"},
    "curation.pinned": {"en": "pinned", "zh": "已置顶"},
    "curation.profile": {"en": "Profile", "zh": "关注主题"},
    "curation.done": {"en": "Updated {n} item(s).", "zh": "已更新 {n} 个条目。"},
    "curation.feedback": {"en": "Reader feedback", "zh": "读者反馈"},
    "curation.reader_relevant": {"en": "reader: relevant", "zh": "读者：相关"},
    "curation.reader_not_relevant": {"en": "reader: not relevant", "zh": "读者：不相关"},
    # status words (the filter and each item); `curation.status.` ~ ReviewItem.status
    "curation.status.pending": {"en": "pending", "zh": "待审核"},
    "curation.status.approved": {"en": "approved", "zh": "已通过"},
    "curation.status.rejected": {"en": "rejected", "zh": "已拒绝"},
    "curation.status.all": {"en": "all", "zh": "全部"},
})


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
    return [AuditEventOut(id=e.id, who=e.who, at=e.at, action=e.action, item_ids=ids, detail=e.detail or {})
            for e, ids in visible_audit(session, user)]


# --- pages ------------------------------------------------------------------------------------------------------
@router.get("/curation", include_in_schema=False)
def curation_page(request: Request, user: CurrentUser, session: DbSession,
                  index: Annotated[Index, Depends(get_index)], subscription: int | None = None,
                  status: Annotated[Literal["pending", "approved", "rejected", "all"], Query()] = "pending",
                  done: int | None = None) -> Response:
    lang = language(request)
    subs = {s.id: describe(s) for s in visible_subscriptions(session, user)}
    items = _items(session, user, subscription, None if status == "all" else status)[:PAGE_LIMIT]
    from distribution.feedback import reader_judgements

    readers = reader_judgements(session, [i.id for i in items])  # subscribers' "relevant" clicks in digests
    rows = []
    for i in items:
        doc = index.get(i.doc_id)
        rows.append({"item": i, "title": (doc.title(lang) if doc else None) or i.doc_id,
                     "why": why_lines(Explanation.from_dict(i.explanation or {}), lang),
                     "sub": subs.get(i.subscription_id), "reader": readers.get(i.id)})
    return templates.TemplateResponse(request, "curation.html", {
        "mode": "queue", "rows": rows, "subs": subs, "subscription": subscription, "status": status,
        "actions": ACTIONS, "done": done})


@router.post("/curation/decide", include_in_schema=False)
def curation_decide(user: CurrentUser, store: Store, db: Annotated[Database, Depends(get_db)],
                    action: Annotated[str, Form()], ids: Annotated[list[int], Form()] = [],  # noqa: B006
                    note: Annotated[str | None, Form()] = None,
                    back: Annotated[str, Form()] = "/curation") -> Response:
    if action not in ACTIONS:
        raise HTTPException(422, f"unknown action {action!r}")
    if action == "annotate" and note is None:
        note = ""  # annotating with an empty note clears it
    count = _apply(db, user, store, ids, action, note or ("" if action == "annotate" else None))
    back = back if back.startswith("/curation") and "//" not in back else "/curation"
    sep = "&" if "?" in back else "?"
    return RedirectResponse(f"{back}{sep}done={count}", status_code=303)


@router.post("/curation/enqueue", include_in_schema=False)
def curation_enqueue(user: AdminUser, store: Store, db: Annotated[Database, Depends(get_db)]) -> Response:
    """Queue every new stored match for the active subscriptions (administrators: it touches every outlet)."""
    with db.begin() as s:
        added = enqueue_new_matches(s, store)
    return RedirectResponse(f"/curation?done={len(added)}", status_code=303)


@router.get("/curation/audit", include_in_schema=False)
def audit_page(request: Request, user: CurrentUser, session: DbSession) -> Response:
    return templates.TemplateResponse(request, "curation.html", {
        "mode": "audit", "events": visible_audit(session, user)[:PAGE_LIMIT]})
