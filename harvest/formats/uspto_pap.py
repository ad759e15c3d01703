"""USPTO pre-grant publications in pap XML v1.5/v1.6 (2001-2004): `<patent-application-publication>`."""

from __future__ import annotations

import re

from lxml import etree

from harvest.formats import _uspto_common as common
from harvest.raw import RawDocument, Reject
from index.classification import Classification
from index.model import Claim, Party, PatentDocument, Priority, PublicationNumber, parse_date

_SKIP = ("number", "table", "table-cwu", "math-cwu", "chemistry-cwu", "math", "image", "figure", "emi")
_PARAS = ("heading", "paragraph")
_DTD_VERSION = re.compile(rb"pap-v(\d)(\d+)")


def parse(root: etree._Element, raw: RawDocument) -> PatentDocument:
    bib = root.find("subdoc-bibliographic-information")
    if bib is None:
        raise Reject("<patent-application-publication> has no subdoc-bibliographic-information")
    pub = bib.find("document-id")
    number = common.child_text(pub, "doc-number")
    if not number:
        raise Reject("<patent-application-publication> has no document-id doc-number")
    filing = bib.find("domestic-filing-data")
    tech = bib.find("technical-information")
    title = common.child_text(tech, "title-of-invention")
    abstract = _paragraphs(root.find("subdoc-abstract"))
    return PatentDocument(
        pn=PublicationNumber(common.child_text(pub, "country-code") or "US", number,
                             common.child_text(pub, "kind-code").upper()),
        publication_date=parse_date(common.child_text(pub, "document-date")),
        application_number=common.application_number(
            "US", common.child_text(filing, "application-number/doc-number")
        ),
        application_date=parse_date(common.child_text(filing, "filing-date")),
        priorities=_priorities(bib),
        titles={"en": title} if title else {},
        abstracts={"en": abstract} if abstract else {},
        claims=_claims(root.find("subdoc-claims")),
        claims_lang="en",
        description=_paragraphs(root.find("subdoc-description")),
        applicants=_applicants(bib),
        inventors=common.unique_parties(_person(i, "inventor") for i in bib.iterfind("inventors/*")),
        ipc=_ipc(tech),
        other_classes=_uspc(tech),
        lang="en",
        doc_format=f"uspto-pap {_version(raw.data)}",
    )


def _version(data: bytes) -> str:
    m = _DTD_VERSION.search(data[:4096])
    return f"v{m.group(1).decode()}.{m.group(2).decode()}" if m else "v1.x"


def _paragraphs(section: etree._Element | None) -> str:
    return common.paragraphs(section, _PARAS, _SKIP)


def _priorities(bib: etree._Element) -> list[Priority]:
    out = [
        Priority(common.child_text(fp, "country-code") or "US",
                 common.child_text(fp, "priority-application-number/doc-number"),
                 parse_date(common.child_text(fp, "filing-date")))
        for fp in bib.iterfind("foreign-priority-data")
    ]
    for prov in bib.iterfind("continuity-data/non-provisional-of-provisional/document-id"):
        out.append(Priority(common.child_text(prov, "country-code") or "US", common.child_text(prov, "doc-number"),
                            parse_date(common.child_text(prov, "document-date"))))
    return [p for p in out if p.number]


def _ipc(tech: etree._Element | None) -> list[Classification]:
    if tech is None:
        return []
    out: list[Classification | None] = []
    for c in tech.iterfind("classification-ipc"):
        edition = common.child_text(c, "classification-ipc-edition").lstrip("0") or None
        out.extend(common.ipc_text(common.fixed_text(i), edition, first=True)
                   for i in c.iterfind("classification-ipc-primary/ipc"))
        out.extend(common.ipc_text(common.fixed_text(i), edition) for i in c.iterfind("classification-ipc-secondary/ipc"))
    return common.compact(out)


def _uspc(tech: etree._Element | None) -> list[Classification]:
    if tech is None:
        return []
    out = []
    for group, first in (("classification-us-primary", True), ("classification-us-secondary", False)):
        for u in tech.iterfind(f"classification-us/{group}/uspc"):
            out.append(common.uspc_parts(common.child_text(u, "class"), common.child_text(u, "subclass"), first))
    return common.compact(out)


def _applicants(bib: etree._Element) -> list[Party]:
    """Inventors flagged as applicants (`authority-applicant`), then assignees."""
    found: list[Party | None] = [
        _person(i, "applicant") for i in bib.iterfind("inventors/*") if common.child_text(i, "authority-applicant")
    ]
    for a in bib.iterfind("assignee"):
        name = common.child_text(a, "organization-name") or _name(a.find("name"))
        found.append(common.party(name, _country(a), "assignee"))
    return common.unique_parties(found)


def _person(el: etree._Element, role: str) -> Party | None:
    name = _name(el.find("name")) or common.child_text(el, "organization-name")
    return common.party(name, _country(el), role)


def _name(name: etree._Element | None) -> str:
    if name is None:
        return ""
    parts = [common.child_text(name, t) for t in ("name-prefix", "given-name", "middle-name", "family-name")]
    person = " ".join(p for p in parts if p)
    suffix = common.child_text(name, "name-suffix")
    return f"{person}, {suffix}" if person and suffix else person or common.child_text(name, "organization-name")


def _country(el: etree._Element) -> str | None:
    code = (common.child_text(el, "residence/*/country-code")
            or common.child_text(el, "address/country/country-code"))
    if not code and el.find("residence/residence-us") is not None:
        code = "US"
    return code or None


def _claims(claims: etree._Element | None) -> list[Claim]:
    if claims is None:
        return []
    out = []
    for pos, claim in enumerate(claims.iterfind("claim"), start=1):
        num = common.claim_num(claim.get("id"), pos)
        text = common.rich_text(claim, skip=_SKIP, blocks=("claim-text",))
        out.append(common.make_claim(num, text, (r.get("depends_on", "") for r in claim.iter("dependent-claim-reference"))))
    return [c for c in out if c is not None]
