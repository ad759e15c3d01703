"""Issue 12 parser faults, each on a real document of that shape (or a real document recast into the shape the
shared data lacks: a combination set, a pretty-printed ST.32 file, bare OPS claim-texts, a standalone FTM file)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harvest.formats import ReferencesOnly, parse_raw
from harvest.formats._uspto_common import ipc_text, uspc
from harvest.raw import RawDocument
from index.model import PatentDocument

OPS = "ep/ops"
CLAIMS = f"{OPS}/claims_WO2018148832A1.xml"


def _parse(data: bytes, name: str = "x.xml") -> list[PatentDocument]:
    return parse_raw(RawDocument(data, name, 1), fetched_at="2026-01-01T00:00:00+00:00")


def _one(data: bytes) -> PatentDocument:
    [doc] = _parse(data)
    return doc


def _documents(data: bytes) -> list[bytes]:
    return [part for part in re.split(rb"(?=<\?xml )", data) if part.strip()]


# --- 1. OPS responses that list publications are skipped, not indexed or rejected ----------------------------

def test_ops_family_response_is_skipped_with_its_members(shared_patents: Path) -> None:
    """An OPS family response (members only, as `published-data/family` returns it) holds references."""
    search = (shared_patents / OPS / "search_result.xml").read_bytes()
    members = re.findall(rb"<ops:publication-reference [^>]*>.*?</ops:publication-reference>", search, re.S)[:2]
    family = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<ops:world-patent-data xmlns="http://www.epo.org/exchange" '
        b'xmlns:ops="http://ops.epo.org"><ops:patent-family family-id="65436063" total-result-count="2">'
        + b"".join(b'<ops:family-member family-id="65436063">' + m.replace(b"ops:publication-reference",
                                                                           b"publication-reference")
                   + b"</ops:family-member>" for m in members)
        + b"</ops:patent-family></ops:world-patent-data>"
    )
    with pytest.raises(ReferencesOnly) as caught:
        _parse(family)
    assert caught.value.skip and caught.value.reason == "OPS family response holds references, not documents"
    assert [(r.id, r.family_id) for r in caught.value.references] == [
        ("WO-2019040883-A1", "65436063"), ("US-2019064388-A1", "65436063")]


# --- 2. an OPS abstract-only response is a partial document ---------------------------------------------------

def test_ops_abstract_only_response_is_partial(shared_patents: Path) -> None:
    biblio = (shared_patents / OPS / "biblio_WO2018148832A1.xml").read_bytes()
    abstract_only = re.sub(rb"<bibliographic-data>.*?</bibliographic-data>", b"", biblio, flags=re.S)
    doc = _one(abstract_only)
    assert doc.partial and doc.id == "WO-2018148832-A1" and doc.abstracts and not doc.titles
    with_reference = re.sub(rb"(<bibliographic-data>\s*<publication-reference>.*?</publication-reference>).*?"
                            rb"(</bibliographic-data>)", rb"\1\2", biblio, flags=re.S)
    assert _one(with_reference).partial
    full = _one(biblio)
    assert not full.partial and full.titles and full.applicants and full.ipc


# --- 3. CPC inside <combination-set> -------------------------------------------------------------------------

def test_cpc_in_combination_sets_is_kept(shared_patents: Path) -> None:
    data = (shared_patents / "uspto-grant/single/US11646472B2-20230509.xml").read_bytes()
    plain = _one(data)
    further = re.search(rb"<further-cpc>(.*?)</further-cpc>", data, re.S)
    cpcs = re.findall(rb"<classification-cpc>.*?</classification-cpc>", further.group(1), re.S)
    assert len(cpcs) >= 3
    combo = (b"<combination-set><group-number>1</group-number>"
             + b"".join(b"<combination-rank><rank-number>%d</rank-number>%s</combination-rank>" % (i, c)
                        for i, c in enumerate(cpcs[-2:], 1))
             + b"</combination-set>")
    recast = data.replace(further.group(1), b"\n".join(cpcs[:-2]) + b"\n" + combo)
    doc = _one(recast)
    assert [c.symbol for c in doc.cpc] == [c.symbol for c in plain.cpc]
    assert len(doc.cpc) == len(plain.cpc) and doc.cpc[-1].symbol not in {c.symbol for c in doc.cpc[:-2]}


# --- 4. fixed-width IPC (ST.32 v2.5, ICE v4.0) ------------------------------------------------------------------

def test_fixed_width_ipc_layout(shared_patents: Path) -> None:
    """Subclass, main group right-aligned in three characters, then the subgroup: `A47L  514` (ST.32 v2.5 here;
    `G06F  994` and `G06F 1760` in the 2001 SGML file); a three-digit subgroup `H01L 21302` is H01L21/302."""
    data = (shared_patents / "uspto-grant/single/US06530116-20030311.xml").read_bytes()
    assert _one(data).ipc[0].symbol == "A47L5/14"
    for fixed, symbol in (("H01L 21302", "H01L21/302"), ("H01L  5302", "H01L5/302"), ("G06F 1760", "G06F17/60"),
                          ("G06F  994", "G06F9/94")):
        recast = data.replace(b"<B511><PDAT>A47L  514</PDAT></B511>", f"<B511><PDAT>{fixed}</PDAT></B511>".encode())
        assert _one(recast).ipc[0].symbol == symbol
    assert [ipc_text(t).symbol for t in ("H01L 21302", "B65D 8304", "G06F017/00", "7A61K 9/20")] == [
        "H01L21/302", "B65D83/04", "G06F17/00", "A61K9/20"]


# --- 5. USPC from pretty-printed ST.32; design classes without a leading zero --------------------------------

def test_uspc_from_pretty_printed_st32(shared_patents: Path) -> None:
    first = _documents((shared_patents / "uspto-grant/weekly/pg020507.ten.xml").read_bytes())[0]
    plain = _one(first)
    pretty = re.sub(rb"(<B5\d\d>)(<PDAT>)", rb"\1\n        \2", first)
    pretty = re.sub(rb"(</PDAT>)(</B5\d\d>)", rb"\1\n      \2", pretty)
    assert pretty != first
    doc = _one(pretty)
    uspcs = [c.symbol for c in doc.other_classes if c.scheme == "USPC"]
    assert uspcs and uspcs == [c.symbol for c in plain.other_classes if c.scheme == "USPC"]
    assert all(re.fullmatch(r"[A-Z]*\d+/[\w.]+", s) for s in uspcs), uspcs
    assert [c.symbol for c in doc.ipc] == [c.symbol for c in plain.ipc]


def test_design_class_has_one_spelling(shared_patents: Path) -> None:
    data = (shared_patents / "uspto-grant/single/USD0701016-20140318.xml").read_bytes()
    assert [c.symbol for c in _one(data).other_classes if c.scheme == "USPC"] == ["D1/101"]
    for spelling in (b"D01101", b"D 1101"):
        recast = re.sub(rb"<main-classification>D ?\d+</main-classification>",
                        b"<main-classification>" + spelling + b"</main-classification>", data, count=1)
        assert [c.symbol for c in _one(recast).other_classes if c.scheme == "USPC"] == ["D1/101"]
    assert uspc("D07511").symbol == uspc("D 7511").symbol == "D7/511"
    assert uspc("PLT263").symbol == "PLT/263" and uspc(" 81  337").symbol == "81/3.37"


# --- 6. OPS claims as bare <claim-text> elements ------------------------------------------------------------

def _claim_texts(shared_patents: Path) -> tuple[bytes, list[bytes], PatentDocument]:
    data = (shared_patents / CLAIMS).read_bytes()
    body = re.search(rb"<claim><claim-text>(.*?)</claim-text></claim>", data, re.S)
    pieces = re.split(rb"\n(?=\d{1,2}\. )", body.group(1))[1:]  # the text numbers its claims: 1. ... 2. ...
    return data.replace(body.group(0), b"@@"), pieces, _one(data)


def test_ops_bare_claim_texts_are_split(shared_patents: Path) -> None:
    template, pieces, original = _claim_texts(shared_patents)
    assert len(pieces) == len(original.claims) == 45
    texts = b"".join(b"<claim-text>" + p + b"</claim-text>" for p in pieces)
    for shape in (texts, b"<claim>" + texts + b"</claim>"):
        doc = _one(template.replace(b"@@", shape))
        assert [c.text for c in doc.claims] == [c.text for c in original.claims]
        assert doc.claims[3].depends_on == [1, 2, 3]
    unnumbered = b"".join(b"<claim-text>" + re.sub(rb"^\d+\. ", b"", p) + b"</claim-text>" for p in pieces)
    doc = _one(template.replace(b"@@", b"<claim>" + unnumbered + b"</claim>"))
    assert len(doc.claims) == 45 and doc.claims[1].text == original.claims[1].text


# --- 7. inline markup does not break words ---------------------------------------------------------------------

def test_inline_markup_is_joined_to_its_word(shared_patents: Path) -> None:
    ep = _one((shared_patents / "ep/publication-server/grant_v1-0-B2.xml").read_bytes())
    assert "C3-C8-akyl" in ep.claims[0].text and "C 3" not in ep.claims[0].text
    assert "N=C(CH3)(3-trifiuoromethylphenyl)" in ep.description
    cn = _one((shared_patents / "cn/CN104223352A-20141224.xml").read_bytes())
    assert "3×3cm2的组织块" in cn.description and "10-1、10-2" in cn.description
    jp = _one((shared_patents / "jp/JP2021041306A.xml").read_bytes())
    assert "（ＳｉＯ２）" in jp.description
    # block elements still separate words, with no whitespace between them in the file
    data = (shared_patents / "ep/publication-server/grant_v1-5-B1.xml").read_bytes()
    tight = _one(re.sub(rb"(</claim-text>|<br/>)\s+", rb"\1", data))
    assert tight.claims == _one(data).claims


# --- 8. the EPO full-text format (FTM) is dispatched --------------------------------------------------------

def test_ftm_fulltext_document_is_parsed(shared_patents: Path) -> None:
    data = (shared_patents / CLAIMS).read_bytes()
    element = re.search(rb"<ftxt:fulltext-document .*?</ftxt:fulltext-document>", data, re.S).group(0)
    ftm = element.replace(b"<ftxt:fulltext-document ", b'<ftxt:fulltext-document xmlns="http://www.epo.org/fulltext" '
                                                     b'xmlns:ftxt="http://www.epo.org/fulltext" ', 1)
    doc = _one(b'<?xml version="1.0" encoding="UTF-8"?>\n' + ftm)
    wrapped = _one(data)
    assert doc.partial and doc.id == "WO-2018148832-A1" and doc.claims == wrapped.claims
    assert doc.claims_lang == "en" and doc.doc_format == "epo-ftm fulltext claims"
