"""USPTO parsers (ICE v4.x, pap v1.5/v1.6, ST.32 XML v2.5) against every such document in the shared fixtures."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from harvest.formats import _uspto_common as common
from harvest.formats import parse_raw
from harvest.raw import RawDocument, Reject
from index.model import PatentDocument

USPTO_XML = re.compile(r"^USPTO (ICE|pap|ST\.32 XML)")
CLAIMS_MARKUP = re.compile(rb"<(claims|subdoc-claims|SDOCL)[\s>]")
CLAIM_ELEMENT = re.compile(rb'<(?:claim|CLM) (?:[^>]*\s)?(?:id|ID)="CLM-0*(\d+)"[^>]*>(.*?)</(?:claim|CLM)>', re.S)
CLAIM_REF = re.compile(rb'(?:claim-ref idref|depends_on|CLREF ID)="CLM-0*(\d+)"')
FIRST_CLAIM = re.compile(rb"<(?:claim|CLM) .*?</(?:claim|CLM)>", re.S)


def _split(data: bytes) -> list[bytes]:
    """Weekly files are concatenated XML documents; cut before each XML declaration."""
    return [part for part in re.split(rb"(?=<\?xml )", data) if part.strip()]


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


@pytest.fixture(scope="module")
def uspto_docs(shared_patents: Path, patent_index: list[dict[str, str]]):
    """(INDEX.csv row, RawDocument, parsed document) for every USPTO ICE / pap / ST.32 XML document."""
    files: dict[str, list[bytes]] = {}
    out = []
    for row in patent_index:
        if not USPTO_XML.match(row["format"]):
            continue
        parts = files.setdefault(row["file"], _split((shared_patents / row["file"]).read_bytes()))
        pos = int(row["index"])
        raw = RawDocument(parts[pos - 1], row["file"], pos, source="uspto-test")
        docs = parse_raw(raw, fetched_at="2024-01-01T00:00:00+00:00")
        assert len(docs) == 1
        out.append((row, raw, docs[0]))
    return out


def _by_id(uspto_docs, doc_id: str) -> PatentDocument:
    return next(doc for row, _, doc in uspto_docs if row["doc_id"] == doc_id)


def test_fixture_covers_all_three_formats(uspto_docs):
    formats = {doc.doc_format.split(" ")[0] for _, _, doc in uspto_docs}
    assert formats == {"uspto-ice-grant", "uspto-ice-application", "uspto-pap", "uspto-st32"}
    assert len(uspto_docs) >= 120


def test_every_document_matches_index(uspto_docs):
    problems = []
    for row, raw, doc in uspto_docs:
        where = f"{row['file']}#{row['index']}"
        checks = {
            "id": doc.id == row["doc_id"],
            "title": _norm(doc.title()) == _norm(row["title"]) and doc.titles.keys() == {"en"},
            "pub_date": doc.publication_date == date.fromisoformat(
                f"{row['pub_date'][:4]}-{row['pub_date'][4:6]}-{row['pub_date'][6:]}"),
            "n_class": len(doc.ipc) + len(doc.cpc) + len(doc.other_classes) == int(row["n_class"]),
            "abstract": abs(len(doc.abstract()) - int(row["abstract_chars"])) <= 10,
            "citations": len(doc.citations) == int(row["n_citations"]),
            "lang": doc.lang == "en",
            "provenance": doc.provenance is not None and doc.provenance.position == raw.position,
            "application": bool(doc.application_number) and doc.application_date is not None,
        }
        problems += [f"{where} {row['doc_id']}: {name}" for name, ok in checks.items() if not ok]
    assert not problems, "\n".join(problems)


def test_claims_have_structure(uspto_docs):
    checked = 0
    for row, raw, doc in uspto_docs:
        if not CLAIMS_MARKUP.search(raw.data):
            assert doc.claims == [], row["doc_id"]  # bibliographic-only weekly file (ipgb): no claims to find
            continue
        checked += 1
        assert doc.claims, row["doc_id"]
        first = doc.claims[0]
        assert first.independent, row["doc_id"]
        if b"ancel" not in FIRST_CLAIM.search(raw.data).group(0):  # unless claim 1 was cancelled in prosecution
            assert first.num == 1, row["doc_id"]
        nums = [c.num for c in doc.claims]
        assert nums == sorted(set(nums)), row["doc_id"]
        for claim in doc.claims:
            assert claim.text and not claim.text.startswith(f"{claim.num}."), (row["doc_id"], claim.num)
            assert all(0 < d < claim.num for d in claim.depends_on), (row["doc_id"], claim.num, claim.depends_on)
        if doc.pn.number.startswith("D"):
            assert len(doc.claims) == 1 and "ornamental design" in doc.claims[0].text.lower()
    assert checked > 100


def test_claim_dependencies_follow_the_markup(uspto_docs):
    """Each claim's references to other claims in the source (claim-ref / dependent-claim-reference / CLREF)
    are exactly its depends_on; a claim citing itself (a source slip in US-20040000002-A1) is not a dependency."""
    checked = 0
    for row, raw, doc in uspto_docs:
        in_source = {
            int(num): {int(n) for n in CLAIM_REF.findall(body)} - {int(num)}
            for num, body in CLAIM_ELEMENT.findall(raw.data)
        }
        parsed = {c.num: set(c.depends_on) for c in doc.claims}
        assert parsed == in_source, row["doc_id"]
        checked += sum(bool(refs) for refs in parsed.values())
    assert checked > 1000


def test_grant_us11646472(uspto_docs):
    doc = _by_id(uspto_docs, "US-11646472-B2")
    assert doc.doc_format == "uspto-ice-grant v4.7"
    assert doc.title() == "Making lithium metal\u2014seawater battery cells having protected lithium electrodes"
    assert doc.application_number == "US17248024" and doc.application_date == date(2021, 1, 5)
    assert [(p.name, p.role, p.country) for p in doc.applicants] == [
        ("PolyPlus Battery Company", "applicant", "US"), ("PolyPlus Battery Company", "assignee", "US"),
    ]
    assert [p.name for p in doc.inventors] == [
        "Steven J. Visco", "Bruce D. Katz", "Yevgeniy S. Nimon", "Lutgard C. De Jonghe",
    ]
    # US provisional applications the grant claims the benefit of
    assert {(p.number, p.date) for p in doc.priorities} >= {("61763412", date(2013, 2, 11))}

    ipc = doc.ipc[0]
    assert (ipc.section, ipc.cls, ipc.subclass, ipc.group, ipc.subgroup) == ("H", "01", "M", "50", "46")
    assert ipc.symbol == "H01M50/46" and ipc.first and ipc.version == "20210101" and ipc.value == "I"
    assert len(doc.ipc) == 16 and sum(c.first for c in doc.ipc) == 1
    assert {c.value for c in doc.ipc} == {"I", "N"}
    assert len(doc.cpc) == 19 and doc.cpc[0].symbol == "H01M50/46" and doc.cpc[0].first
    assert {"H01M4/366", "H01M2004/027", "Y02E60/10"} <= {c.symbol for c in doc.cpc}
    assert not any(c.first for c in doc.cpc[1:])

    first = doc.citations[0]
    assert (first.kind, first.number, first.category, first.date) == (
        "patent", "US-3343988-A", "cited by applicant", date(1967, 9, 1))
    assert {c.category for c in doc.citations} == {"cited by applicant"}  # all 554 are applicant citations
    assert sum(c.kind == "npl" for c in doc.citations) == 258
    assert all(c.text for c in doc.citations if c.kind == "npl")

    claims = {c.num: c for c in doc.claims}
    assert len(claims) == 17 and claims[1].independent and claims[1].text.startswith("A method of making a battery")
    assert claims[2].depends_on == [1]
    assert claims[2].text == "The method of claim 1 wherein the lithium anode is lithium metal."
    assert "dendrites" in doc.description and "\u201cdendrites\u201d" in doc.description
    assert doc.description.startswith("CROSS-REFERENCE TO RELATED APPLICATIONS\n")


def test_pap_v16_named_entities_survive(uspto_docs):
    doc = _by_id(uspto_docs, "US-20040000006-A1")
    assert doc.doc_format == "uspto-pap v1.6"
    # &ldquo; / &rdquo; are defined only in the (never fetched) DTD; the text around them must survive
    assert "titled \u201cCOLD-WEATHER HELMET,\u201d filed on Mar. 12, 2002" in doc.description
    assert "&ldquo;" not in doc.description and "[0001]" not in doc.description
    assert [(p.number, p.date) for p in doc.priorities] == [
        ("60363353", date(2002, 3, 12)), ("60410295", date(2002, 9, 13))]
    assert [p.name for p in doc.inventors] == ["Eric Fournier", "Gilles Basson", "Louis Guay"]
    assert [c.symbol for c in doc.ipc] == ["A42B1/08"] and doc.ipc[0].version == "7"
    assert [(c.scheme, c.symbol) for c in doc.other_classes] == [("USPC", "2/424")]
    assert doc.claims[2].num == 3 and doc.claims[2].depends_on == [2]


def test_pap_v15_mdash_and_foreign_priority(uspto_docs):
    doc = _by_id(uspto_docs, "US-20010000002-A1")
    assert doc.doc_format == "uspto-pap v1.5"
    assert "chronological course\u2014i.e. its speed\u2014lies" in doc.description
    assert [(p.country, p.number, p.date) for p in doc.priorities] == [("DE", "197 33 454", date(1997, 8, 2))]
    assert [c.symbol for c in doc.ipc] == ["D21C11/12"]
    assert [c.symbol for c in doc.other_classes] == ["162/259"]


def test_design_grant_ice(uspto_docs):
    doc = _by_id(uspto_docs, "US-D0701016-S1")
    assert (doc.pn.country, doc.pn.number, doc.pn.kind) == ("US", "D0701016", "S1")
    assert doc.abstracts == {} and doc.ipc == [] and doc.cpc == []
    locarno = [c for c in doc.other_classes if c.scheme == "LOCARNO"]
    assert [(c.symbol, c.version) for c in locarno] == [("01-01", "10")]
    assert [c.symbol for c in doc.other_classes if c.scheme == "USPC"] == ["D1/101"]
    assert len(doc.claims) == 1 and doc.claims[0].independent
    assert doc.claims[0].text == (
        "The ornamental design for cheese in form of a triangular pyramid, as shown and described.")
    assert [(p.country, p.number) for p in doc.priorities] == [("EM", "001184956-0001")]
    assert ("Rupp AG", "assignee") in [(p.name, p.role) for p in doc.applicants]
    assert {c.category for c in doc.citations} == {"cited by examiner"}
    assert {"US-D14842-S", "EP-0577989"} <= {c.number for c in doc.citations}  # US design and foreign citations


def test_design_grant_st32(uspto_docs):
    doc = _by_id(uspto_docs, "US-D0456589-S1")
    assert doc.doc_format == "uspto-st32 v2.5"
    assert [(c.scheme, c.symbol) for c in doc.other_classes] == [
        ("LOCARNO", "02-02"), ("USPC", "D2/750"), ("USPC", "D5/20")]
    assert doc.abstracts == {} and len(doc.claims) == 1
    assert [p.name for p in doc.inventors] == ["Pia M\u00fcller"]  # &uuml; in the source
    assert [(p.name, p.role, p.country) for p in doc.applicants] == [("Dale of Norway AS", "assignee", "NO")]
    assert [(p.country, p.number) for p in doc.priorities] == [("NO", "2000 0010")]


def test_utility_grant_st32(uspto_docs):
    doc = _by_id(uspto_docs, "US-06530116-B2")
    assert [(c.symbol, c.version, c.first) for c in doc.ipc] == [("A47L5/14", "7", True)]
    assert [c.symbol for c in doc.other_classes] == ["15/328", "15/327.6", "15/326", "15/412"]
    claims = {c.num: c for c in doc.claims}
    assert len(claims) == 20 and claims[4].depends_on == [3] and claims[1].independent
    assert claims[3].text.startswith("The vacuum cleaner according to claim 1, wherein: the housing comprises")
    assert {c.category for c in doc.citations} == {"cited by examiner", "cited by other"}
    assert sum(c.kind == "npl" for c in doc.citations) == 4
    assert doc.citations[0].number == "US-2276844-A"
    assert [(p.name, p.role) for p in doc.applicants] == [("Shop Vac Corporation", "assignee")]
    assert "taken along line 2\u20142" in doc.description  # &mdash; between bold figure labels


def test_older_ice_versions(uspto_docs):
    app = _by_id(uspto_docs, "US-20050004437-A1")  # v4.0: IPC as a string, inventors only as applicants
    assert app.doc_format == "uspto-ice-application v4.0"
    assert [(c.symbol, c.version) for c in app.ipc] == [("A61B5/00", "7")]
    assert [c.symbol for c in app.other_classes] == ["600/300", "128/905", "345/952"]
    assert [p.name for p in app.inventors] == ["Heiner Kaufmann", "Thomas Vering"]
    assert [(p.country, p.number) for p in app.priorities] == [("CH", "1974/01")]
    assert app.application_number == "US10830857" and app.application_date == date(2004, 4, 23)

    sir = _by_id(uspto_docs, "US-H0002140-H1")
    assert [c.symbol for c in sir.other_classes] == [
        "210/610", "210/220", "210/620", "261/112.1", "261/124", "261/DIG70"]

    reissue = _by_id(uspto_docs, "US-RE049257-E1")
    assert (reissue.pn.number, reissue.pn.kind) == ("RE049257", "E1") and reissue.claims == []
    plant = _by_id(uspto_docs, "US-PP018398-P2")
    assert plant.doc_format == "uspto-ice-grant v4.2" and plant.claims[0].independent


def test_cancelled_claims_are_dropped(uspto_docs):
    doc = _by_id(uspto_docs, "US-20150075015-A2")  # claims 1-18 "(canceled)" in the source
    assert doc.claims[0].num == 19 and doc.claims[0].independent
    assert not any("canceled" in c.text.lower() for c in doc.claims)


def test_sequence_listing_in_weekly_file_is_skipped(shared_patents, patent_index):
    rows = [r for r in patent_index if r["format"] == "USPTO sequence-cwu"]
    assert rows
    for row in rows:
        parts = _split((shared_patents / row["file"]).read_bytes())
        with pytest.raises(Reject) as exc:
            parse_raw(RawDocument(parts[int(row["index"]) - 1], row["file"], int(row["index"])))
        assert exc.value.skip


def test_document_without_number_is_rejected(uspto_docs):
    row, raw, _ = next(d for d in uspto_docs if d[0]["doc_id"] == "US-11646472-B2")
    broken = re.sub(rb"<doc-number>11646472</doc-number>", b"", raw.data, count=1)
    with pytest.raises(Reject, match="doc-number"):
        parse_raw(RawDocument(broken, row["file"], 1))


@pytest.mark.parametrize("text, symbol", [
    ("705 26", "705/26"), ("707  7", "707/7"), ("2611121", "261/112.1"), ("261DIG  70", "261/DIG70"),
    ("D 1101", "D1/101"), ("D11108", "D11/108"), ("123143 B", "123/143B"), ("257E21006", "257/E21.006"),
    ("600300000", "600/300"), ("34099519", "340/995.19"), (" 15328", "15/328"),
])
def test_uspc_spellings(text, symbol):
    assert common.uspc(text).symbol == symbol


@pytest.mark.parametrize("text, symbol, version", [
    ("A61B005/00", "A61B5/00", None), ("7A61K 9/20", "A61K9/20", "7"), ("A47L  514", "A47L5/14", None),
])
def test_ipc_strings(text, symbol, version):
    c = common.ipc_text(text)
    assert (c.symbol, c.version) == (symbol, version)


def test_claim_reference_ranges():
    assert common.referenced_claims(["CLM-00001-00003", "CLM-00002", "CLM-00007"]) == [1, 2, 3, 7]
