"""Subscriber operations on a Session: outlets, staff, organizations, contacts, subscriptions with double opt-in.

Functions flush but never commit: the caller owns the transaction (`with db.session.begin() as s: ...`).
Every bad input raises a SubscriberError (a ValueError) whose message names the field and the fix.
"""

from __future__ import annotations

import re
import secrets
import zoneinfo
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from croniter import croniter
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select
from sqlalchemy.orm import Session, contains_eager

from db import utcnow
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
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024  # longer input is refused before any hashing (no megabyte passwords to hash)
# Passwords long enough for the length rule that still top the leaked-password lists (compared case-insensitively,
# also with spaces and punctuation removed).
COMMON_PASSWORDS = frozenset({
    "123456789012", "1234567890123", "12345678901234", "123456123456", "123123123123", "111111111111",
    "000000000000", "123456654321", "987654321098", "1q2w3e4r5t6y", "1qaz2wsx3edc", "1qaz2wsx3edc4rfv",
    "qwertyuiopas", "qwerty123456", "qwertyuiop123", "qwertyqwerty", "asdfghjkl123", "zaq12wsxcde3",
    "zxcvbnm12345", "password1234", "password12345", "password123456", "passwordpassword", "passw0rd1234",
    "p4ssw0rd1234", "mypassword123", "iloveyou1234", "iloveyou123456", "welcome12345", "welcome123456",
    "letmein12345", "changeme1234", "changeme123456", "administrator", "administrator1", "admin1234567",
    "adminadmin123", "trustno1trustno1", "abc123456789", "abcdefghijkl", "abcd12345678", "abcdef123456",
    "correcthorsebatterystaple", "monkey123456", "football1234", "baseball1234", "dragon123456",
    "sunshine1234", "princess1234", "superman1234", "starwars1234", "whatever1234", "computer1234",
    "internet1234", "q1w2e3r4t5y6", "a1b2c3d4e5f6", "1234qwerasdf", "qwer1234asdf", "woaini1314520",
    "5201314520131", "patentsift123", "patentsift1234",
})


def check_password(password: str, email: str = "") -> None:
    """The password rule for staff: at least MIN_PASSWORD_LENGTH characters, not a common password, not the
    address, not one or two characters repeated; raises SubscriberError saying which."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise SubscriberError(f"a staff password needs at least {MIN_PASSWORD_LENGTH} characters "
                              f"(this one has {len(password)}): a few words make a good one")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise SubscriberError(f"a staff password may have at most {MAX_PASSWORD_LENGTH} characters")
    folded = password.casefold()
    bare = re.sub(r"[\W_]+", "", folded)
    local = email.casefold().partition("@")[0]
    if folded in COMMON_PASSWORDS or bare in COMMON_PASSWORDS:
        raise SubscriberError("this password is on the list of the most common passwords: choose another")
    if email and (folded == email.casefold() or (len(local) >= 4 and local in folded and len(bare) - len(local) < 8)):
        raise SubscriberError("a staff password may not be (built on) the e-mail address: choose another")
    if len(set(folded)) < 4:
        raise SubscriberError("a staff password needs more than a few different characters")


_dummy_hash: str | None = None


def _dummy() -> str:
    """A hash of nothing anyone types, with the hasher's parameters: unknown users cost the same work."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _hasher.hash(secrets.token_urlsafe(24))
    return _dummy_hash


def password_matches(password_hash: str | None, password: str) -> bool:
    """Exactly one argon2 verification, whether or not there is a hash to check (None: a dummy hash with the same
    parameters, which never matches), so the time taken does not tell whether an account exists."""
    target = password_hash or _dummy()
    try:
        return bool(_hasher.verify(target, password[:MAX_PASSWORD_LENGTH + 1])) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


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


class InvalidText(SubscriberError):
    """A name or other value with control characters (a CR/LF in a name would end up in a mail header)."""


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


# C0 and C1 control characters (CR, LF, TAB, NUL, ESC, NEL ...) and the Unicode line/paragraph separators
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def check_text(value: str, what: str, *, max_length: int = 200, required: bool = False,
               multiline: bool = False) -> str:
    """A name or other short text, stripped: no control characters (names and what staff type for an outlet end
    up in mail headers: a CR/LF there could start a header of its own), at most `max_length` characters.
    `multiline`: line breaks are allowed (text only ever shown in a message body, such as a footer note)."""
    value = value.strip()
    bad = _CONTROL.findall(value.replace("\r\n", "\n").replace("\n", "") if multiline else value)
    if bad:
        shown = ", ".join(sorted({f"U+{ord(c):04X}" for c in bad}))
        raise InvalidText(f"{what} may not contain control characters or line breaks (found {shown}): "
                          f"{value!r}")
    if required and not value:
        raise InvalidText(f"{what} is empty: give one")
    if len(value) > max_length:
        raise InvalidText(f"{what} is too long: at most {max_length} characters, not {len(value)}")
    return value


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


def _known_profiles(s: Session, names: Iterable[str], outlet_id: int | None = None) -> list[str]:
    """The named profiles, each one a profile the outlet may use (its own or a service-wide one)."""
    from subscribers import profile_rows

    wanted = list(dict.fromkeys(n.strip() for n in names if n.strip()))
    if not wanted:
        raise SubscriberError("a subscription needs at least one profile")
    have = profile_rows.names_of(s, wanted, None if outlet_id is None else {outlet_id})
    missing = [n for n in wanted if n not in have]
    if missing:
        raise NotFound(f"unknown profile(s): {', '.join(missing)} (patentsift profile list shows the stored ones)")
    return wanted


