"""What goes into one digest: approved, pinned-first, not-yet-sent items grouped by profile (DB + index reads);
`digest_item` turns a document and its match explanation into display fields (pure)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from distribution.i18n import translate
from distribution.ipc_titles import subclass_title
from distribution.links import office_link
from distribution.models import Delivery, ReviewItem, SentItem
from index.base import Index
from index.model import PatentDocument
from matching.explain import Explanation, titled_classes
from subscribers.models import InterestProfile, Subscription

if TYPE_CHECKING:
    from subscribers.models import Subscription

SNIPPET_CHARS = 320
IN_CHUNK = 500  # ids per `IN (...)` when reading many subscriptions at once
_MARK = re.compile(r"<mark>(.*?)</mark>", re.S)
ACTIVE_DELIVERY = ("pending", "sending", "failed_transient")  # reserve their items for themselves


@dataclass
class Segment:
    """A piece of snippet text; `marked` pieces are the matched words."""

    text: str
    marked: bool = False


@dataclass
class DigestItem:
    review_id: int
    doc_id: str
    profile: str
    title: str
    publication_number: str
    link: str
    applicants: list[str]
    publication_date: date | None
    application_date: date | None
    main_class: str | None
    main_class_title: str | None
    snippet: list[Segment]
    why: list[str]  # reasons it matched, in the digest's language
    note: str | None = None
    pinned: bool = False
    score: float = 0.0
    keys: list[str] = field(default_factory=list)  # item keys recorded as sent (doc id, family)


@dataclass
class DigestGroup:
    profile: str
    items: list[DigestItem]


@dataclass
class Digest:
    subscription_id: int
    period_key: str
    language: str
    groups: list[DigestGroup]

    @property
    def items(self) -> list[DigestItem]:
        return [i for g in self.groups for i in g.items]

    @property
    def review_ids(self) -> list[int]:
        return [i.review_id for i in self.items]

    def __len__(self) -> int:
        return len(self.items)


class DocumentSource(Protocol):
    def get(self, doc_id: str) -> PatentDocument | None: ...


class DocumentCache:
    """An index's documents, each read (and decoded) once: many digests of a run carry the same documents."""

    def __init__(self, index: DocumentSource, maxsize: int = 20_000) -> None:
        self.get = lru_cache(maxsize=maxsize)(index.get)


@dataclass
class DigestInputs:
    """What choosing a subscription's next items reads from the database: its approved review items, the ones
    promised to its unfinished deliveries, the item keys it was sent already, and the seed patents of its
    profiles (never sent back to the subscribers who gave them as examples)."""

    approved: list[ReviewItem] = field(default_factory=list)
    reserved: set[int] = field(default_factory=set)
    sent: set[str] = field(default_factory=set)
    seeds: set[str] = field(default_factory=set)


def digest_inputs(session: Session, subscription_ids: Iterable[int]) -> dict[int, DigestInputs]:
    """`DigestInputs` of many subscriptions in a few queries (three per IN_CHUNK subscriptions)."""
    ids = sorted(set(subscription_ids))
    out = {i: DigestInputs() for i in ids}
    for start in range(0, len(ids), IN_CHUNK):
        chunk = ids[start:start + IN_CHUNK]
        for r in session.scalars(select(ReviewItem).where(ReviewItem.subscription_id.in_(chunk),
                                                          ReviewItem.status == "approved")):
            out[r.subscription_id].approved.append(r)
        for sub_id, item_ids in session.execute(select(Delivery.subscription_id, Delivery.item_ids).where(
                Delivery.subscription_id.in_(chunk), Delivery.status.in_(ACTIVE_DELIVERY))):
            out[sub_id].reserved.update(item_ids or [])
        for sub_id, key in session.execute(select(SentItem.subscription_id, SentItem.item_key).where(
                SentItem.subscription_id.in_(chunk))):
            out[sub_id].sent.add(key)
        profiles = dict(session.execute(select(Subscription.id, Subscription.profile_names).where(
            Subscription.id.in_(chunk))).all())
        seeds = profile_seeds(session, {n for names in profiles.values() for n in names or []})
        for sub_id, names in profiles.items():
            out[sub_id].seeds.update(s for n in names or [] for s in seeds.get(n, ()))
    return out


