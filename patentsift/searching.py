"""Search logic shared by the CLI, the pages and the API: parse, run, find a document by any spelling of its number,
a hit as JSON, facet clauses, safe highlights, similar documents (no HTTP, no terminal)."""

from __future__ import annotations

import dataclasses
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from index.base import FACETS, Filters, Hit, Index, SearchRequest, SearchResult, VectorModelTag, check_sort
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
               facets: Sequence[str] = FACETS, sort: str = "relevance", highlight: bool = True,
               filters: Filters | None = None) -> SearchResult:
    """Parse `q` (raises QuerySyntaxError with a position) and search; an empty query matches everything.
    `sort`: one of index.base.SORTS (relevance, pd: publication date, ad: filing date; dates newest first)."""
    query = parse_query(q) if q.strip() else MatchAll()
    request = SearchRequest(query, filters=filters or Filters(), facets=list(facets), highlight=highlight,
                            limit=max(1, min(limit, MAX_LIMIT)), offset=0 if cursor else max(0, min(offset, MAX_OFFSET)),
                            search_after=cursor or None, sort=check_sort(sort))
    return index.search(request)


# --- one result per family -----------------------------------------------------------------------------------
MAX_FAMILY_MEMBERS = 50


@dataclass
class FamilyGroup:
    """A page's hit standing for its family, and the family's other members (any page, from `fam:`)."""

    hit: Hit
    members: list[PatentDocument] = field(default_factory=list)

    @property
    def family_id(self) -> str | None:
        return self.hit.document.family_id


FAMILY_SCAN_CHUNK = 200  # documents fetched per step while collecting a page of families
FAMILY_SCAN_LIMIT = 10_000  # documents read at the most to reach a page of families (then the page is short)


@dataclass
class FamilyPage:
    """One page of the result set with one result per family: the first search's result (total documents,
    facets), the page's groups, and whether more families follow."""

    result: SearchResult
    groups: list[FamilyGroup]
    more: bool


def family_page(index: Index, q: str, *, offset: int = 0, size: int = 10, facets: Sequence[str] = FACETS,
                sort: str = "relevance") -> FamilyPage:
    """Families `offset` to `offset + size` of `q`'s results, each stood for by its best-ranked document, counted
    over the whole result set (a family never shows again on a later page): hits are read in order with the
    cursor, FAMILY_SCAN_CHUNK at a time, until one family past the page is seen, the results end or
    FAMILY_SCAN_LIMIT documents were read (without highlights: only the page's hits get them, from one more
    search restricted to their ids). Each group lists its family's other members."""
    first = run_search(index, q, limit=FAMILY_SCAN_CHUNK, facets=facets, sort=sort, highlight=False)
    result, seen, order = first, set(), []
    read = 0
    while True:
        for hit in result.hits:
            key = hit.document.family_id or f"doc:{hit.id}"
            if key not in seen:
                seen.add(key)
                order.append(hit)
        read += len(result.hits)
        if len(order) > offset + size or not result.next_cursor or not result.hits or read >= FAMILY_SCAN_LIMIT:
            break
        result = run_search(index, q, limit=FAMILY_SCAN_CHUNK, cursor=result.next_cursor, facets=(), sort=sort,
                            highlight=False)
    page = order[offset:offset + size]
    if page:
        lit = run_search(index, q, limit=len(page), facets=(), sort=sort, filters=Filters(ids=[h.id for h in page]))
        marks = {h.id: h.highlights for h in lit.hits}
        page = [dataclasses.replace(h, highlights=marks.get(h.id, {})) for h in page]
    return FamilyPage(first, group_by_family(index, page), len(order) > offset + size)


def group_by_family(index: Index, hits: Sequence[Hit]) -> list[FamilyGroup]:
    """One group per family in page order (its best-ranked hit first); a document without a family id is a group
    of its own. Each group lists the family's other members in the index, newest first."""
    groups: dict[str, FamilyGroup] = {}
    out: list[FamilyGroup] = []
    for hit in hits:
        fam = hit.document.family_id
        if not fam:
            out.append(FamilyGroup(hit))
        elif fam not in groups:
            groups[fam] = FamilyGroup(hit)
            out.append(groups[fam])
    for fam, group in groups.items():
        res = index.search(SearchRequest(Term("fam", fam), highlight=False, limit=MAX_FAMILY_MEMBERS + 1, sort="pd"))
        group.members = [h.document for h in res.hits if h.id != group.hit.id][:MAX_FAMILY_MEMBERS]
    return out


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


# a clause a facet click added (facet_clause), as it appears ANDed at the end of a query
_FACET_CLAUSE = re.compile(r'(?:ipc|cpc):[A-Za-z0-9/]+\*|pa:"[^"]*"|pa:[\w.-]+|pd:\d{4}|cc:[A-Za-z]{2}|kind:[\w]+')


def facet_chips(q: str) -> list[tuple[str, str]]:
    """The facet clauses ANDed onto `q` (by add_clause) as (clause, the query without it): what the search page
    shows as removable chips. Only clauses ANDed after something (and followed by nothing, ` AND ` or `)`) are
    offered, so removing one leaves a valid query."""
    q = q.strip()
    chips: list[tuple[str, str]] = []
    for m in _FACET_CLAUSE.finditer(q):
        clause, before = m.group(0), q[:m.start()]
        after = q[m.end():]
        if not before.endswith(" AND ") or (after and not after.startswith((" AND ", ")"))):
            continue
        chips.append((clause, (before[:-len(" AND ")] + after).strip()))
    return chips


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
        "applicants": doc.applicant_names(), "ipc": [c.symbol for c in doc.ipc[:5]],
        "cpc": [c.symbol for c in doc.cpc[:5]], "highlights": hit.highlights,
    }


