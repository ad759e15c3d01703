"""JPO gazette XML (`<jp-official-gazette>`, ST.36-based with `jp:` extensions; no XML declaration)."""

from __future__ import annotations

import re
import unicodedata

from lxml import etree

from harvest.formats import _st36_common as st
from harvest.raw import RawDocument, Reject
from index.classification import Classification
from index.model import Citation, Party, PatentDocument, Priority, parse_date

_DESCRIPTION_BLOCKS = ("p", "heading")


def parse(root: etree._Element, raw: RawDocument) -> PatentDocument:
    root = st.strip_namespaces(root)
    bib = root.find("bibliographic-data")
    if bib is None:
        raise Reject("jp-official-gazette without bibliographic-data")
    pub = st.document_id(bib.find("publication-reference/document-id"))
    country = pub.get("country") or root.get("country") or "JP"
    if not pub.get("number"):
        raise Reject("jp-official-gazette without a publication number")
    # <kind> holds the gazette name (公開特許公報(A)); the ST.16 code is an attribute of the root.
    kind = root.get("kind-of-st16") or _st16_kind(pub.get("kind", ""))
    lang = st.lang_code(root.get("lang") or bib.get("lang"), country) or "ja"
    app = st.document_id(bib.find("application-reference/document-id"))
    doc = PatentDocument(
        pn=st.pn_from_parts(country, pub["number"], kind),
        publication_date=parse_date(pub.get("date")),
        application_number=st.application_number(app.get("country") or country, app.get("number", "")),
        application_date=parse_date(app.get("date")),
        lang=lang,
        doc_format=f"jpo jp-official-gazette {root.get('dtd-version') or ''}".strip(),
    )
    title = st.first_text(bib, "invention-title")
    if title:
        doc.titles[lang] = title
    abstract = root.find("abstract")
    if abstract is not None:
        doc.abstracts[lang] = st.paragraphs(abstract, ("p",))
    doc.ipc = st.dedupe_classes(
        st.parse_class_text(st.text(el), "IPC", first=el.tag == "main-clsf")
        for el in bib.iterfind("classification-ipc/*")
        if el.tag in ("main-clsf", "further-clsf")
    )
    doc.other_classes = st.dedupe_classes(_national_classes(bib))
    for prio in bib.iterfind("priority-claims/priority-claim"):
        p = st.document_id(prio)
        if p.get("number"):
            doc.priorities.append(Priority(p.get("country", ""), p["number"], parse_date(p.get("date"))))
    for el in bib.iter("applicant"):
        name = st.first_text(el, "addressbook/name")
        if name:
            doc.applicants.append(Party(name, st.first_text(el, "addressbook/address/country") or None, "applicant"))
    for el in bib.iterfind("parties/inventors/inventor"):
        name = st.first_text(el, "addressbook/name")
        if name:
            doc.inventors.append(Party(name, st.first_text(el, "addressbook/address/country") or None, "inventor"))
    description = root.find("description")
    if description is not None:
        doc.description = st.paragraphs(description, _DESCRIPTION_BLOCKS)
        doc.citations = st.dedupe_citations(
            _jp_citation(st.citation_from_element(el, "cited by applicant"))
            for el in description.iterfind("citation-list//patcit")
        )
    doc.claims = st.claims_from_markup(root.find("claims"))
    doc.claims_lang = lang if doc.claims else None
    return doc


_JP_PATENT = re.compile(r"特許第\s*(\d+)\s*号")
_JP_LAID_OPEN = re.compile(r"特開\s*(?:平|昭)?\s*(\d{4})\s*[-ー－]\s*(\d+)")


def _jp_citation(cit: Citation | None) -> Citation | None:
    """Give a DOCDB number to citations written as `特許第6020757号公報` or `特開2015-123456号公報`."""
    if cit is None or cit.number or not cit.text:
        return cit
    norm = unicodedata.normalize("NFKC", cit.text)
    if m := _JP_PATENT.search(norm):
        cit.number = f"JP-{m.group(1)}"
    elif m := _JP_LAID_OPEN.search(norm):
        cit.number = f"JP-{m.group(1)}{int(m.group(2)):06d}-A"
    return cit


def _st16_kind(gazette: str) -> str:
    m = re.search(r"\(([A-Z]\d?)\)", gazette)
    return m.group(1) if m else ""


def _national_classes(bib: etree._Element) -> list[Classification | None]:
    """FI symbols (classification-national) and F-terms, kept as text."""
    out: list[Classification | None] = []
    for el in bib.iterfind("classification-national/*"):
        if el.tag in ("main-clsf", "further-clsf") and st.text(el):
            out.append(Classification.parse(st.text(el), "FI", first=el.tag == "main-clsf"))
    out += [Classification.parse(st.text(el), "FTERM") for el in bib.iterfind("f-term-info/f-term") if st.text(el)]
    return out