# --- outlets and staff --------------------------------------------------------------------------------------
def create_outlet(s: Session, name: str, region: str = "", *, sender_name: str = "", contact_address: str = "",
                  footer_note: str = "") -> Outlet:
    if not name.strip():
        raise SubscriberError("an outlet needs a name")
    name = check_text(name, "the outlet name", required=True)
    if s.scalar(select(Outlet).where(Outlet.name == name)) is not None:
        raise SubscriberError(f"an outlet named {name!r} already exists")
    outlet = Outlet(name=name, region=check_text(region, "the region"))
    s.add(outlet)
    set_outlet_identity(s, outlet, sender_name=sender_name, contact_address=contact_address,
                        footer_note=footer_note)
    return outlet


def set_outlet_identity(s: Session, outlet: Outlet, *, sender_name: str | None = None,
                        contact_address: str | None = None, footer_note: str | None = None) -> Outlet:
    """The outlet's identity in its digests: the From display name (empty: the outlet's name), the contact
    address and note in the footer. None leaves a value as it is."""
    if sender_name is not None:
        outlet.sender_name = check_text(sender_name, "the sender name")
    if contact_address is not None:
        outlet.contact_address = check_text(contact_address, "the contact address", max_length=500)
    if footer_note is not None:
        outlet.footer_note = check_text(footer_note, "the footer note", max_length=2000, multiline=True)
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
    role = _choice(role, ROLES, "role")
    if s.scalar(select(StaffUser).where(StaffUser.email == email)) is not None:
        raise SubscriberError(f"a staff user {email} already exists")
    check_password(password, email)
    user = StaffUser(outlet_id=get_outlet(s, outlet_id).id, email=email, name=check_text(name, "the staff name"),
                     role=role, password_hash=_hasher.hash(password), active=True)
    s.add(user)
    s.flush()
    return user


def verify_password(user: StaffUser, password: str) -> bool:
    """True when `password` is the user's (and the user is active); upgrades an outdated hash in place."""
    if not password_matches(user.password_hash, password):
        return False
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user.active


def find_staff(s: Session, email: str) -> StaffUser | None:
    """The staff user a login name means (normalize_email's folding), or None (also for a malformed address)."""
    try:
        return s.scalar(select(StaffUser).where(StaffUser.email == normalize_email(email)))
    except InvalidEmail:
        return None


def authenticate(s: Session, email: str, password: str) -> StaffUser | None:
    """The active user with this address and password, else None; one argon2 verification on every path (unknown
    or malformed address, inactive user, wrong password), so timing does not tell which addresses exist."""
    user = find_staff(s, email)
    if user is None:
        password_matches(None, password)
        return None
    return user if verify_password(user, password) else None


# --- organizations and contacts -----------------------------------------------------------------------------
def create_organization(s: Session, outlet_id: int, name: str) -> Organization:
    if not name.strip():
        raise SubscriberError("an organization needs a name")
    name = check_text(name, "the organization name", required=True)
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
    contact = Contact(organization_id=org.id, email=email, name=check_text(name, "the contact name"),
                      language=check_language(language),
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


def unflag_contact(s: Session, contact_id: int) -> Contact:
    """Clear a delivery flag (the address works again, or the flag came from a fault of ours): digests go to the
    contact again from the next run. Unflagging an unflagged contact changes nothing."""
    contact = get_contact(s, contact_id)
    contact.flagged, contact.flag_reason = False, None
    s.flush()
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
              detail: str = "cli", send_when_empty: bool = False) -> tuple[Subscription, str]:
    """A pending subscription and the token that confirms it (double opt-in: it is active only after confirm).

    The caller commits, then mails the contact the confirmation message
    (distribution.confirmation.send_confirmation); `send_when_empty`: a digest (saying nothing is new) goes out
    even in a period with nothing approved."""
    contact = get_contact(s, contact_id)
    if not 1 <= max_items <= MAX_ITEMS_LIMIT:
        raise SubscriberError(f"max_items must be between 1 and {MAX_ITEMS_LIMIT}, not {max_items}")
    if auto_approve_above is not None and not 0.0 <= auto_approve_above <= 1.0:
        raise SubscriberError(f"auto_approve_above must be a score between 0 and 1, not {auto_approve_above}")
    sub = Subscription(contact_id=contact.id, profile_names=_known_profiles(s, profile_names, contact.organization.outlet_id),
                       frequency=check_frequency(frequency), max_items=max_items,
                       format=_choice(format, FORMATS, "format"), status="pending",
                       auto_approve_above=auto_approve_above, send_when_empty=bool(send_when_empty))
    s.add(sub)
    s.flush()
    _event(s, sub, "requested", detail)
    return sub, make_token(secret, "confirm", sub.id)


def set_send_when_empty(s: Session, subscription_id: int, value: bool) -> Subscription:
    sub = get_subscription(s, subscription_id)
    sub.send_when_empty = bool(value)
    s.flush()
    return sub


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
            "auto_approve_above": sub.auto_approve_above, "send_when_empty": bool(sub.send_when_empty),
            "confirmation_sent_at": sub.confirmation_sent_at.isoformat() if sub.confirmation_sent_at else None,
            "confirmed_at": sub.confirmed_at.isoformat() if sub.confirmed_at else None}
