"""Subscriber operations on a Session: outlets, staff, organizations, contacts, subscriptions with double opt-in.

Functions flush but never commit: the caller owns the transaction (`with db.session.begin() as s: ...`).
Every bad input raises a SubscriberError (a ValueError) whose message names the field and the fix.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from croniter import croniter
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import column, select, table
from sqlalchemy.orm import Session, contains_eager

from subscribers.db import utcnow
from subscribers.models import (
    FORMATS,
    FREQUENCIES,
    LANGUAGES,
    ROLES,
    ConsentEvent,
    Contact,
    Organization,
    Outlet,
    StaffUser,
    Subscription,
)
from subscribers.tokens import make_token, read_token

MAX_ITEMS_LIMIT = 500
_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters


class SubscriberError(ValueError):
    """Bad input or an impossible change; the message says what and how to fix it."""


class InvalidEmail(SubscriberError):
    pass


class InvalidLanguage(SubscriberError):
    pass


class InvalidTimezone(SubscriberError):
    pass


class InvalidFrequency(SubscriberError):
    pass


class NotFound(SubscriberError, LookupError):
    pass


class StateError(SubscriberError):
    """The subscription is not in a state that allows this (e.g. resuming an unsubscribed one)."""


# --- validation ---------------------------------------------------------------------------------------------
def normalize_email(email: str) -> str:
    """A valid address, lower-cased whole (mail systems in practice ignore the case of the local part too)."""
    try:
        return validate_email(email.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise InvalidEmail(f"invalid e-mail address {email!r}: {exc}") from None


def check_language(language: str) -> str:
    value = language.strip().lower()
    if value not in LANGUAGES:
        raise InvalidLanguage(f"unknown language {language!r}: use one of {', '.join(LANGUAGES)}")
    return value


def check_timezone(name: str) -> str:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise InvalidTimezone(f"unknown time zone {name!r}: use an IANA name such as Asia/Shanghai or "
                              "Europe/Berlin") from None
    return name


def check_frequency(frequency: str) -> str:
    """'daily', 'weekly', 'monthly', or a 5-field cron expression (minute hour day month weekday)."""
    value = " ".join(frequency.split())
    if value.lower() in FREQUENCIES:
        return value.lower()
    if len(value.split(" ")) != 5 or not croniter.is_valid(value):
        raise InvalidFrequency(f"invalid frequency {frequency!r}: use daily, weekly, monthly or a 5-field cron "
                               "expression such as '0 8 * * 1-5' (08:00 on weekdays)")
    return value


def _choice(value: str, allowed: Sequence[str], what: str) -> str:
    if value not in allowed:
        raise SubscriberError(f"unknown {what} {value!r}: use one of {', '.join(allowed)}")
    return value


_PROFILES = table("matching_profiles", column("name"))  # matching's table, in the same database: read by name only


def _known_profiles(s: Session, names: Iterable[str]) -> list[str]:
    wanted = list(dict.fromkeys(n.strip() for n in names if n.strip()))
    if not wanted:
        raise SubscriberError("a subscription needs at least one profile")
    have = set(s.scalars(select(_PROFILES.c.name).where(_PROFILES.c.name.in_(wanted))))
    missing = [n for n in wanted if n not in have]
    if missing:
        raise NotFound(f"unknown profile(s): {', '.join(missing)} (patentsift profile list shows the stored ones)")
    return wanted


# --- outlets and staff --------------------------------------------------------------------------------------
def create_outlet(s: Session, name: str, region: str = "") -> Outlet:
    name = name.strip()
    if not name:
        raise SubscriberError("an outlet needs a name")
    if s.scalar(select(Outlet).where(Outlet.name == name)) is not None:
        raise SubscriberError(f"an outlet named {name!r} already exists")
    outlet = Outlet(name=name, region=region.strip())
    s.add(outlet)
    s.flush()
    return outlet


def get_outlet(s: Session, ref: str | int) -> Outlet:
    """An outlet by id or name."""
    outlet = s.get(Outlet, int(ref)) if str(ref).isdigit() else None
    outlet = outlet or s.scalar(select(Outlet).where(Outlet.name == str(ref)))
    if outlet is None:
        raise NotFound(f"no outlet {ref!r} (patentsift outlet add NAME creates one)")
    return outlet


def create_staff(s: Session, outlet_id: int, email: str, password: str, name: str = "",
                 role: str = "staff") -> StaffUser:
    email = normalize_email(email)
    if len(password) < 8:
        raise SubscriberError("a staff password needs at least 8 characters")
    if s.scalar(select(StaffUser).where(StaffUser.email == email)) is not None:
        raise SubscriberError(f"a staff user {email} already exists")
    user = StaffUser(outlet_id=get_outlet(s, outlet_id).id, email=email, name=name.strip(),
                     role=_choice(role, ROLES, "role"), password_hash=_hasher.hash(password), active=True)
    s.add(user)
    s.flush()
    return user


def verify_password(user: StaffUser, password: str) -> bool:
    """True when `password` is the user's (and the user is active); upgrades an outdated hash in place."""
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user.active


