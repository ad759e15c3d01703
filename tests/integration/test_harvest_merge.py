"""Issue 12 on the harvest path: reference-only OPS responses create no documents, and a partial document (an OPS
abstract-only response) only ever adds to the stored record, whatever the order of arrival."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from harvest.ingest import ingest_path
from harvest.state import HarvestState
from index.embedded import EmbeddedIndex
from index.model import PatentDocument, merge_documents

OPS = "ep/ops"
WO = "WO-2018148832-A1"


def _ops_files(shared_patents: Path, folder: Path) -> tuple[Path, Path]:
    """The real OPS biblio response and its abstract-only form (an `exchange-document` with just the abstract)."""
    folder.mkdir()
    biblio = folder / "biblio.xml"
    shutil.copy(shared_patents / OPS / "biblio_WO2018148832A1.xml", biblio)
    abstract = folder / "abstract.xml"
    abstract.write_bytes(re.sub(rb"<bibliographic-data>.*?</bibliographic-data>", b"", biblio.read_bytes(),
                                flags=re.S))
    return biblio, abstract


def test_search_result_creates_no_documents_and_keeps_its_references(shared_patents: Path, tmp_path: Path) -> None:
    index = EmbeddedIndex(tmp_path / "index.db")
    with HarvestState(tmp_path / "state.db") as state:
        report = ingest_path(shared_patents / OPS / "search_result.xml", index, state, source="epo-ops")
        assert (report.documents, report.indexed, report.skipped, report.rejects) == (0, 0, 1, [])
        assert report.references == 100 and "100 publication reference(s) kept" in report.summary()
        [skip] = state.rejects()
        assert skip.skip and skip.reason == "OPS search result holds references, not documents"
        pending = state.pending_references()
        assert len(pending) == 100 and pending[0] == ("WO-2019040883-A1", "65436063")
        [done] = state.files()
        assert done["status"] == "done" and done["rejects"] == 0
    assert index.count() == 0


def test_full_document_resolves_a_pending_reference(shared_patents: Path, tmp_path: Path) -> None:
    index = EmbeddedIndex(tmp_path / "index.db")
    with HarvestState(tmp_path / "state.db") as state:
        state.record_references("search", [(WO, "58486791"), ("US-1-A", None)])
        ingest_path(shared_patents / OPS / "claims_WO2018148832A1.xml", index, state)
        assert len(state.pending_references()) == 2  # a partial document does not resolve it
        ingest_path(shared_patents / OPS / "biblio_WO2018148832A1.xml", index, state)
        assert state.pending_references() == [("US-1-A", None)]


def _assert_complete(doc: PatentDocument, biblio: PatentDocument) -> None:
    assert not doc.partial
    assert doc.titles == biblio.titles and doc.abstracts == biblio.abstracts
    assert doc.ipc == biblio.ipc and doc.cpc == biblio.cpc
    assert doc.applicants == biblio.applicants and doc.inventors == biblio.inventors
    assert doc.publication_date == biblio.publication_date and doc.doc_format == biblio.doc_format
    assert doc.provenance is not None and doc.provenance.file.endswith("biblio.xml")


@pytest.mark.parametrize("order", [("biblio", "abstract"), ("abstract", "biblio")])
@pytest.mark.parametrize("with_state", [True, False])
def test_abstract_only_response_never_wipes_the_record(
    order: tuple[str, str], with_state: bool, shared_patents: Path, tmp_path: Path
) -> None:
    biblio_path, abstract_path = _ops_files(shared_patents, tmp_path / "ops")
    paths = {"biblio": biblio_path, "abstract": abstract_path}
    reference = EmbeddedIndex(tmp_path / "reference.db")
    ingest_path(biblio_path, reference)
    biblio = reference.get(WO)
    index = EmbeddedIndex(tmp_path / "index.db")
    state = HarvestState(tmp_path / "state.db") if with_state else None
    try:
        for name in order:  # two runs, one file each
            report = ingest_path(paths[name], index, state, source="epo-ops")
            assert report.indexed == 1 and not report.rejects, report.summary()
    finally:
        if state is not None:
            state.close()
    _assert_complete(index.get(WO), biblio)
    assert index.count() == 1


def test_abstract_only_response_in_one_run_with_the_record(shared_patents: Path, tmp_path: Path) -> None:
    biblio_path, abstract_path = _ops_files(shared_patents, tmp_path / "ops")
    reference = EmbeddedIndex(tmp_path / "reference.db")
    ingest_path(biblio_path, reference)
    for first in ("abstract", "biblio"):  # both files in one folder, read in name order
        folder = tmp_path / f"run-{first}"
        folder.mkdir()
        shutil.copy(abstract_path, folder / ("1-abstract.xml" if first == "abstract" else "2-abstract.xml"))
        shutil.copy(biblio_path, folder / ("2-biblio.xml" if first == "abstract" else "1-biblio.xml"))
        index = EmbeddedIndex(tmp_path / f"{first}.db")
        ingest_path(folder, index)
        doc = index.get(WO)
        assert not doc.partial and doc.titles == reference.get(WO).titles and doc.ipc and doc.applicants


def test_merge_is_additive_in_both_orders(shared_patents: Path, tmp_path: Path) -> None:
    """The pure merge both backends use (embedded upsert, Elasticsearch `_merge_partials`, the harvest batch)."""
    biblio_path, abstract_path = _ops_files(shared_patents, tmp_path / "ops")
    index = EmbeddedIndex(tmp_path / "index.db")
    ingest_path(biblio_path, index)
    ingest_path(abstract_path, index)
    full = index.get(WO)
    probe = EmbeddedIndex(tmp_path / "probe.db")
    ingest_path(abstract_path, probe)
    part = probe.get(WO)
    assert part.partial and not part.titles
    for merged in (merge_documents(full, part), merge_documents(part, full)):
        _assert_complete(merged, full)
    full.lang, part.lang = "en", "fr"
    relabelled = merge_documents(full, part)  # a partial update never relabels the record
    assert (relabelled.lang, relabelled.doc_format) == ("en", full.doc_format) != (part.lang, part.doc_format)


@pytest.mark.parametrize("first", ["biblio", "part"])
def test_embedded_upsert_merges_a_partial_in_either_order(first: str, shared_patents: Path, tmp_path: Path) -> None:
    """On the backend itself: in one upsert batch either order; in two upserts, the partial after the record."""
    biblio_path, abstract_path = _ops_files(shared_patents, tmp_path / "ops")
    probes = {name: EmbeddedIndex(tmp_path / f"{name}.db") for name in ("full", "abstract", "claims")}
    ingest_path(biblio_path, probes["full"])
    ingest_path(abstract_path, probes["abstract"])
    ingest_path(shared_patents / OPS / "claims_WO2018148832A1.xml", probes["claims"])
    full, abstract, claims = (probes[name].get(WO) for name in ("full", "abstract", "claims"))
    assert abstract.partial and claims.partial and claims.claims
    for part in (abstract, claims):
        batch = [full, part] if first == "biblio" else [part, full]
        index = EmbeddedIndex(tmp_path / f"one-{part.doc_format}.db")
        index.upsert(batch)
        _assert_complete(index.get(WO), full)
        assert index.get(WO).claims == part.claims or part is abstract
        index = EmbeddedIndex(tmp_path / f"two-{part.doc_format}.db")
        index.upsert([full])
        index.upsert([part])
        _assert_complete(index.get(WO), full)
        assert index.get(WO).claims == part.claims or part is abstract
