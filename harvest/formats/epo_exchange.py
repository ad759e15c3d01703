"""EPO exchange format: OPS responses (`ops:world-patent-data`), DOCDB `exchange-document(s)` extracts and the
full-text format (`fulltext-document`: OPS full text and FTM files).

OPS biblio responses give one document per `exchange-document`; one without bibliographic data (an OPS abstract
response) and a full-text claims/description response give a `partial=True` document carrying just that part, to
be merged into the stored record. A search result or family response that lists only publication references holds
no document: it raises `ReferencesOnly` (skipped, references kept for a later full fetch).
"""

from __future__ import annotations

import re
from datetime import date

from lxml import etree

from harvest.formats import Reference, ReferencesOnly
from harvest.formats import _st36_common as st
from harvest.raw import RawDocument, Reject
from index.classification import Classification
from index.model import Citation, Claim, Party, PatentDocument, Priority, parse_date

_FORMAT_PREFERENCE = ("docdb", "epodoc", "original", "docdba")
_COUNTRY_SUFFIX = re.compile(r"\s*\[([A-Z]{2})\]\s*$")
# Parts of `bibliographic-data` beyond the publication reference: without any, a document is partial.
_BIBLIO_PARTS = ("invention-title", "parties", "classifications-ipcr", "classification-ipc", "patent-classifications",
                 "application-reference", "priority-claims", "references-cited")


def parse(root: etree._Element, raw: RawDocument) -> list[PatentDocument]:
    root = st.strip_namespaces(root)
    ops = root.tag == "world-patent-data"
    exchange = [root] if root.tag == "exchange-document" else list(root.iter("exchange-document"))
    docs = [parse_exchange_document(el, "epo-ops" if ops else "epo-docdb") for el in exchange]
    docs += [_fulltext(el, "epo-ops" if ops else "epo-ftm") for el in root.iter("fulltext-document")]
    if docs:
        return docs
    for path, what in ((".//search-result", "search result"), (".//patent-family", "family response")):
        found = root.find(path)
        if found is not None and (refs := _references(found)):
            raise ReferencesOnly(f"OPS {what} holds references, not documents", refs)
    raise Reject(f"<{root.tag}> holds no exchange-document, fulltext-document or search result")


def _references(el: etree._Element) -> list[Reference]:
    """The docdb publication references a search result or family lists (family id from the nearest holder)."""
    out: dict[str, Reference] = {}
    for ref in el.iter("publication-reference"):
        pub = _preferred_id([ref])
        if not pub.get("country") or not pub.get("number"):
            continue
        holder = next((a for a in (ref, *ref.iterancestors()) if a.get("family-id")), None)
        pn = st.pn_from_parts(pub["country"], pub["number"], pub.get("kind", ""))
        out.setdefault(pn.docdb, Reference(pn.docdb, holder.get("family-id") if holder is not None else None))
    return list(out.values())


def parse_exchange_document(el: etree._Element, source: str = "epo-docdb") -> PatentDocument:
    bib = el.find("bibliographic-data")
    pub = _preferred_id(bib.findall("publication-reference") if bib is not None else [])
    country = (el.get("country") or pub.get("country", "")).upper()
    number = el.get("doc-number") or pub.get("number", "")
    if not country or not number:
        raise Reject("exchange-document without country/doc-number")
    lang = None
    if bib is not None:
        lang = st.lang_code(st.first_text(bib, "language-of-publication")) or _id_lang(bib)
    partial = bib is None or all(bib.find(part) is None for part in _BIBLIO_PARTS)
    doc = PatentDocument(
        pn=st.pn_from_parts(country, number, el.get("kind") or pub.get("kind", "")),
        publication_date=parse_date(el.get("date-publ")) or parse_date(pub.get("date")),
        family_id=el.get("family-id") or None,
        lang=lang,
        doc_format=f"{source} exchange-document" + (" (no bibliographic data)" if partial else ""),
        partial=partial,
    )
    if bib is not None:
        _bibliographic(bib, doc)
    for ab in el.findall("abstract"):
        value = st.paragraphs(ab)
        key = _text_lang(ab.get("lang"), value, country)
        if value and key not in doc.abstracts:
            doc.abstracts[key] = value
    if doc.lang is None:
        doc.lang = st.COUNTRY_LANG.get(country)
    return doc


