"""Why a subscription gets no digest now, and when its next one is due (pure reads; no commit)."""

from __future__ import annotations

import zoneinfo
from datetime import datetime, timedelta

from croniter import croniter
from sqlalchemy import select
from sqlalchemy.orm import Session

from subscribers.models import Subscription
from subscribers.service import last_fire


def next_fire(frequency: str, now: datetime, tz: str) -> datetime:
    """The first scheduled digest time after `now`, in time zone `tz` (aware, in that zone)."""
    local = now.astimezone(zoneinfo.ZoneInfo(tz))
    fired = last_fire(frequency, now, tz)
    if frequency == "daily":
        nxt = fired + timedelta(days=1)
    elif frequency == "weekly":
        nxt = fired + timedelta(days=7)
    elif frequency == "monthly":
        nxt = (fired.replace(day=28) + timedelta(days=4)).replace(day=1)
    else:
        return croniter(frequency, local).get_next(datetime)
    return nxt  # wall-clock arithmetic on a zoneinfo time: the offset follows the date (DST-safe)


def _when(dt: datetime, tz: str) -> str:
    return f"{dt:%Y-%m-%d %H:%M} {tz}"


def not_due_reasons(s: Session, now: datetime, due_ids: set[int]) -> dict[int, str]:
    """subscription id -> why it is not due now, for every subscription not in `due_ids`."""
    out: dict[int, str] = {}
    for sub in s.scalars(select(Subscription).order_by(Subscription.id)):
        if sub.id in due_ids:
            continue
        c = sub.contact
        if sub.status == "pending":
            out[sub.id] = "not confirmed yet (the contact has not clicked the confirmation link; resend it with " \
                          f"`patentsift subscription resend-confirmation {sub.id}`)"
        elif sub.status != "active":
            out[sub.id] = f"subscription {sub.status}"
        elif c.flagged:
            out[sub.id] = f"contact flagged ({c.flag_reason or 'no reason given'}); un-flag it with " \
                          f"`patentsift contact unflag {c.id}`"
        else:
            nxt = next_fire(sub.frequency, now, c.timezone)
            first = sub.confirmed_at is not None and last_fire(sub.frequency, now, c.timezone) < sub.confirmed_at
            out[sub.id] = (f"first digest due {_when(nxt, c.timezone)} (confirmed during the current period; "
                           f"`patentsift digest send --subscription {sub.id}` sends it now)" if first
                           else f"already sent for this period; next due {_when(nxt, c.timezone)}")
    return out
