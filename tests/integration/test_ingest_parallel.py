"""Parse workers (harvest.parallel) give exactly what parsing in process gives: the same index (ids in the same
order, stored documents, search results), the same rejects at the same places, the same harvest state; an
interrupted parallel run resumes; a crashed worker loses no document."""

from __future__ import annotations

import multiprocessing
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from harvest import parallel
from harvest.files import iter_raw_documents
from harvest.ingest import IngestReport, ingest_path
from harvest.parallel import Parser, parse_outcome, parse_workers, workers_for
from harvest.raw import RawDocument
from harvest.state import HarvestState
from index.base import SearchRequest, as_document
from index.embedded import EmbeddedIndex
from index.embedded.rows import PreparedDocument, prepare_document
from index.model import PatentDocument
from index.query.parser import parse_query
from tests.integration.test_ingest import WEEKLY, RecordingIndex

QUERIES = ("ti:(semiconductor OR battery)", "claim* AND device", 'pa:"Samsung"', "ipc:H01L*", "pd:[2013-01-01 TO 2013-12-31]")


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of 4 documents, so a small file runs through many tasks and a full in-flight window."""
    monkeypatch.setattr(parallel, "CHUNK_DOCUMENTS", 4)


@pytest.fixture
def feed(shared_patents: Path, tmp_path: Path) -> Path:
    """A folder shaped like a harvest: a weekly grant file (sequence listings included) with a malformed document
    cut in half at position 6, OPS parts of one publication (merged), an OPS search result (references only) and a
    file that is not patent data."""
    raws = [r.data for r in iter_raw_documents(shared_patents / WEEKLY) if isinstance(r, RawDocument)]
    broken = raws[3][: len(raws[3]) // 2]
    folder = tmp_path / "feed"
    folder.mkdir()
    (folder / "a_weekly.xml").write_bytes(b"".join([*raws[:5], broken, *raws[5:]]))
    ops = shared_patents / "ep" / "ops"
    for prefix, name in (("b1", "claims"), ("b2", "biblio"), ("b3", "description")):
        shutil.copy(ops / f"{name}_WO2018148832A1.xml", folder / f"{prefix}_{name}.xml")
    shutil.copy(ops / "search_result.xml", folder / "c_search_result.xml")
    (folder / "d_notes.pdf").write_bytes(b"%PDF-1.4")
    return folder


def snapshot(index: EmbeddedIndex, state: HarvestState, report: IngestReport) -> dict[str, Any]:
    """Everything a harvest leaves behind, with the fetch time (a clock reading) left out."""
    docs: list[tuple[int, PatentDocument]] = list(index.documents_since(0))
    for _, doc in docs:
        assert doc.provenance is not None and doc.provenance.fetched_at
        doc.provenance.fetched_at = ""
    searches = {}
    for q in QUERIES:
        result = index.search(SearchRequest(query=parse_query(q), limit=50, facets=["ipc", "applicant"]))
        searches[q] = (result.total, [(h.id, round(h.score, 9)) for h in result.hits], result.facets)
    files = [{k: v for k, v in f.items() if k not in ("started_at", "done_at")} for f in state.files()]
    counts = {k: v for k, v in vars(report).items() if k != "rejects"}
    return {"seq": [(s, d.id) for s, d in docs], "docs": [d for _, d in docs], "search": searches,
            "rejects": state.rejects(), "report_rejects": report.rejects, "counts": counts, "files": files,
            "references": state.pending_references(), "stored": sorted(i for ids in state.stored_ids() for i in ids)}


def harvest(folder: Path, tmp_path: Path, name: str, workers: int, index_cls: type[EmbeddedIndex] = EmbeddedIndex,
            **kw: Any) -> dict[str, Any]:
    with index_cls(tmp_path / f"{name}.db") as index, HarvestState(tmp_path / f"{name}-state.db") as state:
        report = ingest_path(folder, index, state, key="feed", batch_size=5, workers=workers, **kw)
        return snapshot(index, state, report)


def test_parse_workers_give_the_index_and_rejects_of_parsing_in_process(
    feed: Path, tmp_path: Path, small_chunks: None, caplog: pytest.LogCaptureFixture
) -> None:
    plain = harvest(feed, tmp_path, "plain", workers=0)
    assert plain["counts"]["indexed"] == 25 + 3 and plain["counts"]["skipped"] == 2 + 1 + 1
    [bad] = plain["report_rejects"]
    assert (bad.file, bad.position) == ("feed/a_weekly.xml", 6) and "truncated" in bad.reason and not bad.skip
    assert plain["references"] and all(total for total, _, _ in plain["search"].values())
    merged = [d for d in plain["docs"] if d.id == "WO-2018148832-A1"]
    assert merged and merged[0].claims and merged[0].description and not merged[0].partial
    parallel_run = harvest(feed, tmp_path, "parallel", workers=2)
    assert "parse worker" not in caplog.text  # parsed by the workers, not by the fallback
    for key in plain:
        assert parallel_run[key] == plain[key], key


def test_backend_without_prepared_writes_gets_parsed_documents(
    shared_patents: Path, tmp_path: Path, small_chunks: None
) -> None:
    """An index that cannot take prepared rows (Elasticsearch, a wrapper) is handed documents, as in process."""
    seen = {}
    for workers in (0, 2):
        index = RecordingIndex(EmbeddedIndex(tmp_path / f"wrapped-{workers}.db"))
        report = ingest_path(shared_patents / WEEKLY, index, batch_size=5, workers=workers)
        assert (report.indexed, report.skipped, report.rejects) == (25, 2, [])
        seen[workers] = [d.id for _, d in index.inner.documents_since(0)]
    assert seen[0] == seen[2]


def test_interrupted_parallel_run_resumes(feed: Path, tmp_path: Path, small_chunks: None) -> None:
    plain = harvest(feed, tmp_path, "plain", workers=0)
    weekly = feed / "a_weekly.xml"
    stop_at = weekly.stat().st_size // 2

    def interrupt(done: int) -> None:
        if done > stop_at:
            raise KeyboardInterrupt

    with EmbeddedIndex(tmp_path / "resumed.db") as index, HarvestState(tmp_path / "resumed-state.db") as state:
        with pytest.raises(KeyboardInterrupt):
            ingest_path(feed, index, state, key="feed", batch_size=5, workers=2, progress=interrupt)
        stored = index.count()
        assert 0 < stored < 25 and 0 < state.resume_position("feed/a_weekly.xml") < 29
        report = ingest_path(feed, index, state, key="feed", batch_size=5, workers=2)
        assert report.resumed >= stored and report.indexed == plain["counts"]["indexed"] - stored
        again = snapshot(index, state, report)
    for key in ("seq", "docs", "search", "rejects", "files", "references", "stored"):
        assert again[key] == plain[key], key


def crash_in_worker(doc: PatentDocument) -> PreparedDocument:
    """A preparer whose worker process dies; in the main process it prepares as usual."""
    if multiprocessing.parent_process() is not None:
        os._exit(3)
    return prepare_document(doc)


class CrashingWorkersIndex(EmbeddedIndex):
    def preparer(self):  # noqa: ANN201 - the test's stand-in for a crashing parse
        return crash_in_worker


def test_a_crashed_worker_loses_no_document(
    feed: Path, tmp_path: Path, small_chunks: None, caplog: pytest.LogCaptureFixture
) -> None:
    plain = harvest(feed, tmp_path, "plain", workers=0)
    crashed = harvest(feed, tmp_path, "crashed", workers=2, index_cls=CrashingWorkersIndex)
    assert "parse workers stopped" in caplog.text and "parsed in process" in caplog.text
    for key in plain:
        assert crashed[key] == plain[key], key


def test_parser_outcomes_are_in_order_with_every_refusal(feed: Path) -> None:
    items = list(iter_raw_documents(feed))
    inline = [(i, o) for i, o in Parser(0).outcomes(items, lambda _: True, 0)]
    with Parser(2, prepare_document, chunk=3) as pool:
        workers = list(pool.outcomes(items, lambda i: i.position != 2, 0))
    assert [i for i, _ in workers] == items
    for (item, mine), (_, theirs) in zip(inline, workers, strict=True):
        if item.position == 2 or not isinstance(item, RawDocument):
            assert theirs is None
            continue
        assert mine is not None and theirs is not None
        assert (mine.reason, mine.skip, mine.references) == (theirs.reason, theirs.skip, theirs.references)
        assert all(isinstance(d, PreparedDocument) for d in theirs.docs if not d.partial)
        ours = [as_document(d) for d in theirs.docs]
        for a, b in zip(mine.docs, ours, strict=True):
            assert isinstance(a, PatentDocument) and a.provenance and b.provenance
            b.provenance.fetched_at = a.provenance.fetched_at
            assert a == b
    assert parse_outcome(RawDocument(b"<?xml version='1.0'?><x>", "f", 1)).reason


def test_workers_setting() -> None:
    assert [parse_workers(v) for v in ("auto", None, " AUTO ", 0, "3")] == [None, None, None, 0, 3]
    for bad in ("-1", "many", -2):
        with pytest.raises(ValueError):
            parse_workers(bad)
    big, small = 64 << 20, 1 << 20
    assert workers_for(None, big, 2) == 2 and workers_for(None, big, 16) == parallel.AUTO_MAX_WORKERS
    assert workers_for(None, small, 8) == 0 and workers_for(None, big, 1) == 0
    assert [workers_for(n, small, 1) for n in (0, 1, 2, 3)] == [0, 0, 2, 3]


def test_workers_in_the_configuration(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from patentsift.config import ConfigError, load_config

    config = tmp_path / "patentsift.toml"
    config.write_text('[harvest]\nparse_workers = 3\n', encoding="utf-8")
    monkeypatch.delenv("PATENTSIFT_HARVEST_WORKERS", raising=False)
    assert load_config(config).harvest.parse_workers == 3
    monkeypatch.setenv("PATENTSIFT_HARVEST_WORKERS", "0")
    assert load_config(config).harvest.parse_workers == 0
    monkeypatch.setenv("PATENTSIFT_HARVEST_WORKERS", "Auto")
    assert load_config(config).harvest.parse_workers == "auto"
    monkeypatch.setenv("PATENTSIFT_HARVEST_WORKERS", "two")
    with pytest.raises(ConfigError, match="parse_workers"):
        load_config(config)