def profile_seeds(session: Session, names: Iterable[str]) -> dict[str, list[str]]:
    """Profile name -> its seed patents (publication numbers as the profile stores them)."""
    wanted = sorted(set(names))
    out: dict[str, list[str]] = {}
    for start in range(0, len(wanted), IN_CHUNK):
        for name, spec in session.execute(select(InterestProfile.name, InterestProfile.spec).where(
                InterestProfile.name.in_(wanted[start:start + IN_CHUNK]))):
            out[name] = [str(s) for s in (spec or {}).get("seeds") or []]
    return out


def worth_sending(subscription: Subscription, digest: Digest) -> bool:
    """Whether a digest goes out: it has items, or the subscription asked for one even when nothing is new."""
    return len(digest) > 0 or bool(getattr(subscription, "send_when_empty", False))


def item_keys(doc_id: str, family_id: str | None) -> list[str]:
    """The keys under which a sent item is remembered: its publication and, when known, its family."""
    return [doc_id, f"family:{family_id}"] if family_id else [doc_id]


def split_marks(snippet: str) -> list[Segment]:
    """`a <mark>b</mark> c` (HTML-escaped, as highlighters return it) -> plain-text segments."""
    out: list[Segment] = []
    pos = 0
    for m in _MARK.finditer(snippet):
        if m.start() > pos:
            out.append(Segment(html.unescape(snippet[pos:m.start()])))
        out.append(Segment(html.unescape(m.group(1)), True))
        pos = m.end()
    if pos < len(snippet):
        out.append(Segment(html.unescape(snippet[pos:])))
    return [s for s in out if s.text]


def _shorten(text: str, limit: int = SNIPPET_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0].rstrip(",;:") + " …"


def why_lines(exp: Explanation, language: str) -> list[str]:
    """Why it matched, from the stored explanation (terms, classes, applicants, nearest seed)."""
    lines: list[str] = []
    if exp.terms:
        lines.append(translate("mail.why.terms", language, terms=", ".join(exp.terms[:8])))
    if exp.classes:
        lines.append(translate("mail.why.classes", language, classes=", ".join(
            titled_classes(exp.classes[:6], lambda c: subclass_title(c, language)))))
    if exp.related_classes:
        lines.append(translate("mail.why.related", language, classes=", ".join(
            titled_classes(exp.related_classes[:3], lambda c: subclass_title(c, language)))))
    if exp.applicants:
        lines.append(translate("mail.why.applicants", language, applicants="; ".join(exp.applicants)))
    if exp.seed:
        sim = f" ({exp.seed_similarity:.2f})" if exp.seed_similarity is not None else ""
        lines.append(translate("mail.why.seed", language, seed=exp.seed, sim=sim))
    elif exp.similarity is not None:
        lines.append(translate("mail.why.similarity", language, sim=exp.similarity))
    return lines


def digest_item(review_id: int, profile: str, doc: PatentDocument, explanation: dict[str, Any] | None,
                language: str, *, note: str | None = None, pinned: bool = False, score: float = 0.0) -> DigestItem:
    """Display fields of one document in the subscriber's language (falling back to what the document has)."""
    exp = Explanation.from_dict(explanation or {})
    abstract_snippets = exp.snippets.get("ab") or []
    if abstract_snippets:
        snippet = split_marks(abstract_snippets[0])
    else:
        snippet = [Segment(_shorten(doc.abstract(language)))] if doc.abstract(language) else []
    classes = [*doc.ipc, *doc.cpc]
    main = next((c for c in classes if c.first), classes[0] if classes else None)
    return DigestItem(
        review_id=review_id, doc_id=doc.id, profile=profile, title=doc.title(language) or doc.id,
        publication_number=doc.id, link=office_link(doc.pn),
        applicants=doc.applicant_names()[:3],
        publication_date=doc.publication_date, application_date=doc.application_date,
        main_class=main.display if main else None,
        main_class_title=subclass_title(main.symbol, language) if main else None,
        snippet=snippet, why=why_lines(exp, language), note=note, pinned=pinned, score=score,
        keys=item_keys(doc.id, doc.family_id),
    )