def authenticate(s: Session, email: str, password: str) -> StaffUser | None:
    user = s.scalar(select(StaffUser).where(StaffUser.email == normalize_email(email)))
    return user if user is not None and verify_password(user, password) else None


# --- organizations and contacts -----------------------------------------------------------------------------
def create_organization(s: Session, outlet_id: int, name: str) -> Organization:
    name = name.strip()
    if not name:
        raise SubscriberError("an organization needs a name")
    outlet = get_outlet(s, outlet_id)
    if s.scalar(select(Organization).where(Organization.outlet_id == outlet.id, Organization.name == name)):
        raise SubscriberError(f"outlet {outlet.name!r} already has an organization named {name!r}")
    org = Organization(outlet_id=outlet.id, name=name)
    s.add(org)
    s.flush()
    return org


def get_organization(s: Session, ref: str | int, outlet_id: int | None = None) -> Organization:
    """An organization by id or name (a name must be unambiguous, or narrowed by `outlet_id`)."""
    if str(ref).isdigit() and (org := s.get(Organization, int(ref))) is not None:
        return org
    q = select(Organization).where(Organization.name == str(ref))
    if outlet_id is not None:
        q = q.where(Organization.outlet_id == outlet_id)
    found = list(s.scalars(q))
    if not found:
        raise NotFound(f"no organization {ref!r} (patentsift org add NAME --outlet OUTLET creates one)")
    if len(found) > 1:
        raise SubscriberError(f"{len(found)} organizations are named {ref!r}: give the outlet or the id")
    return found[0]


def add_contact(s: Session, organization_id: int, email: str, name: str = "", language: str = "en",
                timezone: str = "UTC") -> Contact:
    org = get_organization(s, organization_id)
    email = normalize_email(email)
    if s.scalar(select(Contact).where(Contact.organization_id == org.id, Contact.email == email)) is not None:
        raise SubscriberError(f"{email} is already a contact of {org.name!r}")
    contact = Contact(organization_id=org.id, email=email, name=name.strip(), language=check_language(language),
                      timezone=check_timezone(timezone), flagged=False)
    s.add(contact)
    s.flush()
    return contact


def get_contact(s: Session, ref: str | int, organization_id: int | None = None) -> Contact:
    """A contact by id or e-mail address (unambiguous, or narrowed by `organization_id`)."""
    if str(ref).isdigit() and (c := s.get(Contact, int(ref))) is not None:
        return c
    q = select(Contact).where(Contact.email == normalize_email(str(ref)))
    if organization_id is not None:
        q = q.where(Contact.organization_id == organization_id)
    found = list(s.scalars(q))
    if not found:
        raise NotFound(f"no contact {ref!r} (patentsift contact add EMAIL --org ORG creates one)")
    if len(found) > 1:
        raise SubscriberError(f"{ref} is a contact of {len(found)} organizations: give the organization")
    return found[0]


