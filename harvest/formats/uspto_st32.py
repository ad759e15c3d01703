"""USPTO grants in ST.32 XML v2.5 (2002-2004): `<PATDOC>` with WIPO ST.32 B-tags (`<B110>` number, ...)."""

from __future__ import annotations

import re

from lxml import etree

from harvest.formats import _uspto_common as common
from harvest.raw import RawDocument, Reject
from index.classification import Classification
from index.model import Citation, Claim, Party, PatentDocument, Priority, PublicationNumber, parse_date

_SKIP = ("TABLE", "TABLE-US", "MATH-US", "CHEM-US", "EMI", "CWU", "MATHEMATICA")
_PARAS = ("H", "PARA")
_CITED_BY = {"CITED-BY-EXAMINER": "cited by examiner", "CITED-BY-OTHER": "cited by other"}


def parse(root: etree._Element, raw: RawDocument) -> PatentDocument:
    bib = root.find("SDOBI")
    if bib is None:
        raise Reject("<PATDOC> has no SDOBI bibliographic data")
    number = _pdat(bib, "B100/B110/DNUM")
    if not number:
        raise Reject("<PATDOC> has no publication number (B110)")
    title = _pdat(bib, "B500/B540")
    abstract = _paragraphs(root.find("SDOAB"))
    b510 = _b510(bib)
    return PatentDocument(
        pn=PublicationNumber(_pdat(bib, "B100/B190") or "US", number, _pdat(bib, "B100/B130").upper()),
        publication_date=parse_date(_pdat(bib, "B100/B140")),
        application_number=common.application_number("US", _pdat(bib, "B200/B210")),
        application_date=parse_date(_pdat(bib, "B200/B220")),
        priorities=_priorities(bib),
        titles={"en": title} if title else {},
        abstracts={"en": abstract} if abstract else {},
        claims=_claims(root.find("SDOCL")),
        claims_lang="en",
        description=_paragraphs(root.find("SDODE")),
        applicants=common.unique_parties(_party(p, "assignee") for p in bib.iterfind("B700/B730/B731/PARTY-US")),
        inventors=common.unique_parties(_party(p, "inventor") for p in bib.iterfind("B700/B720/B721/PARTY-US")),
        ipc=[c for c in b510 if c.scheme == "IPC"],
        other_classes=[c for c in b510 if c.scheme != "IPC"] + _uspc(bib),
        citations=_citations(bib),
        lang="en",
        doc_format=f"uspto-st32 v{root.get('DTD') or '2.5'}",
    )


def _pdat(el: etree._Element | None, path: str) -> str:
    """Text under an ST.32 element (values sit in `<PDAT>` leaves, sometimes wrapped in DNUM/DATE/STEXT)."""
    return common.child_text(el, path)


def _paragraphs(section: etree._Element | None) -> str:
    return common.paragraphs(section, _PARAS, _SKIP, blocks=("PTEXT",))


def _priorities(bib: etree._Element) -> list[Priority]:
    out = []
    for b300 in bib.iterfind("B300"):
        nums, dates, ctrys = (list(b300.iterfind(t)) for t in ("B310", "B320", "B330"))
        for i, num in enumerate(nums):
            out.append(Priority(
                common.child_text(ctrys[i], ".") if i < len(ctrys) else "",
                common.child_text(num, "."),
                parse_date(common.child_text(dates[i], ".")) if i < len(dates) else None,
            ))
    for doc in bib.iterfind("B600/B680US/DOC"):  # US provisional applications
        out.append(Priority(_pdat(doc, "CTRY") or "US", _pdat(doc, "DNUM"), parse_date(_pdat(doc, "DATE"))))
    return [p for p in out if p.number]


def _b510(bib: etree._Element) -> list[Classification]:
    """B511 main / B512 further: IPC for utility grants, Locarno (`1402`) for designs; B516 is the edition."""
    edition = _pdat(bib, "B500/B510/B516") or None
    out = []
    for tag, first in (("B511", True), ("B512", False)):
        for el in bib.iterfind(f"B500/B510/{tag}"):
            text = common.fixed_text(el).strip()  # not collapsed: `H01L 21302` is fixed-width
            if re.fullmatch(r"\d{4}", text):
                out.append(common.locarno(text, edition, first=first))
            else:
                out.append(common.ipc_text(text, edition, first=first))
    return common.compact(out)


def _uspc(bib: etree._Element) -> list[Classification]:
    out: list[Classification | None] = []
    for tag, first in (("B521", True), ("B522", False)):
        out.extend(common.uspc(common.fixed_text(el), first=first) for el in bib.iterfind(f"B500/B520/{tag}"))
    return common.compact(out)


def _party(el: etree._Element, role: str) -> Party | None:
    name = common.person_name(_pdat(el, "NAM/FNM"), _pdat(el, "NAM/SNM"), _pdat(el, "NAM/ONM"))
    suffix = _pdat(el, "NAM/SFX")
    if suffix and not _pdat(el, "NAM/ONM"):
        name = f"{name}, {suffix}"
    country = _pdat(el, "ADR/CTRY") or ("US" if _pdat(el, "ADR/STATE") else None)
    return common.party(name, country, role)


def _citations(bib: etree._Element) -> list[Citation]:
    out: list[Citation | None] = []
    b560 = bib.find("B500/B560")
    if b560 is None:
        return []
    for cit in b560.iter("PCIT", "NCIT"):
        marker = cit.getnext()
        category = _CITED_BY.get(marker.tag) if marker is not None and isinstance(marker.tag, str) else None
        if cit.tag == "PCIT":
            doc = cit.find("DOC")
            out.append(common.patent_citation(_pdat(doc, "CTRY") or "US", _pdat(doc, "DNUM"), _pdat(doc, "KIND"),
                                              category, _pdat(doc, "DATE")))
        else:
            out.append(common.npl_citation(common.child_text(cit, "."), category))
    return [c for c in out if c is not None]


def _claims(sdocl: etree._Element | None) -> list[Claim]:
    if sdocl is None:
        return []
    out = []
    for pos, clm in enumerate(sdocl.iter("CLM"), start=1):
        num = common.claim_num(clm.get("ID"), pos)
        text = common.rich_text(clm, skip=_SKIP, blocks=("PARA", "CLMSTEP", "PTEXT"))
        out.append(common.make_claim(num, text, (r.get("ID", "") for r in clm.iter("CLREF"))))
    return [c for c in out if c is not None]
