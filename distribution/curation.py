"""The curation queue: new matches wait for a curator (or are auto-approved above a score); every decision is
audited and fed back to matching as relevance feedback.

Commit rule (db/__init__.py): these functions change the caller's session and flush; the caller commits, so a
decision, its audit event and the feedback it triggers are one transaction."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from distribution.models import AuditEvent, AuditItem, ReviewItem, SentItem

if TYPE_CHECKING:
    from matching.store import MatchStore

ACTIONS = ("approve", "reject", "annotate", "pin", "unpin")
_FEEDBACK = {"approve": True, "reject": False}


UNDO = "undo"
_KEPT = ("status", "decided_by", "decided_at", "pinned", "note")  # what an undo restores


class CurationError(ValueError):
    """A decision that cannot be made (unknown action or item)."""


class AlreadySent(CurationError):
    """The item was mailed to its subscriber already: its decision is history."""


def enqueue_new_matches(session: Session, match_store: MatchStore, now: datetime | None = None) -> list[ReviewItem]:
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
        record_event(session, "auto", now, "approve", auto_ids, {"reason": "score at or above auto_approve_above"})
        session.flush()
    return added


def visible_subscription_ids(outlet_ids: Collection[int]) -> Select[Any]:
    """SQL: the ids of the subscriptions of these outlets' organizations."""
    from subscribers.models import Contact, Organization, Subscription

    return (select(Subscription.id).join(Contact, Subscription.contact_id == Contact.id)
            .join(Organization, Contact.organization_id == Organization.id)
            .where(Organization.outlet_id.in_(list(outlet_ids))))


def queue(session: Session, subscription_id: int | None = None, status: str | None = "pending", *,
          outlet_ids: Collection[int] | None = None) -> list[ReviewItem]:
    """Review items (of one subscription, with one status, of these outlets' subscriptions), best score first."""
    q = select(ReviewItem)
    if subscription_id is not None:
        q = q.where(ReviewItem.subscription_id == subscription_id)
    if status is not None:
        q = q.where(ReviewItem.status == status)
    if outlet_ids is not None:
        q = q.where(ReviewItem.subscription_id.in_(visible_subscription_ids(outlet_ids)))
    return list(session.scalars(q.order_by(ReviewItem.score.desc(), ReviewItem.id)))


def record_event(session: Session, who: str, at: datetime, action: str, item_ids: Sequence[int],
                 detail: dict[str, Any] | None = None) -> AuditEvent:
    """Add an audit event and the items it touched."""
    event = AuditEvent(who=who[:320], at=at, action=action, item_ids=list(item_ids), detail=detail or {})
    session.add(event)
    session.flush()
    session.add_all(AuditItem(event_id=event.id, item_id=i) for i in dict.fromkeys(item_ids))
    return event


def sent_at() -> Any:
    """SQL: when the review item's publication was mailed to its subscription (NULL: not yet)."""
    return (select(func.max(SentItem.sent_at)).where(SentItem.subscription_id == ReviewItem.subscription_id,
                                                     SentItem.item_key == ReviewItem.doc_id)
            .correlate(ReviewItem).scalar_subquery())


def sent_items(session: Session, item_ids: Collection[int]) -> dict[int, datetime]:
    """Review item id -> when its publication was mailed to its subscription, for those mailed already."""
    q = select(ReviewItem.id, sent_at()).where(ReviewItem.id.in_(list(item_ids)))
    return {i: at for i, at in session.execute(q) if at is not None}


def decide(session: Session, item_ids: Iterable[int], action: str, who: str, note: str | None = None, *,
           match_store: MatchStore | None = None, now: datetime | None = None) -> list[ReviewItem]:
    """Apply one action (approve, reject, annotate, pin, unpin) to one or many items and write an AuditEvent;
    approve/reject are recorded as curator feedback on the matches (when `match_store` is given), in the same
    transaction (the caller commits). Items mailed already raise AlreadySent."""
    return decide_event(session, item_ids, action, who, note, match_store=match_store, now=now)[0]


def decide_event(session: Session, item_ids: Iterable[int], action: str, who: str, note: str | None = None, *,
                 match_store: MatchStore | None = None, now: datetime | None = None, undoable: bool = False
                 ) -> tuple[list[ReviewItem], AuditEvent]:
    """`decide`, returning the audit event too; `undoable` keeps the items' previous state in it for `undo`."""
    if action not in ACTIONS:
        raise CurationError(f"unknown action {action!r}: use one of {', '.join(ACTIONS)}")
    ids = list(dict.fromkeys(int(i) for i in item_ids))
    items = _items(session, ids)
    now = now or datetime.now(UTC)
    if action == "annotate" and note is None:
        raise CurationError("annotate needs a note")
    sent = sent_items(session, ids)
    if sent:
        raise AlreadySent(f"review item(s) {', '.join(map(str, sent))} were mailed already and cannot be "
                          "decided again")
    detail: dict[str, Any] = {"note": note} if note is not None else {}
    if undoable:
        detail["before"] = {str(i.id): _state(i) for i in items}
    for item in items:
        if action in _FEEDBACK:
            item.status = "approved" if action == "approve" else "rejected"
            item.decided_by, item.decided_at = who, now
        elif action in ("pin", "unpin"):
            item.pinned = action == "pin"
        if note is not None:
            item.note = note or None
    if match_store is not None and action in _FEEDBACK:
        judged = {str(match_id): match_store.judge(match_id, _FEEDBACK[action], source="curator", session=session)
                  for match_id in dict.fromkeys(i.match_id for i in items)}
        if undoable:
            detail["feedback"] = judged  # match id -> judgement id, withdrawn again by `undo`
    event = record_event(session, who, now, action, ids, detail)
    session.flush()
    return items, event


