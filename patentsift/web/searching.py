"""Search logic shared by the pages and the API: parse, run, facet clauses, safe highlights, similar (no HTTP)."""

from __future__ import annotations

import html
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from index.base import FACETS, Hit, Index, SearchRequest, SearchResult
from index.model import PatentDocument, PublicationNumber
from index.query.ast import MatchAll
from index.query.parser import parse_query

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
    """A document by id (`US-7315000-B2`) or any common spelling of its number (`US7315000B2`)."""
    doc = index.get(pn)
    if doc is not None:
        return doc
    try:
        parsed = PublicationNumber.parse(pn)
    except ValueError:
        return None
    return index.get(parsed.docdb)


# --- more like this ------------------------------------------------------------------------------------------
@dataclass
class LazyEmbedder:
    """Loads the embedding model on first use only (most pages never need it), once per app."""

    loader: Callable[[], object] | None = None
    _model: object | None = None
    _lock: threading.Lock = threading.Lock()

    def get(self) -> object:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    if self.loader is None:
                        from matching.embeddings import load_embedder

                        self.loader = load_embedder
                    self._model = self.loader()
        return self._model


def document_vector(index: Index, doc: PatentDocument, embedder: LazyEmbedder) -> list[float]:
    """The document's stored vector when the backend can return one, else its text embedded now."""
    stored = getattr(index, "vector", None)
    if callable(stored):
        vec = stored(doc.id)
        if vec is not None:
            return [float(x) for x in vec]
    from matching.embeddings import document_text

    model = embedder.get()
    return [float(x) for x in model.encode([document_text(doc)])[0]]  # type: ignore[attr-defined]


def similar_documents(index: Index, doc: PatentDocument, embedder: LazyEmbedder, k: int = 10) -> list[Hit]:
    """The `k` nearest other documents by cosine similarity of the embeddings; [] when no vectors are indexed."""
    vector = document_vector(index, doc, embedder)
    hits = index.knn(vector, k + 1)
    return [h for h in hits if h.id != doc.id][:k]
