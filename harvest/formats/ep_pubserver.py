"""EPO publication server XML (`<ep-patent-document>`, all DTD versions and the ep-bulletin variant).

Bibliographic data sits in SDOBI B-tags (B110 number, B130 kind, B140 date, B210/B220 application, B300
priorities, B510/B510EP IPC, B520EP CPC, B540 titles, B560 citations, B710/B730 applicants/proprietors, B720
inventors); abstract, description and claims (one `<claims>` per language) follow as ST.36 markup.
"""

from __future__ import annotations

from lxml import etree

from harvest.formats import _st36_common as st
from harvest.raw import RawDocument, Reject
from index.classification import Classification
from index.model import Citation, Party, PatentDocument, Priority, parse_date


def parse(root: etree._Element, raw: RawDocument) -> PatentDocument:
    root = st.strip_namespaces(root)
    sdobi = root.find("SDOBI")
    country = (root.get("country") or st.first_text(sdobi, "B100/B190") or "EP").upper()
    number = root.get("doc-number") or st.first_text(sdobi, "B100/B110")
    kind = root.get("kind") or st.first_text(sdobi, "B100/B130")
    if not number:
        raise Reject("ep-patent-document without a publication number (no doc-number attribute or B110)")
    lang = st.lang_code(root.get("lang") or st.first_text(sdobi, "B200/B260"), country)
    doc = PatentDocument(
        pn=st.pn_from_parts(country, number, kind),
        publication_date=parse_date(root.get("date-publ")) or parse_date(st.first_text(sdobi, "B100/B140/date")),
        lang=lang,
        doc_format=f"ep-pubserver {root.get('dtd-version') or 'ep-patent-document'}",
    )
    if sdobi is not None:
        _bibliographic(sdobi, doc)
    abstract = _pick_lang(root.findall("abstract"), lang)
    if abstract is not None:
        doc.abstracts[st.lang_code(abstract.get("lang")) or lang or "en"] = st.paragraphs(abstract)
    description = _pick_lang(root.findall("description"), lang)
    doc.description = st.paragraphs(description) if description is not None else ""
    claims = _pick_lang(root.findall("claims"), lang)
    if claims is not None:
        doc.claims = st.claims_from_markup(claims)
        doc.claims_lang = st.lang_code(claims.get("lang")) or lang
    doc.citations = st.dedupe_citations([*doc.citations, *_search_report(root), *_reference_list(root)])
    return doc


def _pick_lang(elements: list[etree._Element], lang: str | None) -> etree._Element | None:
    """The block in the publication language, else English, else the first."""
    by_lang = {st.lang_code(e.get("lang")): e for e in reversed(elements)}
    for key in (lang, "en"):
        if key in by_lang:
            return by_lang[key]
    return elements[0] if elements else None


def _bibliographic(sdobi: etree._Element, doc: PatentDocument) -> None:
    doc.application_number = st.application_number("EP", st.first_text(sdobi, "B200/B210"))
    doc.application_date = parse_date(st.first_text(sdobi, "B200/B220/date"))
    doc.priorities = _priorities(sdobi.find("B300"))
    titles = sdobi.find("B500/B540")
    if titles is not None:
        current = None
        for el in titles:
            if el.tag == "B541":
                current = st.lang_code(st.text(el))
            elif el.tag == "B542" and st.text(el):
                doc.titles[current or doc.lang or "en"] = st.text(el)
    doc.ipc = st.dedupe_classes(_ipc(sdobi))
    doc.cpc = st.dedupe_classes(
        st.parse_class_text(st.text(t), "CPC") for t in sdobi.iterfind("B500/B520EP/classifications-cpc/classification-cpc/text")
    )
    doc.applicants = [*_parties(sdobi, "B700/B710/B711", "applicant"), *_parties(sdobi, "B700/B730/B731", "assignee")]
    doc.inventors = _parties(sdobi, "B700/B720/B721", "inventor")
    doc.citations = [c for c in _b560(sdobi.find("B500/B560")) if c is not None]


def _priorities(b300: etree._Element | None) -> list[Priority]:
    out: list[Priority] = []
    if b300 is None:
        return out
    for el in b300:  # repeated B310 (number) / B320 (date) / B330 (country) groups
        if el.tag == "B310":
            out.append(Priority(country="", number=st.text(el)))
        elif el.tag == "B320" and out:
            out[-1].date = parse_date(st.first_text(el, "date"))
        elif el.tag == "B330" and out:
            out[-1].country = st.first_text(el, "ctry").upper()
    return out


def _ipc(sdobi: etree._Element) -> list[Classification | None]:
    ipcr = [st.parse_class_text(st.text(t), "IPC") for t in sdobi.iterfind("B500/B510EP/classification-ipcr/text")]
    if ipcr:
        return ipcr
    old = sdobi.find("B500/B510")  # pre-2006: B511 main, B512 further symbols with an edition prefix (" 7A 01B 45/00")
    if old is None:
        return []
    version = st.first_text(old, "B516") or None
    out: list[Classification | None] = []
    for el in old:
        if el.tag in ("B511", "B512"):
            c = st.parse_class_text(st.text(el), "IPC", first=el.tag == "B511")
            if c is not None and version:
                c.version = version
            out.append(c)
    return out


def _parties(sdobi: etree._Element, path: str, role: str) -> list[Party]:
    out = []
    for el in sdobi.iterfind(path):
        name = st.first_text(el, "snm", "name") or st.text(el)
        if name:
            out.append(Party(name=name, country=st.first_text(el, "adr/ctry", "ctry").upper() or None, role=role))
    return out


def _b560(b560: etree._Element | None) -> list[Citation | None]:
    """B561 patent and B562 non-patent citations (text, or ST.36 patcit/nplcit markup)."""
    out: list[Citation | None] = []
    if b560 is None:
        return out
    for el in b560:
        if el.tag == "B561":
            pat = el.find("patcit")
            out.append(st.citation_from_element(pat) if pat is not None else st.citation_from_text(st.text(el)))
        elif el.tag == "B562":
            npl = el.find("nplcit")
            value = st.text(npl if npl is not None else el)
            out.append(Citation("npl", text=value) if value else None)
    return out


def _search_report(root: etree._Element) -> list[Citation | None]:
    """Citations of an attached European search report, with their X/Y/A categories."""
    out: list[Citation | None] = []
    for cit in root.iterfind("search-report-data/srep-for-pub/srep-citations/citation"):
        category = "".join(dict.fromkeys(st.text(c) for c in cit.iter("category") if st.text(c))) or None
        ref = cit.find("patcit")
        if ref is None:
            ref = cit.find("nplcit")
        if ref is not None:
            out.append(st.citation_from_element(ref, category))
    return out


def _reference_list(root: etree._Element) -> list[Citation | None]:
    """`REFERENCES CITED IN THE DESCRIPTION`: documents the applicant cited."""
    return [
        st.citation_from_element(el, "cited by applicant")
        for el in root.iterfind("ep-reference-list//*")
        if el.tag in ("patcit", "nplcit")
    ]
