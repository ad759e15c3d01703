"""USPTO ICE XML v4.0-v4.7 (2005-): `<us-patent-grant>` and `<us-patent-application>` documents."""

from __future__ import annotations

import re

from lxml import etree

from harvest.formats import _uspto_common as common
from harvest.raw import RawDocument, Reject
from harvest.xmlsafe import text_of
from index.classification import Classification
from index.model import Citation, Claim, Party, PatentDocument, Priority, PublicationNumber, parse_date

_SKIP = ("tables", "table", "maths", "math", "us-math", "chemistry", "us-chemistry", "img", "figure",
         "sequence-list", "us-sequence-list-doc", "in-line-formulae")
_PARAS = ("p", "heading")
_CLAIM_BLOCKS = ("claim-text",)
_SYMBOL_PARTS = ("section", "class", "subclass", "main-group", "subgroup")


def parse(root: etree._Element, raw: RawDocument) -> PatentDocument:
    kind = "grant" if root.tag == "us-patent-grant" else "application"
    bib = root.find("us-bibliographic-data-grant" if kind == "grant" else "us-bibliographic-data-application")
    if bib is None:
        raise Reject(f"<{root.tag}> has no bibliographic data")
    pub = bib.find("publication-reference/document-id")
    number = common.child_text(pub, "doc-number")
    if not number:
        raise Reject(f"<{root.tag}> has no publication-reference doc-number")
    app = bib.find("application-reference/document-id")
    title = text_of(bib.find("invention-title"))
    abstract = _paragraphs(root.find("abstract"))
    applicants, inventors = _parties(bib)
    return PatentDocument(
        pn=PublicationNumber(
            common.child_text(pub, "country") or "US", number, common.child_text(pub, "kind").upper()
        ),
        publication_date=parse_date(common.child_text(pub, "date") or root.get("date-publ")),
        application_number=common.application_number(
            common.child_text(app, "country"), common.child_text(app, "doc-number")
        ),
        application_date=parse_date(common.child_text(app, "date")),
        priorities=_priorities(bib),
        titles={"en": title} if title else {},
        abstracts={"en": abstract} if abstract else {},
        claims=_claims(root.find("claims")),
        claims_lang="en",
        description=_paragraphs(root.find("description")),
        applicants=applicants,
        inventors=inventors,
        ipc=_ipc(bib),
        cpc=_cpc(bib),
        other_classes=_other_classes(bib),
        citations=_citations(bib),
        lang="en",
        doc_format=f"uspto-ice-{kind} {_version(root.get('dtd-version'))}",
    )


def _version(dtd_version: str | None) -> str:
    """`v4.7 2022-02-17` -> `v4.7`; `v40 2004-12-02` -> `v4.0`."""
    m = re.match(r"\s*v?(\d)\.?(\d+)", dtd_version or "")
    return f"v{m.group(1)}.{m.group(2)}" if m else (dtd_version or "?").split(" ")[0]


def _paragraphs(section: etree._Element | None) -> str:
    """Headings and paragraphs, one per line; tables, maths and images left out."""
    return common.paragraphs(section, _PARAS, _SKIP, blocks=("li", "br"))


def _priorities(bib: etree._Element) -> list[Priority]:
    out = [
        Priority(common.child_text(pc, "country") or "US", common.child_text(pc, "doc-number"),
                 parse_date(common.child_text(pc, "date")))
        for pc in bib.iterfind("priority-claims/priority-claim")
    ]
    for prov in bib.iterfind("us-related-documents/us-provisional-application/document-id"):
        out.append(Priority(common.child_text(prov, "country") or "US", common.child_text(prov, "doc-number"),
                            parse_date(common.child_text(prov, "date"))))
    return [p for p in out if p.number]


def _ipc(bib: etree._Element) -> list[Classification]:
    out: list[Classification | None] = []
    for c in bib.iterfind("classifications-ipcr/classification-ipcr"):
        fields = common.children_by_tag(c)  # one pass over the dozen children
        out.append(Classification.from_parts(
            "IPC", *(common.leaf_text(fields.get(t)) for t in _SYMBOL_PARTS),
            version=common.child_text(c, "ipc-version-indicator/date") or None,
            value=common.leaf_text(fields.get("classification-value")) or None,
            first=common.leaf_text(fields.get("symbol-position")) == "F",
        ))
    for c in bib.iterfind("classification-ipc"):  # v4.0 and a few v4.1: strings like "A61K 9/20", "7A61K 9/20"
        edition = common.child_text(c, "edition").lstrip("0") or None
        out.append(common.ipc_text(common.fixed_text(c.find("main-classification")), edition, first=True))
        out.extend(common.ipc_text(common.fixed_text(f), edition) for f in c.iterfind("further-classification"))
    return common.compact(out)


