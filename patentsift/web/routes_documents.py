"""Document pages: bibliographic data, a link to the document at the patent office (Espacenet), the abstract,
classifications with titles, claims, description, citations (linked when the cited document is in the index),
similar documents."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response

from distribution.ipc_titles import subclass_title
from index.base import Index
from index.model import PatentDocument
from matching.embeddings import Embedder
from patentsift.searching import find_document, similar_documents
from patentsift.web.auth import CurrentUser
from patentsift.web.deps import get_embedder, get_index, language, templates

router = APIRouter(include_in_schema=False)
MAX_LINKED_CITATIONS = 50  # citations looked up in the index per page view (the rest are listed unlinked)
ESPACENET = "https://worldwide.espacenet.com/patent/search?q=pn%3D{}"


def load_document(index: Index, pn: str) -> PatentDocument:
    doc = find_document(index, pn)
    if doc is None:
        raise HTTPException(404, f"no document {pn} in the index")
    return doc


def class_rows(doc: PatentDocument, lang: str) -> list[tuple[str, str, str | None]]:
    """(scheme, printed symbol, subclass title or None) for every classification of the document."""
    rows = []
    for c in [*doc.ipc, *doc.cpc, *doc.other_classes]:
        title = subclass_title(c.subclass_symbol, lang) if c.subclass_symbol and c.scheme in ("IPC", "CPC") else None
        rows.append((c.scheme, c.display, title))
    return rows


def office_url(doc: PatentDocument) -> str:
    """The document at the EPO's Espacenet, which covers every office's publications (`US7315000B2`)."""
    return ESPACENET.format(quote(f"{doc.pn.country}{doc.pn.number}{doc.pn.kind}", safe=""))


def cited_in_index(index: Index, doc: PatentDocument) -> dict[str, str]:
    """Cited patent number -> the id of that document in the index, for the citations that are there (the first
    MAX_LINKED_CITATIONS patent citations are looked up)."""
    found: dict[str, str] = {}
    numbers = [c.number for c in doc.citations if c.kind == "patent" and c.number]
    for number in dict.fromkeys(numbers[:MAX_LINKED_CITATIONS]):
        cited = find_document(index, number)
        if cited is not None and cited.id != doc.id:
            found[number] = cited.id
    return found


@router.get("/documents/{pn}")
def document_page(request: Request, pn: str, user: CurrentUser,
                  index: Annotated[Index, Depends(get_index)]) -> Response:
    doc = load_document(index, pn)
    classes = class_rows(doc, language(request))
    return templates.TemplateResponse(request, "document.html", {
        "doc": doc, "classes": classes, "office_url": office_url(doc), "cited": cited_in_index(index, doc)})


@router.get("/documents/{pn}/similar")
def similar_page(request: Request, pn: str, user: CurrentUser, index: Annotated[Index, Depends(get_index)],
                 embedder: Annotated[Embedder, Depends(get_embedder)]) -> Response:
    """The nearest documents; only the list when asked for a fragment (`X-Fragment: 1`, sent by app.js)."""
    doc = load_document(index, pn)
    hits = similar_documents(index, doc, embedder, k=10)
    template = "similar_list.html" if request.headers.get("x-fragment") == "1" else "similar.html"
    return templates.TemplateResponse(request, template, {"doc": doc, "hits": hits})