def flag_contact(s: Session, contact_id: int, reason: str) -> Contact:
    """Mark a permanent delivery failure: no more digests go to this contact until unflagged."""
    contact = get_contact(s, contact_id)
    contact.flagged, contact.flag_reason = True, reason
    return contact


# --- subscriptions ------------------------------------------------------------------------------------------
def _event(s: Session, sub: Subscription, kind: str, detail: str, at: datetime | None = None) -> None:
    s.add(ConsentEvent(subscription_id=sub.id, kind=kind, detail=detail, at=at or utcnow()))
    s.flush()


def get_subscription(s: Session, subscription_id: int) -> Subscription:
    sub = s.get(Subscription, subscription_id)
    if sub is None:
        raise NotFound(f"no subscription with id {subscription_id}")
    return sub


def subscribe(s: Session, secret: str, contact_id: int, profile_names: Iterable[str], frequency: str = "weekly",
              max_items: int = 20, format: str = "html", auto_approve_above: float | None = None,
              detail: str = "cli") -> tuple[Subscription, str]:
    """A pending subscription and the token that confirms it (double opt-in: it is active only after confirm)."""
    contact = get_contact(s, contact_id)
    if not 1 <= max_items <= MAX_ITEMS_LIMIT:
        raise SubscriberError(f"max_items must be between 1 and {MAX_ITEMS_LIMIT}, not {max_items}")
    if auto_approve_above is not None and not 0.0 <= auto_approve_above <= 1.0:
        raise SubscriberError(f"auto_approve_above must be a score between 0 and 1, not {auto_approve_above}")
    sub = Subscription(contact_id=contact.id, profile_names=_known_profiles(s, profile_names),
                       frequency=check_frequency(frequency), max_items=max_items,
                       format=_choice(format, FORMATS, "format"), status="pending",
                       auto_approve_above=auto_approve_above)
    s.add(sub)
    s.flush()
    _event(s, sub, "requested", detail)
    return sub, make_token(secret, "confirm", sub.id)


def confirm(s: Session, secret: str, token: str, detail: str = "link") -> Subscription:
    """Activate the subscription a confirm token names; confirming again changes nothing."""
    sub = get_subscription(s, read_token(secret, "confirm", token))
    if sub.status == "pending":
        sub.status, sub.confirmed_at = "active", utcnow()
        _event(s, sub, "confirmed", detail, sub.confirmed_at)
    elif sub.status == "unsubscribed":
        raise StateError(f"subscription {sub.id} was unsubscribed; subscribe again to receive digests")
    return sub


def _transition(s: Session, subscription_id: int, source: str, target: str, kind: str, detail: str) -> Subscription:
    """Move a subscription from `source` to `target` status (a repeat changes nothing), recording consent."""
    sub = get_subscription(s, subscription_id)
    if sub.status == source:
        sub.status = target
        _event(s, sub, kind, detail)
    elif sub.status != target:
        article = "an" if source[0] in "aeiou" else "a"
        raise StateError(f"subscription {sub.id} is {sub.status}; only {article} {source} one can be {kind}")
    return sub


def pause(s: Session, subscription_id: int, detail: str = "cli") -> Subscription:
    return _transition(s, subscription_id, "active", "paused", "paused", detail)


def resume(s: Session, subscription_id: int, detail: str = "cli") -> Subscription:
    return _transition(s, subscription_id, "paused", "active", "resumed", detail)


def unsubscribe(s: Session, secret: str, token: str, via: str = "link") -> Subscription:
    """End the subscription an unsubscribe token names, from any state; a repeat changes nothing."""
    sub = get_subscription(s, read_token(secret, "unsubscribe", token))
    if sub.status != "unsubscribed":
        sub.status, sub.unsubscribed_at = "unsubscribed", utcnow()
        _event(s, sub, "unsubscribed", via, sub.unsubscribed_at)
    return sub