def _cpc(bib: etree._Element) -> list[Classification]:
    """Main and further CPC, including the symbols of `combination-set`s (each once, in document order)."""
    out: list[Classification] = []
    seen: set[str] = set()
    for group, first in (("main-cpc", True), ("further-cpc", False)):
        for c in bib.iterfind(f"classifications-cpc/{group}//classification-cpc"):
            fields = common.children_by_tag(c)
            direct = c.getparent().tag == group  # not in a combination-set
            cls = Classification.from_parts(
                "CPC", *(common.leaf_text(fields.get(t)) for t in _SYMBOL_PARTS),
                version=common.child_text(c, "cpc-version-indicator/date") or None,
                value=common.leaf_text(fields.get("classification-value")) or None,
                first=first and direct,
            )
            if direct or cls.symbol not in seen:
                seen.add(cls.symbol)
                out.append(cls)
    return out


def _other_classes(bib: etree._Element) -> list[Classification]:
    out: list[Classification | None] = []
    for c in bib.iterfind("classification-locarno"):
        out.append(common.locarno(common.child_text(c, "main-classification"),
                                  common.child_text(c, "edition") or None))
    for c in bib.iterfind("classification-national"):  # USPC; the field-of-search copies are not classes
        if (common.child_text(c, "country") or "US") != "US":
            continue
        out.append(common.uspc(_raw_text(c.find("main-classification")), first=True))
        out.extend(common.uspc(_raw_text(f)) for f in c.iterfind("further-classification"))
    return common.compact(out)


def _raw_text(el: etree._Element | None) -> str:
    """Text with its inner spacing kept (USPC strings are fixed-width: `707  7`)."""
    return common.fixed_text(el)


def _parties(bib: etree._Element) -> tuple[list[Party], list[Party]]:
    applicants: list[Party | None] = []
    inventors: list[Party | None] = []
    parties = bib.find("us-parties")
    if parties is None:
        parties = bib.find("parties")
    has_inventors = parties is not None and parties.find("inventors") is not None
    if parties is not None:
        tag = "applicants/applicant" if parties.tag == "parties" else "us-applicants/us-applicant"
        for a in parties.iterfind(tag):
            applicants.append(_party(a, "applicant"))
            if not has_inventors and a.get("app-type") == "applicant-inventor":
                inventors.append(_party(a, "inventor"))
        for i in parties.iterfind("inventors/inventor"):
            inventors.append(_party(i, "inventor"))
    for a in bib.iterfind("assignees/assignee"):
        applicants.append(_party(a, "assignee"))
    return common.unique_parties(applicants), common.unique_parties(inventors)


def _party(el: etree._Element, role: str) -> Party | None:
    book = next(el.iterchildren("addressbook"), None)
    if book is None:
        book = el  # v4.0 assignees: <assignee><orgname>...</orgname></assignee>
    fields = common.children_by_tag(book)
    name = common.person_name(
        common.leaf_text(fields.get("first-name")), common.leaf_text(fields.get("last-name")),
        common.leaf_text(fields.get("orgname")),
    )
    country = (common.child_text(book, "address/country") or common.child_text(el, "residence/country")
               or common.child_text(el, "nationality/country"))
    return common.party(name, country, role)


def _citations(bib: etree._Element) -> list[Citation]:
    out: list[Citation] = []
    for path in ("references-cited/citation", "us-references-cited/us-citation"):
        for cit in bib.iterfind(path):
            c = _citation(cit)
            if c is not None:
                out.append(c)
    return out


def _citation(cit: etree._Element) -> Citation | None:
    """The first `category`, `patcit` and `nplcit` child decide (one pass over the children, then over the
    document-id's: a citation is small and a weekly file holds tens of thousands)."""
    parts = common.children_by_tag(cit)
    patcit, nplcit = parts.get("patcit"), parts.get("nplcit")
    cat = common.leaf_text(parts.get("category")) or None
    pat = None if patcit is None else next(patcit.iterchildren("document-id"), None)
    if pat is None and patcit is not None:
        pat = cit.find("patcit/document-id")  # a later <patcit> may hold it
    if pat is not None:
        ids = common.children_by_tag(pat)  # and <name>, unused
        return common.patent_citation(
            common.leaf_text(ids.get("country")), common.leaf_text(ids.get("doc-number")),
            common.leaf_text(ids.get("kind")), cat, common.leaf_text(ids.get("date")),
        )
    return common.npl_citation(common.leaf_text(nplcit), cat)


def _claims(claims: etree._Element | None) -> list[Claim]:
    if claims is None:
        return []
    skip = _SKIP if next(claims.iterdescendants(*_SKIP), None) is not None else ()  # one look for all claims
    out = []
    for pos, claim in enumerate(claims.iterfind("claim"), start=1):
        num = common.claim_num(claim.get("num") or claim.get("id"), pos)
        text = common.rich_text(claim, skip=skip, blocks=_CLAIM_BLOCKS)
        out.append(common.make_claim(num, text, (r.get("idref", "") for r in claim.iter("claim-ref"))))
    return [c for c in out if c is not None]
