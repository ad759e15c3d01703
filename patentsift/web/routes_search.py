"""The search page: query box with syntax help and errors, sort order (relevance, publication or filing date),
one result per patent family (expandable to its other members), facets that add clauses (classification facets
with their titles; the clauses added show as removable chips), highlights, page size, pagination, the export of
the result set as CSV or RIS (/search/export), and "save as profile" (/search/save-profile: a profile of the
user's outlet with the query as its boolean query, opened in the profile editor)."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response

from distribution.ipc_titles import subclass_title
from index.base import FACETS, SORTS, Index
from index.query.ast import QuerySyntaxError
from matching.store import MatchStore
from patentsift.searching import (
    EXPORT_LIMIT,
    EXPORT_MEDIA_TYPES,
    MAX_OFFSET,
    FamilyGroup,
    add_clause,
    collect_hits,
    export_filename,
    export_text,
    facet_chips,
    facet_clause,
    family_page,
    run_search,
    safe_highlights,
)
from patentsift.web.auth import CurrentUser
from patentsift.web.deps import get_index, get_match_store, language, templates
from patentsift.web.routes_profiles import name_taken
from subscribers.profiles import Profile, ProfileError, validate_profile

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 10
PAGE_SIZES = (10, 25, 50, 100)


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
                cursor: str | None = None, size: Annotated[int, Query(ge=1, le=100)] = PAGE_SIZE,
                sort: Literal["relevance", "pd", "ad"] = "relevance", group: bool = True) -> Response:
    """`offset` numbers the results (the families, when grouped); `cursor` (from the previous page of a flat list)
    fetches the page after it, so a cursor pages the flat list; `size` results per page; `sort` the order;
    `group`: one result per family."""
    if cursor:
        group = False
    return _search_page(request, index, q, offset=offset, cursor=cursor, size=size, sort=sort, group=group)


def _search_page(request: Request, index: Index, q: str, *, offset: int = 0, cursor: str | None = None,
                 size: int = PAGE_SIZE, sort: str = "relevance", group: bool = True,
                 save_error: list[str] | None = None, profile_name: str = "") -> Response:
    """The search page for `q`; `save_error`: why "save as profile" failed (shown next to the name field)."""
    keep: dict[str, object] = {}  # what every link on the page carries over
    if sort != "relevance":
        keep["sort"] = sort
    if not group:
        keep["group"] = 0
    context: dict[str, object] = {"q": q, "offset": offset, "result": None, "error": None, "size": size,
                                  "default_size": PAGE_SIZE, "sort": sort, "sorts": SORTS, "group": group,
                                  "save_error": save_error or [], "profile_name": profile_name}
    context["group_url"] = _url(q, size, **{k: v for k, v in keep.items() if k != "group"},
                                **({"group": 0} if group else {}))
    try:
        if group:  # offsets count families: one result per family over the whole result set
            page = family_page(index, q, offset=offset, size=size, facets=FACETS, sort=sort)
            result, groups, more = page.result, page.groups, page.more
        else:
            result = run_search(index, q, limit=size, offset=offset, cursor=cursor, facets=FACETS, sort=sort)
            groups, more = [FamilyGroup(h) for h in result.hits], offset + len(result.hits) < result.total
    except QuerySyntaxError as exc:
        context["error"] = {"message": exc.message, "position": exc.position, "hints": exc.hints,
                            "before": q[:exc.position], "at": q[exc.position:exc.position + 1] or " ",
                            "after": q[exc.position + 1:]}
        return templates.TemplateResponse(request, "search.html", context, status_code=400 if not save_error else 422)
    except (ValueError, OverflowError) as exc:  # a malformed `cursor` (a hand-edited link): a bad request
        raise HTTPException(400, str(exc)) from None
    lang = language(request)
    context["result"] = result
    context["hits"] = [(g.hit, safe_highlights(g.hit), g.members) for g in groups]
    context["facets"] = {name: [(fv, _url(add_clause(q, facet_clause(name, fv.value)), size, **keep),
                                 _facet_title(name, fv.value, lang)) for fv in values]
                         for name, values in result.facets.items() if values}
    context["chips"] = [(clause, _url(rest, size, **keep)) for clause, rest in facet_chips(q)]
    context["sizes"] = [(n, _url(q, n, **keep)) for n in PAGE_SIZES]
    end = offset + len(groups)
    context["end"] = end
    if more:
        after: dict[str, object] = {"offset": end}
        if result.next_cursor and not group:
            after["cursor"] = result.next_cursor
        context["next_url"] = _url(q, size, **keep, **after)
    if offset > 0:
        context["prev_url"] = _url(q, size, **keep, offset=max(0, offset - size))
    context["export_urls"] = {fmt: "/search/export?" + urlencode({"q": q, "format": fmt, **keep})
                              for fmt in EXPORT_MEDIA_TYPES}
    context["export_limit"] = EXPORT_LIMIT
    return templates.TemplateResponse(request, "search.html", context, status_code=422 if save_error else 200)


@router.get("/search/export")
def search_export(request: Request, user: CurrentUser, index: Annotated[Index, Depends(get_index)], q: str = "",
                  format: Literal["csv", "ris"] = "csv",
                  sort: Literal["relevance", "pd", "ad"] = "relevance") -> Response:
    """The result set of `q` (its first EXPORT_LIMIT documents in `sort` order) as a CSV or RIS download."""
    try:
        hits, _ = collect_hits(index, q, sort=sort)
    except QuerySyntaxError as exc:
        raise HTTPException(400, f"invalid query at position {exc.position + 1}: {exc.message}") from None
    return Response(export_text(hits, format, language(request)), media_type=EXPORT_MEDIA_TYPES[format],
                    headers={"Content-Disposition": f'attachment; filename="{export_filename(q, format)}"'})


@router.post("/search/save-profile")
def save_as_profile(request: Request, user: CurrentUser, index: Annotated[Index, Depends(get_index)],
                    store: Annotated[MatchStore, Depends(get_match_store)], query: Annotated[str, Form()] = "",
                    name: Annotated[str, Form()] = "",
                    sort: Annotated[Literal["relevance", "pd", "ad"], Form()] = "relevance") -> Response:
    """A profile of the user's outlet with the search's `query` as its boolean query, then the profile editor; on a
    bad name or query the search page again, the problems next to the name field."""
    q = query
    profile = Profile(name=name.strip(), owner=user.email, outlet_id=user.outlet_id, query=q.strip() or None,
                      description="")
    problems: list[str] = []
    if (taken := name_taken(store, profile.name)) is not None:
        problems.append(taken)
    if not q.strip():
        problems.append("the search has no query: a profile needs one")
    try:
        valid = validate_profile(profile, known_document=lambda pn: index.get(pn) is not None)
    except ProfileError as exc:
        problems.extend(exc.problems)
    if problems:
        return _search_page(request, index, q, sort=sort, save_error=problems, profile_name=name)
    store.save_profile(valid)
    return RedirectResponse(f"/profiles/{quote(valid.name)}", status_code=303)