def _bibliographic(bib: etree._Element, doc: PatentDocument) -> None:
    country = doc.pn.country
    app = _preferred_id(bib.findall("application-reference"))
    if app.get("number"):
        doc.application_number = st.application_number(app.get("country") or country, app["number"])
    doc.application_date = parse_date(app.get("date")) or _any_date(bib.find("application-reference"))
    doc.priorities = _priorities(bib.find("priority-claims"))
    for title in bib.findall("invention-title"):
        value = st.text(title)
        key = _text_lang(title.get("lang"), value, country)
        if value and key not in doc.titles:
            doc.titles[key] = value
    ipc = [st.parse_class_text(st.text(t), "IPC") for t in bib.iterfind("classifications-ipcr/classification-ipcr/text")]
    if not ipc:  # pre-2006 `classification-ipc` (edition-prefixed main/further symbols)
        ipc = [
            st.parse_class_text(st.text(t), "IPC", first=t.tag == "main-classification")
            for t in bib.iterfind("classification-ipc/*")
            if t.tag in ("main-classification", "further-classification")
        ]
    doc.ipc = st.dedupe_classes(ipc)
    cpc: list[Classification | None] = []
    other: list[Classification | None] = []
    for pc in bib.iterfind("patent-classifications/patent-classification"):
        c = st.parse_patent_classification(pc)
        (cpc if c is not None and c.scheme == "CPC" else other).append(c)
    doc.cpc, doc.other_classes = st.dedupe_classes(cpc), st.dedupe_classes(other)
    doc.applicants = _parties(bib.findall("parties/applicants/applicant"), "applicant", "applicant-name")
    doc.inventors = _parties(bib.findall("parties/inventors/inventor"), "inventor", "inventor-name")
    doc.citations = st.dedupe_citations(_citation(c) for c in bib.iterfind("references-cited/citation"))


def _preferred_id(refs: list[etree._Element]) -> dict[str, str]:
    """The docdb document-id among `*-reference` elements (OPS marks it on document-id, DOCDB on the parent)."""
    best: dict[str, str] = {}
    rank = len(_FORMAT_PREFERENCE) + 1
    for ref in refs:
        for did in ref.findall("document-id"):
            fmt = did.get("document-id-type") or ref.get("data-format") or "docdb"
            r = _FORMAT_PREFERENCE.index(fmt) if fmt in _FORMAT_PREFERENCE else len(_FORMAT_PREFERENCE)
            if r < rank:
                best, rank = st.document_id(did), r
    return best


def _id_lang(bib: etree._Element) -> str | None:
    for did in bib.iterfind("publication-reference/document-id"):
        if did.get("lang"):
            return st.lang_code(did.get("lang"))
    return None


def _any_date(el: etree._Element | None) -> date | None:
    if el is None:
        return None
    for d in el.iter("date"):
        parsed = parse_date(st.text(d))
        if parsed:
            return parsed
    return None


def _text_lang(mark: str | None, value: str, country: str) -> str:
    if mark and mark.lower() != "ol":
        code = st.lang_code(mark)
        if code:
            return code
    return st.guess_lang(value, country) or "en"


def _priorities(claims: etree._Element | None) -> list[Priority]:
    """One Priority per sequence number, from its docdb id (else epodoc `US201261713164P`, else original)."""
    if claims is None:
        return []
    by_seq: dict[str, list[tuple[int, etree._Element, etree._Element]]] = {}
    for pc in claims.findall("priority-claim"):
        for did in pc.findall("document-id"):
            fmt = did.get("document-id-type") or pc.get("data-format") or "docdb"
            rank = _FORMAT_PREFERENCE.index(fmt) if fmt in _FORMAT_PREFERENCE else len(_FORMAT_PREFERENCE)
            by_seq.setdefault(pc.get("sequence") or str(len(by_seq) + 1), []).append((rank, did, pc))
    out = []
    for entries in by_seq.values():
        entries.sort(key=lambda e: e[0])
        ids = [st.document_id(did) for _, did, _ in entries]
        first = ids[0]
        country, number = first.get("country", ""), first.get("number", "")
        if not country and (m := re.match(r"^([A-Z]{2})(.+)$", number)):
            country, number = m.groups()
        date = next((parse_date(i["date"]) for i in ids if parse_date(i.get("date"))), None)
        if number:
            out.append(Priority(country=country, number=number, date=date))
    return out


