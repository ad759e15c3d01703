"""The curation queue: new matches wait for a curator (or are auto-approved above a score); every decision is
audited and fed back to matching as relevance feedback.

Commit rule (db/__init__.py): these functions change the caller's session and flush; the caller commits, so a
decision, its audit event and the feedback it triggers are one transaction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from distribution.models import AuditEvent, ReviewItem

ACTIONS = ("approve", "reject", "annotate", "pin", "unpin")
_FEEDBACK = {"approve": True, "reject": False}


class CurationError(ValueError):
    """A decision that cannot be made (unknown action or item)."""


def enqueue_new_matches(session: Session, match_store: Any, now: datetime | None = None) -> list[ReviewItem]:
    """Queue every stored match of each active subscription's profiles not queued for it yet (idempotent);
    matches scoring at least the subscription's `auto_approve_above` are approved by 'auto'."""
    from matching.store import UnknownProfile
    from subscribers.models import Subscription

    now = now or datetime.now(UTC)
    added: list[ReviewItem] = []
    cache: dict[str, list[Any]] = {}
    subs = session.scalars(select(Subscription).where(Subscription.status == "active").order_by(Subscription.id))
    for sub in subs:
        have = set(session.scalars(select(ReviewItem.match_id).where(ReviewItem.subscription_id == sub.id)))
        for name in sub.profile_names or []:
            if name not in cache:
                try:
                    cache[name] = match_store.matches(name, session=session)
                except UnknownProfile:
                    cache[name] = []
            for m in sorted(cache[name], key=lambda m: m.id):
                if m.id in have:
                    continue
                have.add(m.id)
                auto = sub.auto_approve_above is not None and m.score >= sub.auto_approve_above
                item = ReviewItem(subscription_id=sub.id, match_id=m.id, doc_id=m.doc_id, profile_name=name,
                                  score=m.score, explanation=m.explanation, created_at=now,
                                  status="approved" if auto else "pending", pinned=False,
                                  decided_by="auto" if auto else None, decided_at=now if auto else None)
                session.add(item)
                added.append(item)
    session.flush()
    auto_ids = [i.id for i in added if i.decided_by == "auto"]
    if auto_ids:
        session.add(AuditEvent(who="auto", at=now, action="approve", item_ids=auto_ids,
                               detail={"reason": "score at or above auto_approve_above"}))
        session.flush()
    return added


def queue(session: Session, subscription_id: int | None = None, status: str | None = "pending") -> list[ReviewItem]:
    """Review items (of one subscription, with one status), best score first."""
    q = select(ReviewItem)
    if subscription_id is not None:
        q = q.where(ReviewItem.subscription_id == subscription_id)
    if status is not None:
        q = q.where(ReviewItem.status == status)
    return list(session.scalars(q.order_by(ReviewItem.score.desc(), ReviewItem.id)))


def decide(session: Session, item_ids: Iterable[int], action: str, who: str, note: str | None = None, *,
           match_store: Any | None = None, now: datetime | None = None) -> list[ReviewItem]:
    """Apply one action (approve, reject, annotate, pin, unpin) to one or many items and write an AuditEvent;
    approve/reject are recorded as curator feedback on the matches (when `match_store` is given), in the same
    transaction (the caller commits)."""
    if action not in ACTIONS:
        raise CurationError(f"unknown action {action!r}: use one of {', '.join(ACTIONS)}")
    ids = list(dict.fromkeys(int(i) for i in item_ids))
    items = _items(session, ids)
    now = now or datetime.now(UTC)
    if action == "annotate" and note is None:
        raise CurationError("annotate needs a note")
    for item in items:
        if action in _FEEDBACK:
            item.status = "approved" if action == "approve" else "rejected"
            item.decided_by, item.decided_at = who, now
        elif action in ("pin", "unpin"):
            item.pinned = action == "pin"
        if note is not None:
            item.note = note or None
    detail: dict[str, Any] = {"note": note} if note is not None else {}
    session.add(AuditEvent(who=who, at=now, action=action, item_ids=ids, detail=detail))
    if match_store is not None and action in _FEEDBACK:
        for match_id in dict.fromkeys(i.match_id for i in items):
            match_store.add_feedback(match_id, _FEEDBACK[action], source="curator", session=session)
    session.flush()
    return items


def _items(session: Session, ids: Sequence[int]) -> list[ReviewItem]:
    found = {i.id: i for i in session.scalars(select(ReviewItem).where(ReviewItem.id.in_(ids)))}
    missing = [i for i in ids if i not in found]
    if missing:
        raise CurationError(f"no review item(s) {', '.join(map(str, missing))}")
    return [found[i] for i in ids]


def audit_trail(session: Session, item_id: int | None = None) -> list[AuditEvent]:
    """Audit events, oldest first (those touching one item, when given)."""
    events = list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))
    return [e for e in events if item_id is None or item_id in (e.item_ids or [])]
