"""REST API for search and documents under /api (JSON, OpenAPI at /api/openapi.json); session cookie auth,
`X-CSRF-Token` header on unsafe methods."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from index.base import Hit, Index
from index.model import PatentDocument
from index.query.ast import QuerySyntaxError
from matching.embeddings import Embedder
from patentsift.searching import (
    EXPORT_MEDIA_TYPES,
    MAX_LIMIT,
    MAX_OFFSET,
    collect_hits,
    export_filename,
    export_text,
    parse_facets,
    run_search,
    safe_highlights,
    similar_documents,
)
from patentsift.web.auth import CurrentUser
from patentsift.web.deps import get_embedder, get_index, language
from patentsift.web.routes_documents import load_document

router = APIRouter(prefix="/api", tags=["api"])


class ErrorOut(BaseModel):
    error: str
    position: int | None = None
    hints: list[str] = []


class PartyOut(BaseModel):
    name: str
    country: str | None = None
    role: str


class ClassificationOut(BaseModel):
    scheme: str
    symbol: str
    display: str


class ClaimOut(BaseModel):
    num: int
    text: str
    depends_on: list[int]


class CitationOut(BaseModel):
    kind: str
    number: str | None = None
    text: str | None = None
    category: str | None = None
    date: dt.date | None = None


class DocumentSummary(BaseModel):
    id: str
    country: str
    kind: str
    title: str
    publication_date: dt.date | None = None
    applicants: list[str]
    ipc: list[str]


class DocumentOut(DocumentSummary):
    application_number: str | None = None
    application_date: dt.date | None = None
    titles: dict[str, str]
    abstracts: dict[str, str]
    claims: list[ClaimOut]
    description: str
    parties: list[PartyOut]
    classifications: list[ClassificationOut]
    citations: list[CitationOut]
    family_id: str | None = None
    lang: str | None = None


class HitOut(BaseModel):
    id: str
    score: float
    document: DocumentSummary
    highlights: dict[str, list[str]] = {}


class FacetValueOut(BaseModel):
    value: str
    count: int


class SearchOut(BaseModel):
    total: int
    offset: int
    limit: int
    hits: list[HitOut]
    facets: dict[str, list[FacetValueOut]]
    next_cursor: str | None = None


class SimilarOut(BaseModel):
    id: str
    hits: list[HitOut]


def summary(doc: PatentDocument) -> DocumentSummary:
    return DocumentSummary(id=doc.id, country=doc.pn.country, kind=doc.pn.kind, title=doc.title(),
                           publication_date=doc.publication_date, applicants=doc.applicant_names(),
                           ipc=[c.display for c in doc.ipc])


def full(doc: PatentDocument) -> DocumentOut:
    return DocumentOut(
        **summary(doc).model_dump(), application_number=doc.application_number,
        application_date=doc.application_date, titles=doc.titles, abstracts=doc.abstracts,
        claims=[ClaimOut(num=c.num, text=c.text, depends_on=c.depends_on) for c in doc.claims],
        description=doc.description,
        parties=[PartyOut(name=p.name, country=p.country, role=p.role) for p in [*doc.applicants, *doc.inventors]],
        classifications=[ClassificationOut(scheme=c.scheme, symbol=c.symbol, display=c.display)
                         for c in [*doc.ipc, *doc.cpc, *doc.other_classes]],
        citations=[CitationOut(kind=c.kind, number=c.number, text=c.text, category=c.category, date=c.date)
                   for c in doc.citations],
        family_id=doc.family_id, lang=doc.lang)


def hit_out(hit: Hit) -> HitOut:
    return HitOut(id=hit.id, score=hit.score, document=summary(hit.document), highlights=safe_highlights(hit))


@router.get("/search", response_model=SearchOut, responses={400: {"model": ErrorOut}})
def api_search(user: CurrentUser, index: Annotated[Index, Depends(get_index)], q: str = "",
               limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 10,
               offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
               cursor: str | None = None,
               facets: Annotated[str | None, Query(description="comma-separated facet names; empty: all")] = None,
               ) -> SearchOut | JSONResponse:
    """Search with the query language; highlights are HTML with only <mark> tags, everything else escaped."""
    try:
        names = parse_facets(facets)
        result = run_search(index, q, limit=limit, offset=offset, cursor=cursor, facets=names)
    except QuerySyntaxError as exc:
        return JSONResponse(ErrorOut(error=exc.message, position=exc.position, hints=exc.hints).model_dump(),
                            status_code=400)
    except ValueError as exc:
        return JSONResponse(ErrorOut(error=str(exc)).model_dump(), status_code=400)
    return SearchOut(total=result.total, offset=0 if cursor else offset, limit=limit,
                     hits=[hit_out(h) for h in result.hits], next_cursor=result.next_cursor,
                     facets={k: [FacetValueOut(value=v.value, count=v.count) for v in vs]
                             for k, vs in result.facets.items()})


@router.get("/search/export", response_class=Response, responses={
    200: {"content": {"text/csv": {}, "application/x-research-info-systems": {}},
          "description": "the result set as CSV or RIS"},
    400: {"model": ErrorOut}})
def api_search_export(request: Request, user: CurrentUser, index: Annotated[Index, Depends(get_index)],
                      q: str = "", format: Literal["csv", "ris"] = "csv") -> Response:
    """The first documents matching `q` by relevance (at most 1000, searching.EXPORT_LIMIT) as CSV (formula
    cells escaped) or RIS records."""
    try:
        hits, _ = collect_hits(index, q)
    except QuerySyntaxError as exc:
        return JSONResponse(ErrorOut(error=exc.message, position=exc.position, hints=exc.hints).model_dump(),
                            status_code=400)
    return Response(export_text(hits, format, language(request)), media_type=EXPORT_MEDIA_TYPES[format],
                    headers={"Content-Disposition": f'attachment; filename="{export_filename(q, format)}"'})


@router.get("/documents/{pn}", response_model=DocumentOut, responses={404: {"model": ErrorOut}})
def api_document(pn: str, user: CurrentUser, index: Annotated[Index, Depends(get_index)]) -> DocumentOut:
    return full(load_document(index, pn))


@router.get("/documents/{pn}/similar", response_model=SimilarOut, responses={404: {"model": ErrorOut}})
def api_similar(pn: str, user: CurrentUser, index: Annotated[Index, Depends(get_index)],
                embedder: Annotated[Embedder, Depends(get_embedder)],
                k: Annotated[int, Query(ge=1, le=50)] = 10) -> SimilarOut:
    """Nearest documents by embedding cosine similarity (empty when the index holds no vectors)."""
    doc = load_document(index, pn)
    return SimilarOut(id=doc.id, hits=[hit_out(h) for h in similar_documents(index, doc, embedder, k)])
