"""The one index interface both backends (embedded SQLite, Elasticsearch) implement, and the optional abilities
a backend may add (small protocols; the conformance suite states which backend offers which)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol, runtime_checkable

from index.model import PatentDocument
from index.query.ast import Query

FACETS = ("ipc", "cpc", "applicant", "year", "country", "kind")
"""Facet names: ipc/cpc count by subclass (e.g. `H02J`), applicant by normalized name."""
SORTS = ("relevance", "pd", "ad")
"""Result orders: relevance (score, then publication date, newest first); pd / ad: publication / filing date,
newest first, documents without that date last, then score, then id. Both backends support each."""


def check_sort(sort: str) -> str:
    """`sort` if it is one of SORTS, else ValueError naming them."""
    if sort not in SORTS:
        raise ValueError(f"unknown sort {sort!r}: use one of {', '.join(SORTS)}")
    return sort


@dataclass
class Filters:
    """Structured filters (ANDed with the query); every field optional."""

    countries: Sequence[str] = ()
    kinds: Sequence[str] = ()
    published_from: date | None = None
    published_to: date | None = None
    ipc_prefixes: Sequence[str] = ()
    cpc_prefixes: Sequence[str] = ()
    applicants: Sequence[str] = ()  # normalized applicant names (see index.model.normalize_party_name)
    ids: Sequence[str] | None = None  # restrict to these document ids
    min_seq: int | None = None  # only documents upserted after this sequence number (a matching watermark)


@dataclass
class SearchRequest:
    query: Query
    filters: Filters = field(default_factory=Filters)
    facets: Sequence[str] = ()
    highlight: bool = True
    limit: int = 10
    offset: int = 0
    search_after: str | None = None  # opaque cursor from SearchResult.next_cursor (deep pagination)
    sort: str = "relevance"  # one of SORTS (a cursor continues only the sort it came from)


@dataclass
class Hit:
    id: str
    score: float
    document: PatentDocument
    highlights: dict[str, list[str]] = field(default_factory=dict)  # field -> snippets with <mark>..</mark>


@dataclass
class FacetValue:
    value: str
    count: int


@dataclass
class SearchResult:
    total: int
    hits: list[Hit]
    facets: dict[str, list[FacetValue]] = field(default_factory=dict)
    next_cursor: str | None = None


@dataclass
class UpsertReport:
    """Per-document outcome of a bulk write: nothing is dropped silently."""

    indexed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (document id, reason)

    def merge(self, other: UpsertReport) -> None:
        self.indexed.extend(other.indexed)
        self.failed.extend(other.failed)


class IndexError_(RuntimeError):
    """A backend failure a user can act on (server unreachable, bad configuration)."""


@runtime_checkable
class Index(Protocol):
    def upsert(self, documents: Iterable[PatentDocument]) -> UpsertReport:
        """Insert or replace by publication number; never duplicates."""

    def delete(self, ids: Iterable[str]) -> int: ...

    def get(self, doc_id: str) -> PatentDocument | None: ...

    def search(self, request: SearchRequest) -> SearchResult: ...

    def count(self) -> int: ...

    def set_vectors(self, vectors: dict[str, Sequence[float]]) -> None:
        """Store dense vectors (one model/dimension per index) for documents already upserted."""

    def knn(self, vector: Sequence[float], k: int, filters: Filters | None = None) -> list[Hit]:
        """Nearest documents by cosine similarity (score = cosine)."""

    def documents_since(self, seq: int, limit: int = 1000) -> Iterator[tuple[int, PatentDocument]]:
        """Documents upserted after sequence number `seq`, oldest first, with their sequence numbers."""

    def close(self) -> None: ...


# --- optional abilities -------------------------------------------------------------------------------------
@runtime_checkable
class BatchLexicalScores(Protocol):
    """BM25 for many queries over a window of documents at once (matching's fast path)."""

    def lexical_scores(self, queries: Sequence[Query], filters: Filters | None = None, limit: int = 10,
                       max_seq: int | None = None) -> list[dict[str, float]]: ...


@runtime_checkable
class BatchHighlights(Protocol):
    """Highlights of many (query, documents) pairs, each document analyzed once for every query."""

    def highlight_many(self, requests: Sequence[tuple[Query, Sequence[PatentDocument]]]
                       ) -> list[dict[str, dict[str, list[str]]]]: ...


@runtime_checkable
class VectorModelTag(Protocol):
    """Remembers which embedding model made the stored vectors, so vectors of two models are never mixed."""

    def vector_model(self) -> str | None: ...

    def set_vector_model(self, model_id: str | None) -> None: ...


@runtime_checkable
class StoredVectors(Protocol):
    """The stored vectors themselves, and which documents lack one. With them matching takes a preview's
    candidates from `knn` (the nearest stored vectors, `filters` applied; Elasticsearch: HNSW on the node) instead
    of embedding every document of the window (matching.engine.MatchingEngine.preview)."""

    def vectors(self, ids: Sequence[str]) -> dict[str, list[float]]:
        """The stored vector of each of `ids` that has one."""

    def without_vectors(self, filters: Filters | None = None, limit: int = 1000) -> tuple[int, list[str]]:
        """How many documents matching `filters` have no stored vector, and (up to `limit` of) their ids."""


@runtime_checkable
class Rebuildable(Protocol):
    """Reindexes into a fresh index with the current mapping and swaps it in without downtime."""

    def rebuild(self, mode: str | None = None) -> str: ...


@runtime_checkable
class Prepared(Protocol):
    """A full (non-partial) document whose per-document write work a backend did ahead, e.g. in a parse worker."""

    @property
    def id(self) -> str: ...

    @property
    def partial(self) -> bool: ...

    def document(self) -> PatentDocument:
        """The document itself, as the backend will store it."""


@runtime_checkable
class PreparedUpsert(Protocol):
    """Per-document write work (analysis, encoding) done before `upsert`, in any process: `preparer()` is a picklable
    function from a full document to a `Prepared`, which `upsert` takes in place of the document."""

    def preparer(self) -> Callable[[PatentDocument], Prepared]: ...

    def upsert(self, documents: Iterable[PatentDocument | Prepared]) -> UpsertReport: ...


def as_document(item: PatentDocument | Prepared) -> PatentDocument:
    """The document itself, whether given as it is or prepared."""
    return item if isinstance(item, PatentDocument) else item.document()


@runtime_checkable
class ApplicantNames(Protocol):
    """Every distinct applicant name the index holds (normalized, as the applicant facet counts them) with its
    number of documents, most documents first, then by name (applicant watch: which stored names a profile hits)."""

    def applicant_names(self) -> list[FacetValue]: ...
