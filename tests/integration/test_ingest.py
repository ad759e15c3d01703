"""Offline ingestion of the real patent files: counts, zips, resume after a crash, reruns, partial documents."""

from __future__ import annotations

import collections
import os
import shutil
import zipfile
from collections.abc import Iterable
from pathlib import Path

import pytest

from harvest.ingest import IngestReport, ingest_path
from harvest.state import HarvestState
from index.base import UpsertReport
from index.embedded import EmbeddedIndex
from index.model import PatentDocument

WEEKLY_FILES = [
    "uspto-grant/weekly/ipg060103.small.xml", "uspto-grant/weekly/ipg080101.small.xml",
    "uspto-grant/weekly/ipg130416.xml", "uspto-grant/weekly/ipg230110.first3.xml",
    "uspto-grant/weekly/ipgb20221025.xml", "uspto-grant/weekly/pg020507.ten.xml",
    "uspto-application/weekly/ipa130117.two.xml", "uspto-application/weekly/pa040101.publications_sample_2004.xml",
]
WEEKLY = "uspto-grant/weekly/ipg130416.xml"  # 25 grants + 2 sequence listings


def new_index(tmp_path: Path, name: str = "index") -> EmbeddedIndex:
    return EmbeddedIndex(tmp_path / f"{name}.db")


class RecordingIndex:
    """Wraps an index, counts what is upserted, and can crash (before storing) once `fail_after` is exceeded,
    or refuse given ids the way a backend reports per-document failures."""

    def __init__(self, inner, fail_after: int | None = None, refuse: Iterable[str] = ()) -> None:  # noqa: ANN001
        self.inner, self.fail_after, self.refuse = inner, fail_after, set(refuse)
        self.upserted: collections.Counter[str] = collections.Counter()
        self.calls = 0

    def upsert(self, documents: Iterable[PatentDocument]) -> UpsertReport:
        docs = list(documents)
        self.calls += 1
        if self.fail_after is not None and sum(self.upserted.values()) + len(docs) > self.fail_after:
            raise RuntimeError("index went away")
        report = self.inner.upsert([d for d in docs if d.id not in self.refuse])
        report.failed.extend((d.id, "mapping conflict") for d in docs if d.id in self.refuse)
        self.upserted.update(report.indexed)
        return report

    def get(self, doc_id: str) -> PatentDocument | None:
        return self.inner.get(doc_id)

    def count(self) -> int:
        return self.inner.count()


def rows_by_file(patent_index: list[dict[str, str]]) -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = collections.defaultdict(list)
    for row in patent_index:
        out[row["file"]].append(row)
    return out


def test_every_file_accounts_for_each_of_its_documents(
    shared_patents: Path, patent_index: list[dict[str, str]], tmp_path: Path
) -> None:
    index = new_index(tmp_path)
    for rel, rows in rows_by_file(patent_index).items():
        report = ingest_path(shared_patents / rel, index)
        assert report.files == 1
        handled = report.documents + report.skipped + len(report.rejects)
        assert handled == len(rows), (rel, report.summary())
        for rec in report.rejects:
            assert rec.file == str(shared_patents / rel) and rec.position >= 1 and rec.reason


@pytest.mark.parametrize("rel", WEEKLY_FILES)
def test_weekly_file_is_indexed_document_by_document(
    rel: str, shared_patents: Path, patent_index: list[dict[str, str]], tmp_path: Path
) -> None:
    rows = rows_by_file(patent_index)[rel]
    patents = [r for r in rows if not r["doc_id"].startswith("SEQ-")]
    index = RecordingIndex(new_index(tmp_path))
    with HarvestState(tmp_path / "state.db") as state:
        report = ingest_path(shared_patents / rel, index, state, source="uspto-bulk", batch_size=7)
        assert report.rejects == [], report.summary()
        assert report.skipped == len(rows) - len(patents)  # sequence listings are skipped, not indexed
        assert report.documents == len(patents)
        assert set(index.upserted) == {r["doc_id"] for r in patents}
        assert index.count() == len({r["doc_id"] for r in patents})
        skips = state.rejects()
        assert len(skips) == report.skipped and all(r.skip and "sequence listing" in r.reason for r in skips)
        [done] = state.files()
        assert done["status"] == "done" and done["documents"] == len(patents)
    by_position = {int(r["index"]): r["doc_id"] for r in patents}
    for position, doc_id in by_position.items():
        prov = index.get(doc_id).provenance
        if doc_id in [r["doc_id"] for r in patents if int(r["index"]) != position]:
            continue  # the same grant twice in one file (ipgb20221025): the later copy wins
        assert prov.file == str((shared_patents / rel).resolve()) and prov.position == position
        assert prov.source == "uspto-bulk" and prov.content_hash


def test_zip_round_trip(shared_patents: Path, tmp_path: Path) -> None:
    plain_index = new_index(tmp_path, "plain")
    plain = ingest_path(shared_patents / WEEKLY, plain_index)
    archive = tmp_path / "ipg130416.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(shared_patents / WEEKLY, "ipg130416.xml")
    index = new_index(tmp_path)
    report = ingest_path(archive, index, key="https://bulkdata.example/ipg130416.zip")
    assert (report.documents, report.indexed, report.skipped, report.rejects) == (25, 25, 2, [])
    assert report.bytes == plain.bytes == (shared_patents / WEEKLY).stat().st_size
    assert index.count() == plain_index.count() == 25
    for doc_id in [d.id for _, d in plain_index.documents_since(0)]:
        doc, plain_doc = index.get(doc_id), plain_index.get(doc_id)
        assert doc.provenance.file == "https://bulkdata.example/ipg130416.zip!ipg130416.xml"
        assert (doc.provenance.position, doc.provenance.offset) == (plain_doc.provenance.position,
                                                                    plain_doc.provenance.offset)
        assert doc.provenance.content_hash == plain_doc.provenance.content_hash and doc.title() == plain_doc.title()


