"""The curation queue grouped by document: one card per publication with the review items (one per subscription)
it matched; filters, totals and paging in SQL, with when each item was mailed (read only)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, distinct, func, select
from sqlalchemy.orm import Session

from distribution.curation import sent_at, visible_subscription_ids
from distribution.models import ReviewItem
from subscribers.models import Contact, Subscription

STATUSES = ("pending", "approved", "rejected", "sent", "all")
MAX_PER_PAGE = 200


@dataclass(frozen=True)
class QueueFilter:
    """What the queue shows: items of these outlets (None: all), one subscription, profile or organization, at
    least a score; `status` picks documents with at least one item in it ('sent': mailed already)."""

    outlet_ids: Collection[int] | None = None
    subscription_id: int | None = None
    profile: str | None = None
    organization_id: int | None = None
    min_score: float | None = None
    status: str = "pending"


@dataclass
class DocumentGroup:
    """One publication and the review items of it the filter shows; `sent` maps item id -> when it was mailed."""

    doc_id: str
    score: float
    items: list[ReviewItem]
    sent: dict[int, datetime] = field(default_factory=dict)

    @property
    def decidable(self) -> list[ReviewItem]:
        return [i for i in self.items if i.id not in self.sent]

    @property
    def status(self) -> str:
        """pending (any item waits), sent (every item mailed), else approved/rejected when the items not mailed
        agree, mixed when they do not."""
        open_items = self.decidable
        if not open_items:
            return "sent"
        kinds = {i.status for i in open_items}
        return "pending" if "pending" in kinds else kinds.pop() if len(kinds) == 1 else "mixed"


@dataclass
class QueuePage:
    groups: list[DocumentGroup]
    documents: int  # documents the filter selects (all pages)
    page: int
    per_page: int
    totals: dict[str, int]  # items in scope per status, 'sent', 'items' and 'documents'

    @property
    def pages(self) -> int:
        return max(1, -(-self.documents // self.per_page))


def _scope(f: QueueFilter) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = []
    if f.outlet_ids is not None:
        conds.append(ReviewItem.subscription_id.in_(visible_subscription_ids(f.outlet_ids)))
    if f.subscription_id is not None:
        conds.append(ReviewItem.subscription_id == f.subscription_id)
    if f.profile:
        conds.append(ReviewItem.profile_name == f.profile)
    if f.organization_id is not None:
        conds.append(ReviewItem.subscription_id.in_(
            select(Subscription.id).join(Contact, Subscription.contact_id == Contact.id)
            .where(Contact.organization_id == f.organization_id)))
    if f.min_score is not None:
        conds.append(ReviewItem.score >= f.min_score)
    return conds


def _status(f: QueueFilter, scope: list[ColumnElement[bool]]) -> list[ColumnElement[bool]]:
    if f.status == "all":
        return []
    if f.status == "sent":
        which = sent_at().is_not(None)
    else:
        which = ReviewItem.status == f.status
        if f.status == "pending":
            which = which & sent_at().is_(None)
    return [ReviewItem.doc_id.in_(select(ReviewItem.doc_id).where(*scope, which))]


def totals(session: Session, f: QueueFilter) -> dict[str, int]:
    """Items in scope per status, plus 'sent', 'items' and 'documents' (every status)."""
    scope = _scope(f)
    out = {s: 0 for s in STATUSES if s != "all"}
    for status, n in session.execute(select(ReviewItem.status, func.count()).where(*scope)
                                     .group_by(ReviewItem.status)):
        out[status] = n
    out["sent"] = session.scalar(select(func.count()).where(*scope, sent_at().is_not(None))) or 0
    out["items"] = sum(out[s] for s in ("pending", "approved", "rejected"))
    out["documents"] = session.scalar(select(func.count(distinct(ReviewItem.doc_id))).where(*scope)) or 0
    return out


def document_page(session: Session, f: QueueFilter, page: int = 1, per_page: int = 50) -> QueuePage:
    """One page of documents (best item score first), each with its items in scope, and the totals."""
    per_page = max(1, min(per_page, MAX_PER_PAGE))
    page = max(1, page)
    scope = _scope(f)
    where = [*scope, *_status(f, scope)]
    best = func.max(ReviewItem.score)
    docs_q = select(ReviewItem.doc_id, best.label("best")).where(*where).group_by(ReviewItem.doc_id)
    count = session.scalar(select(func.count()).select_from(docs_q.subquery())) or 0
    rows = session.execute(docs_q.order_by(best.desc(), ReviewItem.doc_id)
                           .limit(per_page).offset((page - 1) * per_page)).all()
    groups = _groups(session, scope, [(d, s) for d, s in rows])
    return QueuePage(groups, count, page, per_page, totals(session, f))


def groups_of_items(session: Session, item_ids: Sequence[int]) -> list[DocumentGroup]:
    """The given review items grouped by document, in the order of their documents' best score."""
    rows = session.execute(select(ReviewItem.doc_id, func.max(ReviewItem.score)).where(
        ReviewItem.id.in_(list(item_ids))).group_by(ReviewItem.doc_id).order_by(func.max(ReviewItem.score).desc(),
                                                                            ReviewItem.doc_id)).all()
    return _groups(session, [ReviewItem.id.in_(list(item_ids))], [(d, s) for d, s in rows])


def _groups(session: Session, scope: list[ColumnElement[bool]], docs: list[tuple[str, float]]
            ) -> list[DocumentGroup]:
    if not docs:
        return []
    groups = {d: DocumentGroup(d, float(s), []) for d, s in docs}
    q = (select(ReviewItem, sent_at()).where(*scope, ReviewItem.doc_id.in_(list(groups)))
         .order_by(ReviewItem.subscription_id, ReviewItem.profile_name, ReviewItem.id))
    for item, at in session.execute(q):
        g = groups[item.doc_id]
        g.items.append(item)
        if at is not None:
            g.sent[item.id] = at
    return list(groups.values())
