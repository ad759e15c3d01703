"""Distribution tables (prefix `dist_`): the curation queue, its audit trail, deliveries and what was sent."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from db import Base, UTCDateTime, utcnow
from subscribers.models import Subscription

REVIEW_STATUSES = ("pending", "approved", "rejected")
DELIVERY_STATUSES = ("pending", "sending", "sent", "failed_permanent", "failed_transient")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class ReviewItem(Base):
    """A match waiting for (or past) a curator's decision before it may go into a subscriber's digest."""

    __tablename__ = "dist_review_items"
    __table_args__ = (UniqueConstraint("subscription_id", "match_id"),
                      CheckConstraint(_in("status", REVIEW_STATUSES), name="status"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey(Subscription.id, ondelete="CASCADE"),
                                                 index=True)
    match_id: Mapped[int] = mapped_column(Integer)  # matching_matches.id
    doc_id: Mapped[str] = mapped_column(String(64))
    profile_name: Mapped[str] = mapped_column(String(64))
    score: Mapped[float] = mapped_column(Float)
    explanation: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # copied from the match
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(320), nullable=True)  # staff email or 'auto'
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditEvent(Base):
    """One curation action by someone on one or more review items."""

    __tablename__ = "dist_audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    who: Mapped[str] = mapped_column(String(320))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    action: Mapped[str] = mapped_column(String(32))
    item_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class AuditItem(Base):
    """Which review items an audit event touched (so the audit trail can be filtered by outlet in SQL)."""

    __tablename__ = "dist_audit_items"

    event_id: Mapped[int] = mapped_column(ForeignKey(AuditEvent.id, ondelete="CASCADE"), primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey(ReviewItem.id, ondelete="CASCADE"), primary_key=True,
                                         index=True)


class Delivery(Base):
    """One digest of one subscription for one period; created before sending, so it is sent at most once."""

    __tablename__ = "dist_deliveries"
    __table_args__ = (CheckConstraint(_in("status", DELIVERY_STATUSES), name="status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey(Subscription.id, ondelete="CASCADE"),
                                                 index=True)
    period_key: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str] = mapped_column(String(120), unique=True)  # f"{subscription_id}:{period_key}"
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    item_ids: Mapped[list[int]] = mapped_column(JSON, default=list)  # dist_review_items.id, in digest order
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class SentItem(Base):
    """An item (publication or family key) a subscription was sent: never sent to it again."""

    __tablename__ = "dist_sent_items"
    __table_args__ = (UniqueConstraint("subscription_id", "item_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey(Subscription.id, ondelete="CASCADE"),
                                                 index=True)
    item_key: Mapped[str] = mapped_column(String(120))  # doc id or family:<id>
    delivery_id: Mapped[int] = mapped_column(ForeignKey("dist_deliveries.id", ondelete="CASCADE"), index=True)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