def test_interrupted_run_resumes_after_the_last_stored_batch(shared_patents: Path, tmp_path: Path) -> None:
    inner = new_index(tmp_path)
    key = str((shared_patents / WEEKLY).resolve())
    with HarvestState(tmp_path / "state.db") as state:
        crashing = RecordingIndex(inner, fail_after=12)
        with pytest.raises(RuntimeError, match="index went away"):
            ingest_path(shared_patents / WEEKLY, crashing, state, batch_size=5)
        stored = sum(crashing.upserted.values())
        assert stored == 10 and inner.count() == 10
        assert 10 <= state.resume_position(key) < 27 and not state.is_done(key)
        healthy = RecordingIndex(inner)
        report = ingest_path(shared_patents / WEEKLY, healthy, state, batch_size=5)
        assert report.resumed >= 10 and report.indexed == 25 - stored
        both = crashing.upserted + healthy.upserted
        assert len(both) == 25 and set(both.values()) == {1}  # every grant indexed exactly once
        assert inner.count() == 25 and state.is_done(key)
        assert len(state.rejects(key)) == 2  # the sequence-listing skips are on record once


def test_rerun_of_a_done_file_does_nothing_until_it_changes(shared_patents: Path, tmp_path: Path) -> None:
    path = tmp_path / "ipg230110.xml"
    shutil.copy(shared_patents / "uspto-grant/weekly/ipg230110.first3.xml", path)
    index = RecordingIndex(new_index(tmp_path))
    with HarvestState(tmp_path / "state.db") as state:
        first = ingest_path(path, index, state)
        assert (first.files, first.indexed) == (1, 3)
        calls = index.calls
        again = ingest_path(path, index, state)
        assert (again.files, again.unchanged, again.documents, again.bytes) == (0, 1, 0, 0)
        assert index.calls == calls
        os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))  # a new version
        changed = ingest_path(path, index, state)
        assert (changed.files, changed.indexed) == (1, 3)
        assert ingest_path(path, index, state, fingerprint="etag-1").files == 1
        assert ingest_path(path, index, state, fingerprint="etag-1").unchanged == 1
    assert set(index.upserted.values()) == {3}


def test_partial_documents_are_merged_into_the_stored_record(shared_patents: Path, tmp_path: Path) -> None:
    index = new_index(tmp_path)
    ops = shared_patents / "ep" / "ops"
    for name in ("biblio_WO2018148832A1.xml", "claims_WO2018148832A1.xml", "description_WO2018148832A1.xml"):
        report = ingest_path(ops / name, index, source="epo-ops")
        assert report.indexed == 1, report.summary()
    doc = index.get("WO-2018148832-A1")
    assert doc.titles and doc.claims and doc.description and doc.applicants
    assert not doc.partial
    assert index.count() == 1


def test_full_document_after_its_parts_keeps_them(shared_patents: Path, tmp_path: Path) -> None:
    """Claims fetched before the bibliographic record: the full record is merged into the stored partial one,
    within one run (a directory) and across runs (known from the harvest state)."""
    ops = shared_patents / "ep" / "ops"
    folder = tmp_path / "ops"
    folder.mkdir()
    for prefix, name in (("1", "claims"), ("2", "biblio"), ("3", "description")):
        shutil.copy(ops / f"{name}_WO2018148832A1.xml", folder / f"{prefix}_{name}.xml")
    index = new_index(tmp_path, "one-run")
    ingest_path(folder, index)
    doc = index.get("WO-2018148832-A1")
    assert doc.titles and doc.claims and doc.description and not doc.partial
    index = new_index(tmp_path)
    with HarvestState(tmp_path / "state.db") as state:
        for path in sorted(folder.iterdir()):
            ingest_path(path, index, state)
    doc = index.get("WO-2018148832-A1")
    assert doc.titles and doc.claims and doc.description and not doc.partial


def test_index_refusals_are_recorded_with_their_place(shared_patents: Path, tmp_path: Path) -> None:
    rel = "uspto-grant/weekly/ipg230110.first3.xml"
    probe = new_index(tmp_path, "probe")
    ingest_path(shared_patents / rel, probe)
    refused = sorted(d.id for _, d in probe.documents_since(0))[1]
    index = RecordingIndex(new_index(tmp_path), refuse=[refused])
    with HarvestState(tmp_path / "state.db") as state:
        report = ingest_path(shared_patents / rel, index, state)
        [rec] = report.rejects
        assert refused in rec.reason and "mapping conflict" in rec.reason
        assert rec.position == probe.get(refused).provenance.position and rec.offset > 0
        assert state.rejects() == [rec]
    assert report.indexed == 2 and index.count() == 2


def test_progress_and_summary(shared_patents: Path, tmp_path: Path) -> None:
    seen: list[int] = []
    report = ingest_path(shared_patents / "uspto-grant" / "weekly", new_index(tmp_path), progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == report.bytes
    assert report.bytes == sum(p.stat().st_size for p in (shared_patents / "uspto-grant" / "weekly").iterdir())
    text = report.summary()
    assert f"{report.files} file(s) read" in text and f"{report.skipped} skipped" in text
    total = IngestReport()
    total.merge(report)
    total.merge(report)
    assert total.indexed == 2 * report.indexed
