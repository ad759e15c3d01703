"""Search logic shared by the CLI, the pages and the API: parse, run, find a document by any spelling of its number,
a hit as JSON, facet clauses, safe highlights, similar documents (no HTTP, no terminal)."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from index.base import FACETS, Hit, Index, SearchRequest, SearchResult
from index.model import PatentDocument, PublicationNumber
from index.query.ast import MatchAll, Term
from index.query.parser import parse_query

if TYPE_CHECKING:
    from matching.embeddings import Embedder

MAX_LIMIT = 100
MAX_OFFSET = 10_000  # deeper pages use the cursor
_MARK = re.compile(r"(</?mark>)")
# facet name -> the query field a click on one of its values adds a clause for
FACET_FIELDS = {"ipc": "ipc", "cpc": "cpc", "applicant": "pa", "year": "pd", "country": "cc", "kind": "kind"}


def parse_facets(text: str | None) -> list[str]:
    """`ipc,year` -> ['ipc', 'year']; empty/None -> every facet; an unknown name raises ValueError."""
    if text is None or not text.strip():
        return list(FACETS)
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in FACETS]
    if unknown:
        raise ValueError(f"unknown facet(s) {', '.join(unknown)}: use {', '.join(FACETS)}")
    return names


def run_search(index: Index, q: str, *, limit: int = 10, offset: int = 0, cursor: str | None = None,
               facets: Sequence[str] = FACETS) -> SearchResult:
    """Parse `q` (raises QuerySyntaxError with a position) and search; an empty query matches everything."""
    query = parse_query(q) if q.strip() else MatchAll()
    request = SearchRequest(query, facets=list(facets), highlight=True, limit=max(1, min(limit, MAX_LIMIT)),
                            offset=0 if cursor else max(0, min(offset, MAX_OFFSET)), search_after=cursor or None)
    return index.search(request)


def facet_clause(facet: str, value: str) -> str:
    """The query clause a click on a facet value adds, e.g. `ipc:H02J*`, `pa:"ACME CORP"`, `pd:2013`."""
    field = FACET_FIELDS[facet]
    if facet in ("ipc", "cpc"):
        return f"{field}:{value}*"
    if re.fullmatch(r"[\w.-]+", value) and value.upper() not in ("AND", "OR", "NOT"):
        return f"{field}:{value}"
    return f'{field}:"{value.replace(chr(34), " ")}"'


def add_clause(q: str, clause: str) -> str:
    """`q` narrowed by `clause` (ANDed; an OR query is parenthesized first)."""
    q = q.strip()
    if not q:
        return clause
    if clause in q:
        return q
    return f"({q}) AND {clause}" if re.search(r"\bOR\b", q) else f"{q} AND {clause}"


def safe_highlight(snippet: str) -> str:
    """A highlight snippet as safe HTML: only <mark>/</mark> survive, all other text is escaped once.

    The embedded backend returns text already HTML-escaped around its <mark> tags (index/embedded/highlight.py
    `render`), Elasticsearch returns the raw text around them; unescaping then escaping each text part gives
    the same safe result for both.
    """
    parts = _MARK.split(snippet)
    return "".join(p if p in ("<mark>", "</mark>") else html.escape(html.unescape(p), quote=False) for p in parts)


def safe_highlights(hit: Hit) -> dict[str, list[str]]:
    return {field: [safe_highlight(s) for s in snippets] for field, snippets in hit.highlights.items()}


def find_document(index: Index, pn: str) -> PatentDocument | None:
    """A document by id (`US-7315000-B2`) or any spelling of its number (`US7315000B2`, `7315000`, ...)."""
    pn = pn.strip()
    if not pn:
        return None
    doc = index.get(pn)
    if doc is not None:
        return doc
    try:
        parsed = PublicationNumber.parse(pn)
    except ValueError:
        parsed = None
    if parsed is not None and (doc := index.get(parsed.docdb)) is not None:
        return doc
    res = index.search(SearchRequest(query=Term("pn", pn), limit=1, highlight=False))
    return res.hits[0].document if res.hits else None


def hit_json(hit: Hit) -> dict[str, Any]:
    """One search hit as the CLI's --json and the API give it."""
    doc = hit.document
    return {
        "id": hit.id, "score": round(hit.score, 4), "title": doc.title(),
        "publication_date": doc.publication_date.isoformat() if doc.publication_date else None,
        "applicants": [p.name for p in doc.applicants], "ipc": [c.symbol for c in doc.ipc[:5]],
        "cpc": [c.symbol for c in doc.cpc[:5]], "highlights": hit.highlights,
    }


# --- more like this ------------------------------------------------------------------------------------------
def document_vector(doc: PatentDocument, embedder: Embedder) -> list[float]:
    """The document's text embedded with the system's model."""
    from matching.embeddings import document_text

    return [float(x) for x in embedder.encode([document_text(doc)])[0]]


def similar_documents(index: Index, doc: PatentDocument, embedder: Embedder, k: int = 10) -> list[Hit]:
    """The `k` nearest other documents by cosine similarity of the embeddings; [] when no vectors are indexed."""
    vector = document_vector(doc, embedder)
    hits = index.knn(vector, k + 1)
    return [h for h in hits if h.id != doc.id][:k]
