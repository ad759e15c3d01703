"""CNIPA full-text XML: old `<cn-patent-document>` (ST.36-like) and new `business:PatentDocumentAndRelated` (XSD)."""

from __future__ import annotations

from lxml import etree

from harvest.formats import _st36_common as st
from harvest.raw import RawDocument, Reject
from index.classification import Classification
from index.model import Party, PatentDocument, Priority, parse_date


def parse(root: etree._Element, raw: RawDocument) -> PatentDocument:
    root = st.strip_namespaces(root)
    if root.tag == "PatentDocumentAndRelated":
        return _parse_new(root)
    return _parse_old(root)


# --- old format: cn-patent-document -----------------------------------------------------------------------

def _parse_old(root: etree._Element) -> PatentDocument:
    bib = root.find("cn-bibliographic-data")
    if bib is None:
        raise Reject("cn-patent-document without cn-bibliographic-data")
    pub = st.document_id(bib.find("cn-publication-reference/document-id"))
    if not pub.get("number"):
        raise Reject("cn-patent-document without a publication number")
    country = pub.get("country") or root.get("country") or "CN"
    lang = st.lang_code(root.get("lang"), country) or "zh"
    app = st.document_id(bib.find("application-reference/document-id"))
    doc = PatentDocument(
        pn=st.pn_from_parts(country, pub["number"], pub.get("kind", "")),
        publication_date=parse_date(pub.get("date")),
        application_number=st.application_number(app.get("country") or country, app.get("number", "")),
        application_date=parse_date(app.get("date")),
        lang=lang,
        doc_format="cnipa cn-patent-document",
    )
    title = st.first_text(bib, "invention-title")
    if title:
        doc.titles[lang] = title
    abstract = bib.find("abstract")
    if abstract is not None:
        # The abstract proper is the numbered paragraph; a `num="bio"` paragraph lists biological deposits.
        paras = [st.text(p) for p in abstract.findall("p") if p.get("num") != "bio"]
        doc.abstracts[lang] = "\n".join(p for p in paras if p) or st.text(abstract)
    doc.ipc = st.dedupe_classes(
        st.parse_class_text(st.text(t), "IPC", first=i == 0)
        for i, t in enumerate(bib.iterfind("classifications-ipcr/classification-ipcr/text"))
    )
    for prio in bib.iterfind("priority-claims/priority-claim"):
        p = st.document_id(prio)
        if p.get("number"):
            doc.priorities.append(Priority(p.get("country", ""), p["number"], parse_date(p.get("date"))))
    for el in bib.iterfind("cn-parties/cn-applicants/cn-applicant"):
        name = st.first_text(el, "addressbook/name", "name")
        if name:
            doc.applicants.append(Party(name, st.first_text(el, "addressbook/address/country") or None, "applicant"))
    for el in bib.iterfind("cn-parties/cn-inventors/cn-inventor"):
        name = st.first_text(el, "name", "addressbook/name")
        if name:
            doc.inventors.append(Party(name, None, "inventor"))
    body = root.find("application-body")
    if body is not None:
        description = body.find("description")
        if description is not None:
            doc.description = st.paragraphs(description, ("p", "heading"))
        doc.claims = st.claims_from_markup(body.find("claims"))
        doc.claims_lang = lang if doc.claims else None
    return doc


# --- new format: PatentDocumentAndRelated --------------------------------------------------------------------

def _parse_new(root: etree._Element) -> PatentDocument:
    bib = root.find("BibliographicData")
    if bib is None:
        raise Reject("PatentDocumentAndRelated without BibliographicData")
    pub = _by_format(bib.findall("PublicationReference"))
    country = (root.get("country") or pub.get("country") or "CN").upper()
    number = root.get("docNumber") or pub.get("number", "")
    if not number:
        raise Reject("PatentDocumentAndRelated without a publication number")
    lang = st.lang_code(root.get("lang"), country) or "zh"
    app = _by_format(bib.findall("ApplicationReference"), prefer="original")
    doc = PatentDocument(
        pn=st.pn_from_parts(country, number, root.get("kind") or pub.get("kind", "")),
        publication_date=parse_date(root.get("datePublication")) or parse_date(pub.get("date")),
        application_number=st.application_number(app.get("country") or country, app.get("number", "")),
        application_date=parse_date(app.get("date")),
        lang=lang,
        doc_format=f"cnipa PatentDocumentAndRelated {root.get('xsdVersion') or ''}".strip(),
    )
    for title in bib.findall("InventionTitle"):
        key = st.lang_code(title.get("lang")) or lang
        if st.text(title) and key not in doc.titles:
            doc.titles[key] = st.text(title)
    for ab in root.findall("Abstract"):
        key = st.lang_code(ab.get("lang")) or lang
        value = st.paragraphs(ab, ("Paragraphs",))
        if value and key not in doc.abstracts:
            doc.abstracts[key] = value
    doc.ipc = st.dedupe_classes(_ipc(c, i == 0) for i, c in enumerate(bib.iterfind("ClassificationIPCRDetails/ClassificationIPCR")))
    seen_seq: set[str] = set()
    for prio in bib.iterfind("PriorityDetails/Priority"):
        if prio.get("dataFormat") == "standard" or prio.get("sequence", "") in seen_seq:
            continue
        seen_seq.add(prio.get("sequence", ""))
        p = st.document_id(prio)
        if p.get("number"):
            doc.priorities.append(Priority(p.get("country", ""), p["number"], parse_date(p.get("date"))))
    for el in bib.iterfind("Parties/ApplicantDetails/Applicant"):
        name = st.first_text(el, "AddressBook/Name", "AddressBook/OrganizationName")
        if name:
            country_code = st.first_text(el, "AddressBook/Address/WIPOST3Code").upper() or None
            doc.applicants.append(Party(name, country_code, "applicant"))
    for el in bib.iterfind("Parties/InventorDetails/Inventor"):
        name = st.first_text(el, "AddressBook/Name")
        if name:
            doc.inventors.append(Party(name, st.first_text(el, "AddressBook/Address/WIPOST3Code") or None, "inventor"))
    description = root.find("Description")
    if description is not None:
        doc.description = st.paragraphs(description, ("Paragraphs",))
    claims = root.find("Claims")
    if claims is not None:
        doc.claims = st.claims_from_markup(claims, "Claim")
        doc.claims_lang = st.lang_code(claims.get("lang")) or lang
    return doc


def _by_format(refs: list[etree._Element], prefer: str = "standard") -> dict[str, str]:
    """The DocumentID of the reference in the preferred dataFormat (standard / original), else the first."""
    ordered = sorted(refs, key=lambda r: r.get("dataFormat") != prefer)
    for ref in ordered:
        did = ref.find("DocumentID")
        if did is not None:
            return st.document_id(did)
    return {}


def _ipc(el: etree._Element, first: bool) -> Classification | None:
    parts = [st.first_text(el, tag) for tag in ("Section", "MainClass", "Subclass", "MainGroup", "Subgroup")]
    extra = {"version": st.first_text(el, "IPCVersionDate") or None, "first": first}
    if all(parts):
        return Classification.from_parts("IPC", *parts, **extra)  # type: ignore[arg-type]
    return st.parse_class_text(st.first_text(el, "Text"), "IPC", first=first)
