"""Render a Digest as HTML and plain text with Jinja2 (autoescape on for HTML), in Chinese or English (pure)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, Template, select_autoescape

from distribution.digest import Digest
from distribution.i18n import LANGUAGES, ntranslate, translate


@dataclass(frozen=True)
class OutletIdentity:
    """Who a digest comes from: the outlet's name, the sender display name in From (default: the outlet's name),
    a contact address and an optional note for the footer."""

    name: str = "patentsift"
    sender_name: str = ""
    contact_address: str = ""
    footer_note: str = ""

    @property
    def display_name(self) -> str:
        return self.sender_name or self.name


DEFAULT_IDENTITY = OutletIdentity()
FeedbackUrl = Callable[[int, bool], str]  # (review item id, relevant) -> the signed link


@dataclass
class RenderedDigest:
    subject: str
    text: str
    html: str | None  # None for text-only subscriptions


_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")


def _day(d: date, lang: str) -> str:
    return f"{d.year}年{d.month}月{d.day}日" if lang == "zh" else f"{d.day} {_MONTHS[d.month - 1]} {d.year}"


def period_label(period_key: str, lang: str = "en") -> str:
    """A reader's name for a digest period key (subscribers.service.period_key); unknown forms come back as is.

    'weekly:2026-W48' -> 'week 48, 2026' / '2026年第48周'; 'daily:2026-11-25' -> '25 November 2026' /
    '2026年11月25日'; 'monthly:2026-11' -> 'November 2026' / '2026年11月'; 'cron:2026-11-25T08:00:00+08:00' ->
    '25 November 2026, 08:00' / '2026年11月25日 08:00' (the fire time, in the contact's zone).
    """
    kind, _, value = period_key.partition(":")
    try:
        if kind == "weekly":
            y, w = value.split("-W")
            return f"{int(y)}年第{int(w)}周" if lang == "zh" else f"week {int(w)}, {int(y)}"
        if kind == "daily":
            return _day(date.fromisoformat(value), lang)
        if kind == "monthly":
            year, month = (int(x) for x in value.split("-"))
            if not 1 <= month <= 12:
                raise ValueError(month)
            return f"{year}年{month}月" if lang == "zh" else f"{_MONTHS[month - 1]} {year}"
        if kind == "cron":
            fired = datetime.fromisoformat(value)
            return f"{_day(fired, lang)}{' ' if lang == 'zh' else ', '}{fired:%H:%M}"
    except ValueError:
        pass
    return period_key


def _count(n: int, lang: str) -> str:
    return translate("mail.count_zero", lang) if n == 0 else ntranslate("mail.count", n, lang)


def _fmt_date(value: date | None) -> str:
    return value.isoformat() if value else ""


def make_environment() -> Environment:
    env = Environment(
        loader=PackageLoader("distribution", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
    )
    env.filters["d"] = _fmt_date
    return env


_ENV: Environment | None = None
_TEMPLATES: dict[str, Template] = {}


def _env() -> Environment:
    global _ENV
    if _ENV is None:
        _ENV = make_environment()
    return _ENV


def _template(name: str) -> Template:
    """Compiled once per process (Environment.get_template re-checks the file's mtime on every call)."""
    if name not in _TEMPLATES:
        _TEMPLATES[name] = _env().get_template(name)
    return _TEMPLATES[name]


def render_template(name: str, context: dict[str, Any]) -> str:
    """One of distribution/templates (confirmation.txt, confirmation.html ...) rendered with `context`."""
    return _template(name).render(context)


def render_digest(digest: Digest, *, unsubscribe_url: str, manage_url: str | None = None,
                  fmt: str = "html", feedback_url: FeedbackUrl | None = None,
                  identity: OutletIdentity | None = None) -> RenderedDigest:
    """Subject, plain text and (unless fmt == 'text') HTML of a digest, in the digest's language.

    `feedback_url(review_id, relevant)`: each item gets "relevant" / "not relevant" links (distribution/urls.py);
    `identity`: the outlet named in the footer. An empty digest (a subscription that asked for one) says so."""
    lang = digest.language if digest.language in LANGUAGES else "en"
    n = len(digest)
    identity = identity or DEFAULT_IDENTITY
    period, count = period_label(digest.period_key, lang), _count(n, lang)
    ctx = {"digest": digest, "t": lambda key: translate(key, lang), "lang": lang, "n": n,
           "unsubscribe_url": unsubscribe_url, "manage_url": manage_url, "feedback_url": feedback_url,
           "identity": identity, "footer": translate("mail.footer", lang, outlet=identity.name),
           "intro": period if n == 0 else ntranslate("mail.intro", n, lang, period=period)}
    subject = translate("mail.subject", lang, period=period, count=count)
    text = _template("digest.txt").render(ctx)
    html = _template("digest.html").render(ctx) if fmt != "text" else None
    return RenderedDigest(subject, text, html)