# --- more like this ------------------------------------------------------------------------------------------
def document_vector(doc: PatentDocument, embedder: Embedder) -> list[float]:
    """The document's text embedded with the system's model."""
    from matching.embeddings import document_text

    return [float(x) for x in embedder.encode([document_text(doc)])[0]]


def similar_documents(index: Index, doc: PatentDocument, embedder: Embedder, k: int = 10) -> list[Hit]:
    """The `k` nearest other documents by cosine similarity of the embeddings; [] when no vectors are indexed, or
    when they come from another model than the current one (until `patentsift index reembed`)."""
    if isinstance(index, VectorModelTag) and index.vector_model() not in (None, embedder.model_id):
        return []
    vector = document_vector(doc, embedder)
    hits = index.knn(vector, k + 1)
    return [h for h in hits if h.id != doc.id][:k]


# --- export of a result set (web /search/export and `patentsift search --format csv|ris`) ----------------------
EXPORT_LIMIT = 1000  # documents in one export at most (the first ones by relevance)
EXPORT_FORMATS = ("csv", "ris")
EXPORT_MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "ris": "application/x-research-info-systems; charset=utf-8"}
CSV_COLUMNS = ("id", "title", "publication_date", "application_number", "application_date", "applicants",
               "inventors", "ipc", "cpc", "family_id", "score", "abstract")
_WS = re.compile(r"\s+")


def collect_hits(index: Index, q: str, *, limit: int = EXPORT_LIMIT,
                 sort: str = "relevance") -> tuple[list[Hit], int]:
    """The first `limit` hits of `q` in `sort` order (raises QuerySyntaxError), fetched page by page with the
    cursor, without highlights or facets; and the total number of matches (which may be more)."""
    query = parse_query(q) if q.strip() else MatchAll()
    hits: list[Hit] = []
    cursor: str | None = None
    total = 0
    while len(hits) < limit:
        result = index.search(SearchRequest(query, facets=[], highlight=False, limit=min(MAX_LIMIT, limit - len(hits)),
                                            offset=0, search_after=cursor, sort=check_sort(sort)))
        total = result.total
        hits.extend(result.hits)
        if not result.hits or not result.next_cursor or len(hits) >= total:
            break
        cursor = result.next_cursor
    return hits[:limit], total


def _one_line(text: str | None) -> str:
    return _WS.sub(" ", text or "").strip()


def export_row(hit: Hit, lang: str = "en") -> dict[str, str]:
    """One hit as the export's flat fields (lists joined with `; `, text on one line)."""
    doc = hit.document
    return {
        "id": doc.id, "title": _one_line(doc.title(lang)),
        "publication_date": doc.publication_date.isoformat() if doc.publication_date else "",
        "application_number": doc.application_number or "",
        "application_date": doc.application_date.isoformat() if doc.application_date else "",
        "applicants": "; ".join(_one_line(name) for name in doc.applicant_names()),
        "inventors": "; ".join(_one_line(p.name) for p in doc.inventors),
        "ipc": "; ".join(c.display for c in doc.ipc), "cpc": "; ".join(c.display for c in doc.cpc),
        "family_id": doc.family_id or "", "score": f"{hit.score:.4f}", "abstract": _one_line(doc.abstract(lang)),
    }


def export_csv(hits: Sequence[Hit], lang: str = "en") -> str:
    """The hits as CSV (a header row, then one row per document); every text cell escaped against formula
    injection (distribution.reports.csv_cell: `=HYPERLINK(...)` opens as text)."""
    import csv
    import io

    from distribution.reports import csv_cell

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_COLUMNS)
    for hit in hits:
        row = export_row(hit, lang)
        writer.writerow([csv_cell(row[c]) for c in CSV_COLUMNS])
    return buf.getvalue()


def export_ris(hits: Sequence[Hit], lang: str = "en") -> str:
    """The hits as RIS records (TY PAT), one per document, for reference managers (Zotero, EndNote, ...); every
    value on one line, so no value can start a tag of its own."""
    lines: list[str] = []
    for hit in hits:
        doc, row = hit.document, export_row(hit, lang)

        def tag(name: str, value: str) -> None:
            if value:
                lines.append(f"{name}  - {value}")

        tag("TY", "PAT")
        tag("ID", doc.id)
        tag("TI", row["title"])
        for p in doc.inventors:
            tag("AU", _one_line(p.name))
        for p in doc.applicants:
            tag("A2", _one_line(p.name))
        if doc.publication_date:
            tag("PY", str(doc.publication_date.year))
            tag("DA", doc.publication_date.strftime("%Y/%m/%d"))
        tag("CY", doc.pn.country)
        tag("M1", row["application_number"])
        tag("M3", doc.pn.kind)
        tag("AN", doc.id)
        for c in [*doc.ipc, *doc.cpc]:
            tag("KW", c.display)
        tag("AB", row["abstract"])
        lines.append("ER  - ")
        lines.append("")
    return "\r\n".join(lines)


def export_text(hits: Sequence[Hit], fmt: str, lang: str = "en") -> str:
    """The hits in `fmt` (csv or ris); another format raises ValueError."""
    if fmt == "csv":
        return export_csv(hits, lang)
    if fmt == "ris":
        return export_ris(hits, lang)
    raise ValueError(f"unknown export format {fmt!r}: use {' or '.join(EXPORT_FORMATS)}")


def export_filename(q: str, fmt: str) -> str:
    """A download name for an export: `patentsift-search-<query words>.<fmt>` (ASCII letters, digits, dashes)."""
    words = re.sub(r"[^A-Za-z0-9]+", "-", q).strip("-")[:40].strip("-")
    return f"patentsift-search{'-' + words if words else ''}.{fmt}"
