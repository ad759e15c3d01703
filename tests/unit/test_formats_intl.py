"""Non-US format parsers (EPO publication server, OPS/DOCDB exchange, CNIPA, JPO) against the real documents."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harvest.formats import Reference, ReferencesOnly, parse_raw
from harvest.formats._st36_common import claim_refs, parse_class_text
from harvest.raw import RawDocument, Reject
from index.model import PatentDocument, PublicationNumber, merge_documents, parse_date

INTL_PREFIXES = ("ep/", "cn/", "jp/")


def _parse(shared_patents: Path, file: str, data: bytes | None = None) -> list[PatentDocument]:
    raw = RawDocument(data if data is not None else (shared_patents / file).read_bytes(), file, 1)
    return parse_raw(raw, fetched_at="2026-01-01T00:00:00+00:00")


@pytest.fixture(scope="module")
def intl_rows(patent_index: list[dict[str, str]]) -> list[dict[str, str]]:
    rows = [r for r in patent_index if r["file"].startswith(INTL_PREFIXES)]
    assert len(rows) >= 25, "expected the EP/CN/JP documents listed in INDEX.csv"
    return rows


@pytest.fixture(scope="module")
def parsed(shared_patents: Path, intl_rows: list[dict[str, str]]) -> dict[str, list[PatentDocument]]:
    """Every EP/CN/JP file parsed once."""
    files = {r["file"] for r in intl_rows}
    return {f: _parse(shared_patents, f) for f in sorted(files)}


def _by_id(parsed: dict[str, list[PatentDocument]], file: str) -> PatentDocument:
    docs = parsed[file]
    assert len(docs) == 1
    return docs[0]


def _row_langs(row: dict[str, str]) -> list[str]:
    return [code.strip().lower() for code in row["lang"].split(",") if code.strip()]


def test_every_indexed_document_matches_index(intl_rows, parsed) -> None:
    problems: list[str] = []
    for row in intl_rows:
        docs = parsed[row["file"]]
        doc = docs[int(row["index"]) - 1]
        where = f"{row['file']}#{row['index']} ({row['doc_id']})"
        if doc.id != row["doc_id"]:
            problems.append(f"{where}: id {doc.id}")
        if row["pub_date"] and doc.publication_date != parse_date(row["pub_date"]):
            problems.append(f"{where}: publication date {doc.publication_date}")
        langs = _row_langs(row)
        if row["title"]:
            candidates = {doc.titles.get(code) for code in [*langs, "en"]}
            if row["title"] not in candidates:
                problems.append(f"{where}: title {doc.titles!r}")
        expected_abstract = int(row["abstract_chars"] or 0)
        got_abstract = len(doc.abstract(langs[0] if langs else "en"))
        if abs(got_abstract - expected_abstract) > max(5, 0.1 * expected_abstract):
            problems.append(f"{where}: abstract {got_abstract} chars, INDEX says {expected_abstract}")
        n_class = int(row["n_class"] or 0)
        got_class = len(doc.ipc) + len(doc.cpc)
        if (n_class == 0 and got_class) or got_class < 0.75 * n_class or (n_class and not doc.ipc):
            problems.append(f"{where}: {len(doc.ipc)} IPC + {len(doc.cpc)} CPC, INDEX says {n_class}")
        n_cit = int(row["n_citations"] or 0)
        if len(doc.citations) < 0.75 * n_cit:
            problems.append(f"{where}: {len(doc.citations)} citations, INDEX says {n_cit}")
        if PatentDocument.from_dict(doc.to_dict()) != doc:
            problems.append(f"{where}: does not survive to_dict/from_dict")
        if not doc.doc_format or doc.provenance is None or doc.provenance.file != row["file"]:
            problems.append(f"{where}: doc_format/provenance missing")
        if not doc.partial and not (doc.publication_date and doc.application_number):
            problems.append(f"{where}: publication date / application number missing")
        for c in [*doc.ipc, *doc.cpc]:
            if not (c.section and c.cls and c.subclass and c.group and c.subgroup):
                problems.append(f"{where}: classification {c.symbol!r} not parsed into parts")
    assert not problems, "\n".join(problems)


def test_claims_and_texts_present_where_the_source_has_them(intl_rows, parsed, shared_patents) -> None:
    for row in intl_rows:
        doc = parsed[row["file"]][int(row["index"]) - 1]
        data = (shared_patents / row["file"]).read_bytes()
        has_claims = re.search(rb"<(\w+:)?(claims|Claims)[\s>]", data) is not None
        assert bool(doc.claims) == has_claims, row["file"]
        if doc.claims:
            assert doc.claims[0].independent and doc.claims[0].num == 1, row["file"]
            assert [c.num for c in doc.claims] == list(range(1, len(doc.claims) + 1)), row["file"]
            assert all(d < c.num for c in doc.claims for d in c.depends_on), row["file"]
            assert any(not c.independent for c in doc.claims), row["file"]
            assert doc.claims_lang in ("en", "de", "fr", "zh", "ja"), row["file"]
        has_description = re.search(rb"<(\w+:)?(description|Description)[\s>]", data) is not None
        assert bool(doc.description) == has_description, row["file"]


def test_cnipa_new_format_chinese_full_text(parsed) -> None:
    doc = _by_id(parsed, "cn/CN113781974A-20211210.xml")
    assert doc.lang == "zh" and doc.doc_format.startswith("cnipa PatentDocumentAndRelated")
    assert doc.titles == {"zh": "显示设备"}
    assert "显示设备" in doc.abstracts["zh"] and " " not in doc.abstracts["zh"][:40]
    assert doc.claims[0].text.startswith("显示设备") and not doc.claims[0].text.startswith("1.")
    assert "如权利要求1所述" in doc.claims[1].text and doc.claims[1].depends_on == [1]
    assert doc.claims_lang == "zh" and len(doc.claims) == 17
    assert {c.subclass_symbol for c in doc.ipc} == {"G09G"} and doc.ipc[0].first
    assert doc.applicants[0].name == "三星显示有限公司" and doc.applicants[0].country == "KR"
    assert [p.country for p in doc.priorities] == ["KR"] and doc.priorities[0].date is not None
    assert doc.application_number == "CN202111286633"
    assert "技术领域" in doc.description and len(doc.inventors) == 3


def test_cnipa_old_format_with_bom_and_claim_numbers(parsed) -> None:
    doc = _by_id(parsed, "cn/CN104223352A-20141224.xml")
    assert doc.doc_format == "cnipa cn-patent-document" and doc.lang == "zh"
    assert doc.claims[1].depends_on == [1] and doc.claims[2].depends_on == [1]
    assert "水按1:5" in doc.claims[0].text  # line breaks inside Chinese text leave no spaces
    compact = _by_id(parsed, "cn/CN104245682A-20141224.xml")
    assert compact.claims[0].text.startswith("2,4-二氨基")  # "1.2,4-..." is claim 1 about a 2,4-compound
    assert compact.claims[3].depends_on == [1, 2, 3]  # 如权利要求1～3中的任一项


def test_ep_b1_titles_proprietors_citations(parsed) -> None:
    doc = _by_id(parsed, "ep/publication-server/grant_v1-1-B1.xml")
    assert doc.id == "EP-1019261-B1" and doc.doc_format == "ep-pubserver ep-patent-document-v1-1"
    assert set(doc.titles) == {"de", "en", "fr"}
    assert doc.titles["de"].startswith("INTELLIGENTES BREMSSYSTEM")
    assert [(p.name, p.country, p.role) for p in doc.applicants] == [("CROWN EQUIPMENT CORPORATION", "US", "assignee")]
    assert doc.inventors[0].country == "US"
    patents = [c.number for c in doc.citations if c.kind == "patent"]
    assert "EP-0361708-A" in patents and "DE-3122720-C" in patents
    assert any(c.kind == "npl" and "PATENT ABSTRACTS OF JAPAN" in (c.text or "") for c in doc.citations)
    assert doc.claims_lang == "en" and doc.claims[1].depends_on == [1]
    assert doc.ipc[0].symbol == "B60L7/26" and doc.ipc[0].first
    assert doc.priorities[0].country == "US" and doc.application_number == "EP98948476"
    assert doc.abstracts == {}  # B documents carry no abstract


def test_ep_claims_in_publication_language(parsed) -> None:
    fr = _by_id(parsed, "ep/publication-server/grant_v1-5-B2-1.xml")
    assert fr.lang == "fr" and fr.claims_lang == "fr"
    assert fr.claims[1].depends_on == [1]  # "selon la revendication 1"
    de = _by_id(parsed, "ep/publication-server/application_v1-5-1-A1-3.xml")
    assert de.claims_lang == "de" and de.claims[2].depends_on == [1, 2]  # "nach Anspruch 1 oder 2"
    assert de.claims[3].depends_on == [1, 2, 3]  # "nach einem der vorhergehenden Ansprüche"
    assert {c.category for c in de.citations} == {"X"}  # European search report categories
    assert de.cpc[0].symbol == "H05K13/083" and de.cpc[0].first and de.cpc[0].version == "20180801"


def test_ep_bulletin_bibliographic_only(parsed) -> None:
    doc = _by_id(parsed, "ep/publication-server/application_v1-0-A1-1.xml")
    assert doc.doc_format == "ep-pubserver ep-bulletin-v1-0" and not doc.claims and not doc.description
    assert doc.ipc[0].symbol == "A01B45/00" and doc.ipc[0].version == "7"  # " 7A 01B  45/00" (edition 7)
    assert doc.priorities[0].country == "FR" and doc.priorities[0].number == "0303587"


def test_ops_search_result_is_skipped_with_its_references(shared_patents: Path) -> None:
    with pytest.raises(ReferencesOnly) as caught:
        _parse(shared_patents, "ep/ops/search_result.xml")
    exc = caught.value
    assert exc.skip and exc.reason == "OPS search result holds references, not documents"
    refs = exc.references
    assert len(refs) == 100 and len({r.id for r in refs}) == 100
    assert refs[0] == Reference("WO-2019040883-A1", "65436063")
    assert all(r.family_id and PublicationNumber.parse(r.id).docdb == r.id for r in refs)


def test_ops_claims_response_is_partial_and_merges(parsed) -> None:
    claims = _by_id(parsed, "ep/ops/claims_WO2018148832A1.xml")
    assert claims.partial and claims.id == "WO-2018148832-A1" and claims.claims_lang == "en"
    assert len(claims.claims) == 45 and claims.claims[0].text.startswith("A method for measuring")
    assert claims.claims[3].depends_on == [1, 2, 3]  # "any one of claims 1 - 3"
    assert claims.claims[23].depends_on == [21, 22, 23]  # "any one of claims 21 to 23"
    assert not claims.titles and not claims.description
    biblio = _by_id(parsed, "ep/ops/biblio_WO2018148832A1.xml")
    description = _by_id(parsed, "ep/ops/description_WO2018148832A1.xml")
    assert description.partial and description.description.startswith("METHODS FOR MEASURING")
    merged = merge_documents(merge_documents(biblio, claims), description)
    assert not merged.partial and merged.claims == claims.claims and merged.titles == biblio.titles
    assert merged.description == description.description and merged.family_id == "58486791"


def test_ops_and_docdb_biblio_details(parsed) -> None:
    cn = _by_id(parsed, "ep/ops/biblio_CN104968889A.xml")
    assert cn.family_id == "50474376" and cn.doc_format == "epo-ops exchange-document"
    assert [c.symbol for c in cn.ipc] == ["E21B47/0228", "E21B47/024"]
    assert cn.cpc[0].symbol == "E21B47/02216" and cn.cpc[0].group == "47"
    assert {c.category for c in cn.citations} <= {"X", "Y", "A"} and cn.citations[0].number == "US-5321893-A"
    assert cn.priorities[1].country == "US" and cn.priorities[1].date is not None
    wo = _by_id(parsed, "ep/docdb/WO-2022259205-A1.xml")
    assert wo.family_id == "82558028" and set(wo.titles) == {"en", "fr"} and set(wo.abstracts) == {"en", "fr"}
    assert [c.symbol for c in wo.ipc if c.first] == ["A61K9/00"]
    assert wo.cpc[0].symbol == "A61K9/1075" and wo.cpc[0].first and wo.cpc[0].value == "I"
    assert wo.citations[0].category == "XY" and wo.citations[0].kind == "npl"
    assert "CN-102908333-A" in {c.number for c in wo.citations}
    assert wo.applicants[0].country == "PT" and len(wo.inventors) == 8
    ap = _by_id(parsed, "ep/docdb/AP-1206-A.xml")
    assert ap.lang == "en" and ap.applicants[0].name == "BRISTOL MYERS SQUIBB CO"
    assert ap.priorities[0].country == "US" and len(ap.priorities) == 2


def test_ops_russian_document_without_title_language(parsed) -> None:
    ru = _by_id(parsed, "ep/ops/biblio_RU2015117646A.xml")
    assert ru.lang == "ru" and list(ru.titles) == ["ru"] and list(ru.abstracts) == ["ru"]
    assert ru.applicants[0].name.startswith("САЙЕНТИФИК")


def test_jpo_gazette(parsed) -> None:
    doc = _by_id(parsed, "jp/JP2021041306A.xml")
    assert doc.pn.kind == "A" and doc.lang == "ja" and doc.doc_format == "jpo jp-official-gazette 1.0"
    assert doc.claims[3].depends_on == [1, 2, 3]  # 請求項１〜３のいずれか一項
    assert doc.claims[5].depends_on == [4, 5]  # 請求項４または５
    assert doc.ipc[0].first and doc.ipc[0].symbol == "B01J20/22"
    assert {c.scheme for c in doc.other_classes} == {"FI", "FTERM"}
    assert doc.citations[0].number == "JP-6020757"
    assert doc.applicants[0].name == "凸版印刷株式会社" and doc.application_number == "JP2019162830"


def test_unusable_documents_are_rejected(shared_patents: Path) -> None:
    ep = (shared_patents / "ep/publication-server/application_v1-01-A1.xml").read_bytes()
    no_number = re.sub(rb' doc-number="\d+"', b"", ep)
    no_number = re.sub(rb"<B110>\d+</B110>", b"", no_number)
    with pytest.raises(Reject, match="publication number"):
        _parse(shared_patents, "x.xml", no_number)
    ops = (shared_patents / "ep/ops/search_result.xml").read_bytes()
    empty = re.sub(rb"<ops:search-result>.*</ops:search-result>", b"", ops, flags=re.S)
    with pytest.raises(Reject, match="holds no"):
        _parse(shared_patents, "y.xml", empty)


@pytest.mark.parametrize(
    ("text", "own", "expected"),
    [
        ("The method of any one of claims 21 to 25, wherein", 26, [21, 22, 23, 24, 25]),
        ("as claimed in claim I wherein", 3, [1]),
        ("Verfahren nach einem der Ansprüche 1 bis 3", 5, [1, 2, 3]),
        ("Adsorbants selon l'une des revendications 1 ou 2", 4, [1, 2]),
        ("根据权利要求1至4任一项所述的装置", 5, [1, 2, 3, 4]),
        ("請求項１又は２に記載の装置", 3, [1, 2]),
        ("A method comprising heating to 5 to 10 degrees", 2, []),
    ],
)
def test_claim_references(text: str, own: int, expected: list[int]) -> None:
    assert claim_refs(text, own) == expected


def test_classification_text_formats() -> None:
    docdb = parse_class_text("A61K   9/28        20060101AFI20051220RMEP")
    assert (docdb.symbol, docdb.version, docdb.value, docdb.first) == ("A61K9/28", "20060101", "I", True)
    ops = parse_class_text("E21B  47/  0228            A I                    ")
    assert (ops.symbol, ops.group, ops.subgroup, ops.value) == ("E21B47/0228", "47", "0228", "I")
    cn = parse_class_text("C12R    1/645   (2006.01)")
    assert (cn.symbol, cn.version) == ("C12R1/645", "20060101")
