"""The search page: query box with syntax help and errors, facets that add clauses (classification facets with
their titles; the clauses added show as removable chips), highlights, page size, pagination, and the export of
the result set as CSV or RIS (/search/export)."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response

from distribution.ipc_titles import subclass_title
from index.base import FACETS, Index
from index.query.ast import QuerySyntaxError
from patentsift.searching import (
    EXPORT_LIMIT,
    EXPORT_MEDIA_TYPES,
    MAX_OFFSET,
    add_clause,
    collect_hits,
    export_filename,
    export_text,
    facet_chips,
    facet_clause,
    run_search,
    safe_highlights,
)
from patentsift.web.auth import CurrentUser
from patentsift.web.deps import get_index, language, templates
from patentsift.web.i18n import register_strings

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 10
PAGE_SIZES = (10, 25, 50, 100)

register_strings({
    "search.export": {"en": "Export", "zh": "导出"},
    "search.export_limit": {"en": "the first {n} results", "zh": "前 {n} 条结果"},
    "search.per_page": {"en": "Per page", "zh": "每页"},
    "search.active_filters": {"en": "Narrowed by", "zh": "已筛选"},
    "search.remove_filter": {"en": "Remove", "zh": "移除"},
})


@router.get("/")
def home(user: CurrentUser) -> Response:
    return RedirectResponse("/search", status_code=303)


def _url(q: str, size: int, **more: object) -> str:
    params: dict[str, object] = {"q": q}
    if size != PAGE_SIZE:
        params["size"] = size
    params.update(more)
    return "/search?" + urlencode(params)


def _facet_title(name: str, value: str, lang: str) -> str | None:
    """The title of a classification facet's subclass (`A41D` -> "Outerwear; protective garments; ...")."""
    if name not in ("ipc", "cpc"):
        return None
    return subclass_title(value[:4], lang)


@router.get("/search")
def search_page(request: Request, user: CurrentUser, index: Annotated[Index, Depends(get_index)],
                q: str = "", offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
                cursor: str | None = None, size: Annotated[int, Query(ge=1, le=100)] = PAGE_SIZE) -> Response:
    """`offset` numbers the results; `cursor` (from the previous page) fetches the page after it; `size` results
    per page."""
    context: dict[str, object] = {"q": q, "offset": offset, "result": None, "error": None, "size": size,
                                  "default_size": PAGE_SIZE}
    try:
        result = run_search(index, q, limit=size, offset=offset, cursor=cursor, facets=FACETS)
    except QuerySyntaxError as exc:
        context["error"] = {"message": exc.message, "position": exc.position, "hints": exc.hints,
                            "before": q[:exc.position], "at": q[exc.position:exc.position + 1] or " ",
                            "after": q[exc.position + 1:]}
        return templates.TemplateResponse(request, "search.html", context, status_code=400)
    except (ValueError, OverflowError) as exc:  # a malformed `cursor` (a hand-edited link): a bad request
        raise HTTPException(400, str(exc)) from None
    lang = language(request)
    context["result"] = result
    context["hits"] = [(hit, safe_highlights(hit)) for hit in result.hits]
    context["facets"] = {name: [(fv, _url(add_clause(q, facet_clause(name, fv.value)), size),
                                 _facet_title(name, fv.value, lang)) for fv in values]
                         for name, values in result.facets.items() if values}
    context["chips"] = [(clause, _url(rest, size)) for clause, rest in facet_chips(q)]
    context["sizes"] = [(n, _url(q, n)) for n in PAGE_SIZES]
    end = offset + len(result.hits)
    context["end"] = end
    if end < result.total:
        more: dict[str, object] = {"offset": end}
        if result.next_cursor:
            more["cursor"] = result.next_cursor
        context["next_url"] = _url(q, size, **more)
    if offset > 0:
        context["prev_url"] = _url(q, size, offset=max(0, offset - size))
    context["export_urls"] = {fmt: "/search/export?" + urlencode({"q": q, "format": fmt}) for fmt in EXPORT_MEDIA_TYPES}
    context["export_limit"] = EXPORT_LIMIT
    return templates.TemplateResponse(request, "search.html", context)


@router.get("/search/export")
def search_export(request: Request, user: CurrentUser, index: Annotated[Index, Depends(get_index)], q: str = "",
                  format: Literal["csv", "ris"] = "csv") -> Response:
    """The result set of `q` (its first EXPORT_LIMIT documents by relevance) as a CSV or RIS download."""
    try:
        hits, _ = collect_hits(index, q)
    except QuerySyntaxError as exc:
        raise HTTPException(400, f"invalid query at position {exc.position + 1}: {exc.message}") from None
    return Response(export_text(hits, format, language(request)), media_type=EXPORT_MEDIA_TYPES[format],
                    headers={"Content-Disposition": f'attachment; filename="{export_filename(q, format)}"'})