def _state(item: ReviewItem) -> dict[str, Any]:
    return {"status": item.status, "decided_by": item.decided_by, "pinned": item.pinned, "note": item.note,
            "decided_at": item.decided_at.isoformat() if item.decided_at else None}


def undo(session: Session, event_id: int, who: str, *, match_store: MatchStore | None = None,
         now: datetime | None = None) -> tuple[list[ReviewItem], AuditEvent]:
    """Restore the items an undoable decision touched to their state before it (items mailed since keep theirs),
    recorded as an 'undo' audit event. The curator feedback the decision gave matching is withdrawn (an approval
    undone no longer teaches the profile), and a restored approval or rejection is fed back again."""
    event = session.get(AuditEvent, event_id)
    before: dict[str, dict[str, Any]] = (event.detail or {}).get("before") or {} if event is not None else {}
    if event is None or not before:
        raise CurationError(f"audit event {event_id} is not a decision that can be undone")
    done = session.scalars(select(AuditEvent).where(AuditEvent.action == UNDO, AuditEvent.id.in_(
        select(AuditItem.event_id).where(AuditItem.item_id.in_([int(i) for i in before])))))
    if any((e.detail or {}).get("undoes") == event_id for e in done):
        raise CurationError(f"audit event {event_id} was undone already")
    sent = sent_items(session, [int(i) for i in before])
    ids = [int(i) for i in before if int(i) not in sent]
    items = _items(session, ids) if ids else []
    now = now or datetime.now(UTC)
    if match_store is not None and (judged := (event.detail or {}).get("feedback")):
        kept = {i.match_id for i in _items(session, sorted(sent))} if sent else set()  # mailed since: judged stays
        match_store.withdraw_feedback([f for m, f in judged.items() if int(m) not in kept], session=session)
    for item in items:
        old = before[str(item.id)]
        item.status, item.decided_by, item.pinned, item.note = (old["status"], old["decided_by"], old["pinned"],
                                                                old["note"])
        item.decided_at = datetime.fromisoformat(old["decided_at"]) if old["decided_at"] else None
        if match_store is not None and event.action in _FEEDBACK and old["status"] in ("approved", "rejected"):
            match_store.add_feedback(item.match_id, old["status"] == "approved", source="curator",
                                     session=session)
    record = record_event(session, who, now, UNDO, ids or [int(i) for i in before],
                          {"undoes": event_id, "action": event.action, "kept_sent": sorted(sent)})
    session.flush()
    return items, record


def _items(session: Session, ids: Sequence[int]) -> list[ReviewItem]:
    found = {i.id: i for i in session.scalars(select(ReviewItem).where(ReviewItem.id.in_(ids)))}
    missing = [i for i in ids if i not in found]
    if missing:
        raise CurationError(f"no review item(s) {', '.join(map(str, missing))}")
    return [found[i] for i in ids]


def audit_trail(session: Session, item_id: int | None = None) -> list[AuditEvent]:
    """Audit events, oldest first (those touching one item, when given)."""
    q = select(AuditEvent).order_by(AuditEvent.id)
    if item_id is not None:
        q = q.where(AuditEvent.id.in_(select(AuditItem.event_id).where(AuditItem.item_id == item_id)))
    return list(session.scalars(q))


def visible_audit(session: Session, outlet_ids: Collection[int] | None, limit: int = 200
                  ) -> list[tuple[AuditEvent, list[int]]]:
    """The newest audit events touching items of these outlets' subscriptions (None: all), each with only those
    item ids; filtered and limited in SQL."""
    items = select(AuditItem.event_id, AuditItem.item_id).join(ReviewItem, AuditItem.item_id == ReviewItem.id)
    if outlet_ids is not None:
        items = items.where(ReviewItem.subscription_id.in_(visible_subscription_ids(outlet_ids)))
    seen = items.subquery()
    events = list(session.scalars(select(AuditEvent).where(AuditEvent.id.in_(select(seen.c.event_id)))
                                  .order_by(AuditEvent.id.desc()).limit(limit)))
    touched: dict[int, list[int]] = {}
    for event_id, item_id in session.execute(select(seen.c.event_id, seen.c.item_id).where(
            seen.c.event_id.in_([e.id for e in events]))):
        touched.setdefault(event_id, []).append(item_id)
    return [(e, [i for i in e.item_ids or [] if i in set(touched.get(e.id, []))]) for e in events]
