"""Reader feedback: a subscriber's "relevant" / "not relevant" click on a digest item (a signed link, see
distribution/urls.py), recorded like a curator's decision: an audit event on the review item (shown in the
curation view) and a judgement on its match for the profile (matching's `add_feedback`, source 'subscriber'),
which adapts the profile as curators' approvals and rejections do.

Functions change the caller's session and flush; the caller commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from distribution.curation import record_event
from distribution.models import AuditEvent, AuditItem, ReviewItem

ACTION = "feedback"


class FeedbackError(LookupError):
    """The link names no digest item of that subscription (deleted since, or not this subscriber's)."""


@dataclass(frozen=True)
class ReaderJudgement:
    relevant: bool
    at: datetime
    who: str


def reader_item(session: Session, subscription_id: int, item_id: int) -> ReviewItem:
    """The review item a feedback link is about, checked to belong to the link's subscription."""
    item = session.get(ReviewItem, item_id)
    if item is None or item.subscription_id != subscription_id:
        raise FeedbackError(f"the publication this link is about is no longer in subscription "
                            f"{subscription_id}'s digests")
    return item


def reader_judgements(session: Session, item_ids: list[int] | None = None) -> dict[int, ReaderJudgement]:
    """Review item id -> the latest reader judgement on it (of the given items, or all)."""
    q = (select(AuditItem.item_id, AuditEvent).join(AuditEvent, AuditItem.event_id == AuditEvent.id)
         .where(AuditEvent.action == ACTION).order_by(AuditEvent.id))
    if item_ids is not None:
        q = q.where(AuditItem.item_id.in_(list(item_ids)))
    out: dict[int, ReaderJudgement] = {}
    for item_id, e in session.execute(q):
        out[item_id] = ReaderJudgement(bool((e.detail or {}).get("relevant")), e.at, e.who)
    return out


def record_reader_feedback(session: Session, subscription_id: int, item_id: int, relevant: bool, *,
                           match_store: Any | None = None, now: datetime | None = None) -> tuple[ReviewItem, bool]:
    """Record one reader judgement; returns the item and whether anything changed (a second click with the same
    judgement records nothing). With `match_store`, the judgement is fed to the profile (source 'subscriber')."""
    from subscribers.models import Subscription

    item = reader_item(session, subscription_id, item_id)
    latest = reader_judgements(session, [item.id]).get(item.id)
    if latest is not None and latest.relevant == relevant:
        return item, False
    sub = session.get(Subscription, subscription_id)
    who = f"reader:{sub.contact.email}" if sub is not None else f"reader:subscription {subscription_id}"
    record_event(session, who, now or datetime.now(UTC), ACTION, [item.id],
                 {"relevant": relevant, "subscription_id": subscription_id, "profile": item.profile_name})
    if match_store is not None:
        from matching.store import UnknownMatch

        try:
            match_store.add_feedback(item.match_id, relevant, source="subscriber", session=session)
        except UnknownMatch:
            pass  # the match was removed since (the profile was rebuilt); the audit event stays
    session.flush()
    return item, True
