"""Delivery status of subscriptions for staff pages: last digest sent, next one due, failures (pure reads)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from distribution.models import Delivery
from subscribers.due import next_fire
from subscribers.models import Subscription


@dataclass(frozen=True)
class DeliveryStatus:
    last_sent: datetime | None  # the last digest the server took (UTC)
    next_due: datetime | None  # the next scheduled digest, in the contact's zone (None: paused, pending, ended)
    failures: int  # digests that failed (permanently or still to retry)
    last_error: str | None


def delivery_status(s: Session, subs: Sequence[Subscription], now: datetime) -> dict[int, DeliveryStatus]:
    """subscription id -> its delivery status at `now` (aware)."""
    ids = [sub.id for sub in subs]
    sent = dict(s.execute(select(Delivery.subscription_id, func.max(Delivery.sent_at))
                          .where(Delivery.subscription_id.in_(ids), Delivery.status == "sent")
                          .group_by(Delivery.subscription_id)).all()) if ids else {}
    failed: dict[int, tuple[int, str | None]] = {}
    if ids:
        rows = s.execute(select(Delivery.subscription_id, Delivery.last_error)
                         .where(Delivery.subscription_id.in_(ids), Delivery.status.like("failed%"))
                         .order_by(Delivery.id)).all()
        for sub_id, error in rows:
            count, _ = failed.get(sub_id, (0, None))
            failed[sub_id] = (count + 1, error)
    out: dict[int, DeliveryStatus] = {}
    for sub in subs:
        nxt = next_fire(sub.frequency, now, sub.contact.timezone) if sub.status == "active" else None
        count, error = failed.get(sub.id, (0, None))
        out[sub.id] = DeliveryStatus(sent.get(sub.id), nxt, count, error)
    return out