def list_subscriptions(s: Session, outlet_id: int | None = None,
                       organization_id: int | None = None) -> list[Subscription]:
    q = select(Subscription).join(Contact).join(Organization).order_by(Subscription.id)
    if outlet_id is not None:
        q = q.where(Organization.outlet_id == outlet_id)
    if organization_id is not None:
        q = q.where(Contact.organization_id == organization_id)
    return list(s.scalars(q))


# --- schedules ----------------------------------------------------------------------------------------------
def last_fire(frequency: str, now: datetime, tz: str) -> datetime:
    """The latest scheduled digest time at or before `now`, in time zone `tz` (aware, in that zone).

    daily: local midnight; weekly: Monday 00:00; monthly: the 1st at 00:00; a cron expression: its last fire.
    """
    if now.tzinfo is None:
        raise ValueError("now must be time-zone aware")
    local = now.astimezone(zoneinfo.ZoneInfo(tz))
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if frequency == "daily":
        return _localize(midnight)
    if frequency == "weekly":
        return _localize(midnight - timedelta(days=local.weekday()))
    if frequency == "monthly":
        return _localize(midnight.replace(day=1))
    minute = local.replace(second=0, microsecond=0)
    if croniter.match(frequency, minute):
        return minute
    return croniter(frequency, local).get_prev(datetime)


def _localize(dt: datetime) -> datetime:
    """Normalize a wall-clock time computed by replace() (fixes the UTC offset across a DST change)."""
    return dt.astimezone(UTC).astimezone(dt.tzinfo)


def period_key(subscription: Subscription, now: datetime) -> str:
    """Which digest period `now` falls in for this subscription, in its contact's time zone.

    'daily:2026-11-25', 'weekly:2026-W48', 'monthly:2026-11' or 'cron:2026-11-25T08:00:00+08:00' (the last fire).
    """
    tz = subscription.contact.timezone
    fired = last_fire(subscription.frequency, now, tz)
    if subscription.frequency == "daily":
        return f"daily:{fired:%Y-%m-%d}"
    if subscription.frequency == "weekly":
        year, week, _ = fired.isocalendar()
        return f"weekly:{year}-W{week:02d}"
    if subscription.frequency == "monthly":
        return f"monthly:{fired:%Y-%m}"
    return f"cron:{fired.isoformat()}"


@dataclass(frozen=True)
class Due:
    subscription: Subscription
    period_key: str
    fired_at: datetime  # when this period's digest became due (aware, the contact's zone)


def due_subscriptions(s: Session, now: datetime,
                      already: Collection[tuple[int, str]] = ()) -> list[Due]:
    """Active subscriptions of unflagged contacts whose current period began after they were confirmed.

    `already` holds (subscription id, period key) pairs that got their digest (the distribution room's record);
    those are left out.
    """
    q = (select(Subscription).join(Contact).options(contains_eager(Subscription.contact))
         .where(Subscription.status == "active", Contact.flagged.is_(False)).order_by(Subscription.id))
    out: list[Due] = []
    for sub in s.scalars(q):
        fired = last_fire(sub.frequency, now, sub.contact.timezone)
        if sub.confirmed_at is None or fired < sub.confirmed_at:
            continue  # the first digest comes at the first period boundary after confirmation
        key = period_key(sub, now)
        if (sub.id, key) not in already:
            out.append(Due(sub, key, fired))
    return out


def describe(sub: Subscription) -> dict[str, Any]:
    """A plain view of a subscription for listings and JSON output."""
    c = sub.contact
    return {"id": sub.id, "contact": c.email, "organization": c.organization.name, "profiles": sub.profile_names,
            "frequency": sub.frequency, "max_items": sub.max_items, "format": sub.format, "status": sub.status,
            "language": c.language, "timezone": c.timezone, "flagged": c.flagged,
            "auto_approve_above": sub.auto_approve_above,
            "confirmed_at": sub.confirmed_at.isoformat() if sub.confirmed_at else None}
