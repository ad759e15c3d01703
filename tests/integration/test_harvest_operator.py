"""Issue 12, operator-facing: rejects say plainly what is wrong (a cut file says so, no parser noise), once."""

from __future__ import annotations

from pathlib import Path

from harvest.ingest import ingest_path
from harvest.state import HarvestState
from index.embedded import EmbeddedIndex

WEEKLY = "uspto-grant/weekly/ipg230110.first3.xml"  # three grants


def test_a_file_cut_at_both_ends_says_so(shared_patents: Path, tmp_path: Path) -> None:
    data = (shared_patents / WEEKLY).read_bytes()
    second = data.index(b"<?xml", 10)
    third = data.index(b"<?xml", second + 10)
    cut = tmp_path / "cut.xml"
    cut.write_bytes(data[second // 2: third + (len(data) - third) // 2])
    index = EmbeddedIndex(tmp_path / "index.db")
    with HarvestState(tmp_path / "state.db") as state:
        report = ingest_path(cut, index, state, key="cut.xml")
        assert [(r.position, r.reason) for r in report.rejects] == [
            (1, "truncated: the file starts inside a document"),
            (3, "truncated: the file ends inside a document"),
        ]
        assert state.rejects() == report.rejects
    assert report.indexed == 1 and index.count() == 1


def test_malformed_reason_has_no_parser_noise_and_each_reject_is_listed_once(
    shared_patents: Path, tmp_path: Path
) -> None:
    data = (shared_patents / "uspto-grant/single/US11646472B2-20230509.xml").read_bytes()
    bad = tmp_path / "bad.xml"
    bad.write_bytes(data.replace(b"</invention-title>", b"</invention-titel>", 1))
    report = ingest_path(bad, EmbeddedIndex(tmp_path / "index.db"))
    [rec] = report.rejects
    assert rec.reason.startswith("malformed XML: Opening and ending tag mismatch: invention-title line")
    assert "<string>" not in rec.reason
    assert rec.reason not in report.summary()  # the caller lists rejects; the summary line does not repeat them
    assert report.summary(max_rejects=5).count(rec.reason) == 1