def build_digest(session: Session, subscription: Subscription, period_key: str, index: Index | DocumentSource,
                 max_items: int | None = None, *, item_ids: Sequence[int] | None = None,
                 language: str | None = None, inputs: DigestInputs | None = None) -> Digest:
    """The digest of one subscription for one period. With `item_ids` (a delivery being retried) exactly those
    items, in that order; otherwise approved items not sent (nor promised to another pending delivery) yet,
    pinned first then by score, at most `max_items` (default: the subscription's), grouped by profile.
    `inputs`: this subscription's `digest_inputs`, when read in bulk already."""
    language = language or _language(subscription)
    q = select(ReviewItem).where(ReviewItem.subscription_id == subscription.id)
    if item_ids is not None:
        by_id = {r.id: r for r in session.scalars(q.where(ReviewItem.id.in_(list(item_ids))))}
        items = _items([by_id[i] for i in item_ids if i in by_id], index, language)
    else:
        limit = max_items if max_items is not None else getattr(subscription, "max_items", None)
        if inputs is None:
            inputs = digest_inputs(session, [subscription.id])[subscription.id]
        rows = [r for r in inputs.approved if r.id not in inputs.reserved]
        rows.sort(key=lambda r: (not r.pinned, -r.score, r.id))
        items = _select(rows, index, inputs.sent | _seed_keys(inputs.seeds, index), limit, language)
    groups: dict[str, list[DigestItem]] = {}
    for item in items:
        groups.setdefault(item.profile, []).append(item)
    return Digest(subscription.id, period_key, language, [DigestGroup(p, its) for p, its in groups.items()])


def _language(subscription: Subscription) -> str:
    contact = getattr(subscription, "contact", None)
    lang = getattr(contact, "language", None) or "en"
    return "zh" if str(lang).lower().startswith("zh") else "en"


def _items(rows: Iterable[ReviewItem], index: Index | DocumentSource, language: str) -> list[DigestItem]:
    out = []
    for r in rows:
        doc = index.get(r.doc_id)
        if doc is not None:
            out.append(digest_item(r.id, r.profile_name, doc, r.explanation, language, note=r.note,
                                   pinned=r.pinned, score=r.score))
    return out


def _seed_keys(seeds: Iterable[str], index: Index | DocumentSource) -> set[str]:
    """The item keys of seed patents: the publication (with and without its kind code) and, for a seed in the
    index, its family; an item with any of these keys is one of the seeds (or of their families)."""
    keys: set[str] = set()
    for seed in seeds:
        keys.add(seed)
        doc = index.get(seed)
        if doc is not None:
            keys.update(item_keys(doc.id, doc.family_id))
    return keys


def _is_seed(doc_id: str, keys: set[str]) -> bool:
    """A seed given without its kind code (`US-11646472`) names every kind of that publication."""
    return doc_id in keys or doc_id.rsplit("-", 1)[0] in keys


def _select(rows: Sequence[ReviewItem], index: Index | DocumentSource, sent: set[str], limit: int | None,
            language: str) -> list[DigestItem]:
    """Skip items whose publication or family was sent already (or appears twice here), up to `limit`."""
    out: list[DigestItem] = []
    seen = set(sent)
    for r in rows:
        if limit is not None and len(out) >= limit:
            break
        if r.doc_id in seen or _is_seed(r.doc_id, seen):
            continue
        item = _items([r], index, language)
        if not item or seen.intersection(item[0].keys):
            continue
        seen.update(item[0].keys)
        out.append(item[0])
    return out
