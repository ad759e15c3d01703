"""Changing a subscription: every field checked at once (problems by field, for a form), duplicates refused, and
a frequency in words (cron-descriptor, in the UI language). Pure logic on a session; the caller commits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from subscribers import profile_rows, service
from subscribers.models import FORMATS, FREQUENCIES, Subscription

_CRON_LOCALES = {"zh": "zh_CN", "en": "en_US"}  # UI language -> cron-descriptor locale


@dataclass
class SubscriptionChange:
    """What a staff member typed into a subscription's form (strings, as a form gives them)."""

    profiles: Sequence[str]
    frequency: str  # daily | weekly | monthly | cron (then `cron` holds the expression) | a cron expression
    max_items: str
    format: str
    language: str
    timezone: str
    cron: str = ""
    auto_approve_above: str = ""
    send_when_empty: bool = False


@dataclass
class CheckedChange:
    values: dict[str, object] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)  # field -> problems (empty: valid)

    def add(self, name: str, problem: str) -> None:
        self.errors.setdefault(name, []).append(problem)


def describe_frequency(frequency: str, lang: str = "en") -> str:
    """A cron expression in words in `lang` ("At 08:00 AM, Monday through Friday"); a named period as it is."""
    if frequency in FREQUENCIES:
        return frequency
    from cron_descriptor import ExpressionDescriptor, Options

    options = Options()
    options.locale_code = _CRON_LOCALES.get(lang, "en_US")
    options.use_24hour_time_format = True
    try:
        return str(ExpressionDescriptor(frequency, options).get_description())
    except Exception:  # noqa: BLE001 - cron-descriptor raises several kinds; the expression itself was checked
        return frequency


def check_change(s: Session, change: SubscriptionChange, *, contact_id: int, outlet_id: int,
                 subscription_id: int | None = None) -> CheckedChange:
    """Every field of `change` checked (all problems, by field name), and whether it would duplicate another
    subscription of the same contact to the same profiles (not counting `subscription_id` or unsubscribed ones)."""
    out = CheckedChange()
    profiles = list(dict.fromkeys(p.strip() for p in change.profiles if p.strip()))
    if not profiles:
        out.add("profiles", "choose at least one profile")
    else:
        known = profile_rows.names_of(s, profiles, {outlet_id})
        missing = [p for p in profiles if p not in known]
        if missing:
            out.add("profiles", f"unknown profile(s): {', '.join(missing)}")
    out.values["profile_names"] = profiles
    raw = change.cron if change.frequency == "cron" else change.frequency
    name = "cron" if change.frequency == "cron" else "frequency"
    if not raw.strip():
        out.add(name, "give a cron expression such as '0 8 * * 1-5' (08:00 on weekdays)")
    else:
        try:
            out.values["frequency"] = service.check_frequency(raw)
        except service.SubscriberError as exc:
            out.add(name, str(exc))
    try:
        items = int(change.max_items.strip())
        if not 1 <= items <= service.MAX_ITEMS_LIMIT:
            raise ValueError
        out.values["max_items"] = items
    except ValueError:
        out.add("max_items", f"a whole number between 1 and {service.MAX_ITEMS_LIMIT}, not {change.max_items!r}")
    if change.format not in FORMATS:
        out.add("format", f"use one of {', '.join(FORMATS)}")
    out.values["format"] = change.format
    for key, check in (("language", service.check_language), ("timezone", service.check_timezone)):
        try:
            out.values[key] = check(getattr(change, key).strip())
        except service.SubscriberError as exc:
            out.add(key, str(exc))
    auto: float | None = None
    if change.auto_approve_above.strip():
        try:
            auto = float(change.auto_approve_above)
            if not 0.0 <= auto <= 1.0:
                raise ValueError
        except ValueError:
            out.add("auto_approve_above", f"a score between 0 and 1, not {change.auto_approve_above!r}")
    out.values["auto_approve_above"] = auto
    out.values["send_when_empty"] = bool(change.send_when_empty)
    if profiles and "profiles" not in out.errors:
        dup = find_duplicate(s, contact_id, profiles, exclude=subscription_id)
        if dup is not None:
            out.add("profiles", f"this contact already has subscription #{dup.id} to the same profile(s) "
                                f"({', '.join(dup.profile_names)}, {dup.status}): change that one instead")
    return out


def find_duplicate(s: Session, contact_id: int, profiles: Sequence[str],
                   exclude: int | None = None) -> Subscription | None:
    """Another live (not unsubscribed) subscription of the contact to exactly the same set of profiles."""
    q = select(Subscription).where(Subscription.contact_id == contact_id, Subscription.status != "unsubscribed")
    for sub in s.scalars(q.order_by(Subscription.id)):
        if sub.id != exclude and set(sub.profile_names) == set(profiles):
            return sub
    return None


def apply_change(s: Session, sub: Subscription, checked: CheckedChange) -> Subscription:
    """Store a checked change (raises ValueError if it has errors). Language and time zone are the contact's:
    they apply to every subscription of that contact."""
    if checked.errors:
        raise ValueError(f"the change has errors: {checked.errors}")
    v = checked.values
    sub.profile_names = list(v["profile_names"])  # type: ignore[call-overload]
    sub.frequency = str(v["frequency"])
    sub.max_items = int(v["max_items"])  # type: ignore[call-overload]
    sub.format = str(v["format"])
    sub.auto_approve_above = v["auto_approve_above"]  # type: ignore[assignment]
    sub.send_when_empty = bool(v["send_when_empty"])
    sub.contact.language = str(v["language"])
    sub.contact.timezone = str(v["timezone"])
    s.flush()
    return sub