def _parties(items: list[etree._Element], role: str, name_tag: str) -> list[Party]:
    """Parties in the best data format present (docdb carries residence countries; epodoc `NAME [US]`)."""
    formats = [i.get("data-format") or "docdb" for i in items]
    chosen = next((f for f in _FORMAT_PREFERENCE if f in formats), formats[0] if formats else None)
    out = []
    for item, fmt in zip(items, formats, strict=True):
        if fmt != chosen:
            continue
        name = st.first_text(item, f"{name_tag}/name", "name")
        country = st.first_text(item, "residence/country").upper() or None
        m = _COUNTRY_SUFFIX.search(name)
        if m:
            country, name = country or m.group(1), name[: m.start()]
        name = name.strip(" ,;")
        if name:
            out.append(Party(name=name, country=country, role=role))
    return out


def _citation(el: etree._Element) -> Citation | None:
    letters = [st.text(c) for c in el.findall("category")] or [st.text(c) for c in el.iter("category")]
    category = "".join(dict.fromkeys(c for c in letters if c)) or None
    if category is None and el.get("cited-by"):
        category = f"cited by {el.get('cited-by')}"
    elif category is None and el.get("cited-phase") == "APP":
        category = "cited by applicant"
    ref = el.find("patcit")
    if ref is None:
        ref = el.find("nplcit")
    return st.citation_from_element(ref, category) if ref is not None else None


def _fulltext(el: etree._Element, source: str) -> PatentDocument:
    """A full-text document (OPS claims/description response, or an FTM file): a partial document carrying its
    texts (titles and abstracts too, where the FTM file has them) for one publication."""
    pub = _preferred_id(el.findall("bibliographic-data/publication-reference"))
    country = pub.get("country") or (el.get("country") or "").upper()
    number = pub.get("number") or el.get("doc-number") or ""
    if not country or not number:
        raise Reject("fulltext-document without a publication reference")
    pn = st.pn_from_parts(country, number, pub.get("kind") or el.get("kind") or "")
    doc = PatentDocument(pn=pn, publication_date=parse_date(pub.get("date") or el.get("date-publ")), partial=True)
    parts = []
    for title in el.iterfind("bibliographic-data/invention-title"):
        if value := st.text(title):
            doc.titles.setdefault(_text_lang(title.get("lang"), value, country), value)
    for ab in [*el.findall("abstract"), *el.findall("bibliographic-data/abstract")]:
        if value := st.paragraphs(ab):
            doc.abstracts.setdefault(_text_lang(ab.get("lang"), value, country), value)
    if doc.abstracts:
        parts.append("abstract")
    claims = _pick_lang(el.findall("claims"))
    if claims is not None:
        doc.claims = _fulltext_claims(claims)
        doc.claims_lang = st.lang_code(claims.get("lang"), country)
        parts.append("claims")
    description = _pick_lang(el.findall("description"))
    if description is not None:
        doc.description = st.paragraphs(description)
        parts.append("description")
    if not parts:
        raise Reject(f"fulltext-document for {doc.id} carries neither claims, description nor abstract")
    doc.lang = doc.claims_lang or st.lang_code(
        (description.get("lang") if description is not None else None) or el.get("lang"), country)
    doc.doc_format = f"{source} fulltext {'+'.join(parts)}"
    return doc


def _pick_lang(elements: list[etree._Element]) -> etree._Element | None:
    for e in elements:
        if st.lang_code(e.get("lang")) == "en":
            return e
    return elements[0] if elements else None


def _fulltext_claims(claims: etree._Element) -> list[Claim]:
    """OPS text-only claims: one `<claim>` per claim, or one `<claim>` (or none) whose text or bare `<claim-text>`
    elements number the claims themselves (`1. ... 2. ...`); unnumbered `<claim-text>` elements are one claim each."""
    claim_els = claims.findall("claim")
    if len(claim_els) > 1:
        texts = [st.text(c) for c in claim_els]
    else:
        numbered = st.split_numbered_claims(st.flat_text(claims, "\n"))
        if numbered:
            return st.make_claims(numbered)
        texts = [st.text(t) for t in claims.iter("claim-text") if t.getparent().tag != "claim-text"]
        texts = texts or [st.text(claims)]
    return st.make_claims((i, st.strip_claim_number(t, i)) for i, t in enumerate(texts, 1))
