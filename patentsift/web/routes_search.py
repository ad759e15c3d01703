"""The search page: query box with syntax help and errors, facets that add clauses, highlights, pagination."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response

from index.base import FACETS, Index
from index.query.ast import QuerySyntaxError
from patentsift.searching import (
    MAX_OFFSET,
    add_clause,
    facet_clause,
    run_search,
    safe_highlights,
)
from patentsift.web.auth import CurrentUser
from patentsift.web.deps import get_index, templates

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 10


@router.get("/")
def home(user: CurrentUser) -> Response:
    return RedirectResponse("/search", status_code=303)


@router.get("/search")
def search_page(request: Request, user: CurrentUser, index: Annotated[Index, Depends(get_index)],
                q: str = "", offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
                cursor: str | None = None) -> Response:
    """`offset` numbers the results; `cursor` (from the previous page) fetches the page after it."""
    context: dict[str, object] = {"q": q, "offset": offset, "result": None, "error": None}
    try:
        result = run_search(index, q, limit=PAGE_SIZE, offset=offset, cursor=cursor, facets=FACETS)
    except QuerySyntaxError as exc:
        context["error"] = {"message": exc.message, "position": exc.position, "hints": exc.hints,
                            "before": q[:exc.position], "at": q[exc.position:exc.position + 1] or " ",
                            "after": q[exc.position + 1:]}
        return templates.TemplateResponse(request, "search.html", context, status_code=400)
    except (ValueError, OverflowError) as exc:  # a malformed `cursor` (a hand-edited link): a bad request
        raise HTTPException(400, str(exc)) from None
    context["result"] = result
    context["hits"] = [(hit, safe_highlights(hit)) for hit in result.hits]
    context["facets"] = {name: [(fv, "/search?" + urlencode({"q": add_clause(q, facet_clause(name, fv.value))}))
                                for fv in values] for name, values in result.facets.items() if values}
    end = offset + len(result.hits)
    context["end"] = end
    if end < result.total:
        params = {"q": q, "offset": end}
        if result.next_cursor:
            params["cursor"] = result.next_cursor
        context["next_url"] = "/search?" + urlencode(params)
    if offset > 0:
        context["prev_url"] = "/search?" + urlencode({"q": q, "offset": max(0, offset - PAGE_SIZE)})
    return templates.TemplateResponse(request, "search.html", context)
