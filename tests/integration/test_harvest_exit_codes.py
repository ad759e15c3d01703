"""Issue 12, operator-facing: `patentsift harvest` exit codes a scheduler can tell apart (README "Using it"), each
reject printed once, output to a pipe not wrapped, and one vocabulary ("skipped" for non-patent documents) in the
harvest and stats output. The CLI runs as a subprocess, as cron runs it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SEQUENCES = "uspto-grant/weekly/ipg060103.small.xml"  # grants and two sequence listings (skipped, not rejected)
SINGLE = "uspto-grant/single/US11646472B2-20230509.xml"


def run(data_dir: Path, *args: str, columns: int = 40) -> subprocess.CompletedProcess:
    """The CLI as cron runs it: stdout/stderr are pipes; a narrow COLUMNS shows whether anything is wrapped."""
    env = {**os.environ, "COLUMNS": str(columns)}
    env.pop("PATENTSIFT_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "patentsift", "--data-dir", str(data_dir), *args],
                          capture_output=True, text=True, timeout=300, env=env, cwd=data_dir)


@pytest.fixture
def bad_file(shared_patents: Path, tmp_path: Path) -> Path:
    """A real grant with a tag mismatch: one rejected document."""
    data = (shared_patents / SINGLE).read_bytes()
    bad = tmp_path / "src" / "a-very-long-directory-name-that-would-wrap-a-forty-column-terminal" / "bad.xml"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(data.replace(b"</invention-title>", b"</invention-titel>", 1))
    return bad


def test_clean_harvest_with_skipped_sequence_listings_exits_0(shared_patents: Path, tmp_path: Path) -> None:
    res = run(tmp_path, "harvest", "--path", str(shared_patents / SEQUENCES))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "2 skipped, 0 rejected" in res.stdout
    assert "reject" not in res.stdout.replace("0 rejected", "")  # skipped documents are not called rejects
    stats = run(tmp_path, "stats", "--rejects")
    assert stats.returncode == 0, stats.stderr
    assert "rejected: 0   skipped: 2" in stats.stdout
    lines = [ln for ln in stats.stdout.splitlines() if "sequence listing" in ln]
    assert len(lines) == 2 and all(ln.lstrip().startswith("skipped ") for ln in lines)
    out = json.loads(run(tmp_path, "stats", "--json").stdout)
    assert (out["rejects"], out["skipped"]) == (0, 2)


def test_rejected_document_exits_3_printed_once_and_unwrapped(bad_file: Path, tmp_path: Path) -> None:
    res = run(tmp_path, "harvest", "--path", str(bad_file.parents[1]))
    assert res.returncode == 3, res.stdout + res.stderr
    assert "0 indexed, 0 skipped, 1 rejected" in res.stdout
    reason = "malformed XML: Opening and ending tag mismatch: invention-title"
    assert res.stdout.count(reason) == 1  # listed once: not in the summary line too
    assert "... and" not in res.stdout
    [line] = [ln for ln in res.stdout.splitlines() if reason in ln]  # one line, though COLUMNS is 40
    assert str(bad_file) in line and line.lstrip().startswith("rejected ")
    stats = run(tmp_path, "stats", "--rejects")
    assert "rejected: 1   skipped: 0" in stats.stdout
    assert sum(reason in ln and str(bad_file) in ln for ln in stats.stdout.splitlines()) == 1
    again = run(tmp_path, "harvest", "--path", str(bad_file.parents[1]))  # nothing new: nothing rejected now
    assert again.returncode == 0 and "1 unchanged" in again.stdout


def test_failed_source_exits_1_and_outranks_rejects(bad_file: Path, tmp_path: Path) -> None:
    res = run(tmp_path, "harvest", "--path", str(bad_file), "--path", str(tmp_path / "gone.xml"))
    assert res.returncode == 1
    assert res.stderr.count("no such file or directory") == 1
    assert "1 rejected" in res.stdout


def test_nothing_to_harvest_is_a_usage_error_exit_2(tmp_path: Path) -> None:
    res = run(tmp_path, "harvest")
    assert res.returncode == 2 and "nothing to harvest" in res.stderr


def test_skipped_only_directory_is_not_a_failure(shared_patents: Path, tmp_path: Path) -> None:
    """An OPS search result (references, no documents) and a non-data file are skipped: exit 0."""
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(shared_patents / "ep/ops/search_result.xml", src)
    (src / "README.md").write_text("not patent data\n", encoding="utf-8")
    res = run(tmp_path, "harvest", "--path", str(src))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "0 indexed, 2 skipped, 0 rejected" in res.stdout


def test_report_counts_documents_once_and_leaves_skipped_out(shared_patents: Path, tmp_path: Path) -> None:
    """`patentsift report` counts documents, not files: one publication in three OPS parts counts once, the two
    sequence listings of a weekly file are skipped, not harvested."""
    from datetime import UTC, datetime

    src = tmp_path / "src"
    src.mkdir()
    for rel in (SEQUENCES, "ep/ops/biblio_WO2018148832A1.xml", "ep/ops/claims_WO2018148832A1.xml",
                "ep/ops/description_WO2018148832A1.xml"):
        shutil.copy(shared_patents / rel, src)
    res = run(tmp_path, "harvest", "--path", str(src))
    assert res.returncode == 0, res.stdout + res.stderr
    documents = json.loads(run(tmp_path, "stats", "--json").stdout)["documents"]
    assert documents == 26  # 25 grants of the weekly file + the three-part publication
    today = datetime.now(UTC).date().isoformat()
    rep = run(tmp_path, "report", "--from", today, "--to", today, columns=200)
    assert rep.returncode == 0, rep.stderr
    [total] = [ln.split() for ln in rep.stdout.splitlines() if ln.startswith("total")]
    assert total[2] == str(documents)
