"""A profile's latest matched documents as an Atom feed (feedgen; pure: the caller gives documents and links)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time

from feedgen.feed import FeedGenerator

from index.model import PatentDocument

FEED_ITEMS = 50  # entries in one feed at most
SUMMARY_CHARS = 600


@dataclass(frozen=True)
class FeedEntry:
    document: PatentDocument
    matched_at: datetime  # when the profile matched it (aware)
    score: float


def _aware(dt: datetime) -> datetime:
    """A stored time (UTC; SQLite gives it back without a zone) as an aware one."""
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def _published(entry: FeedEntry) -> datetime:
    """The publication date at midnight UTC (Atom needs a time), else when it was matched."""
    day = entry.document.publication_date
    return datetime.combine(day, time(0, 0), tzinfo=UTC) if day else _aware(entry.matched_at)


def atom_feed(*, feed_id: str, self_url: str, title: str, subtitle: str, entries: Sequence[FeedEntry],
              document_url: Callable[[str], str], author: str = "patentsift", lang: str = "en") -> bytes:
    """The Atom document (UTF-8 bytes): one entry per document with its title, a link to its page, the abstract
    as summary, the publication date as `published` and the match time as `updated`."""
    fg = FeedGenerator()
    fg.id(feed_id)
    fg.title(title)
    fg.subtitle(subtitle or title)
    fg.link(href=self_url, rel="self")
    fg.language(lang)
    fg.generator("patentsift")
    fg.author(name=author)
    newest = max((_aware(e.matched_at) for e in entries), default=datetime(1970, 1, 1, tzinfo=UTC))
    fg.updated(newest)
    for e in list(entries)[:FEED_ITEMS]:
        doc = e.document
        fe = fg.add_entry(order="append")
        fe.id(document_url(doc.id))
        fe.title(doc.title(lang) or doc.id)
        fe.link(href=document_url(doc.id), rel="alternate")
        abstract = " ".join((doc.abstract(lang) or "").split())
        fe.summary(abstract[:SUMMARY_CHARS] + ("…" if len(abstract) > SUMMARY_CHARS else "") or doc.id)
        fe.published(_published(e))
        fe.updated(_aware(e.matched_at))
        for name in doc.applicant_names()[:3]:
            fe.author(name=name)
    return fg.atom_str(pretty=True)
