"""Issue 12, index integrity: the index loses documents behind the harvest state's back (rows deleted from the
embedded index, an Elasticsearch index replaced by an empty one); `patentsift stats` warns and `patentsift index
verify --repair` restores every document from the stored files, or clears a file that is gone so the next harvest
fetches it again. The CLI runs as a subprocess (`python -m patentsift --data-dir ...`), as a deployment runs it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from harvest.ingest import ingest_path
from harvest.state import HarvestState
from harvest.testserver import ServerControl, build_fixture_site, serve_fixtures
from harvest.verify import check, verify
from index.base import SearchRequest
from index.embedded import EmbeddedIndex
from index.query.ast import MatchAll
from tests.integration.es_support import unique_prefix

SOURCES = ["uspto-grant/weekly/ipg060103.small.xml", "uspto-grant/weekly/ipg230110.first3.xml",
           "ep/ops/biblio_WO2018148832A1.xml", "ep/ops/claims_WO2018148832A1.xml",
           "ep/ops/description_WO2018148832A1.xml"]  # weekly grants + one publication in three partial parts


def run(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    full_env.pop("PATENTSIFT_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "patentsift", "--data-dir", str(data_dir), *args],
                          capture_output=True, text=True, timeout=300, env=full_env, cwd=data_dir)


def copy_sources(shared: Path, dest: Path) -> Path:
    for rel in SOURCES:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shared / rel, dest / rel)
    return dest


def all_docs(index: Any) -> dict[str, dict[str, Any]]:
    """Every document, as dicts without the moment it was read (a re-feed reads again)."""
    out = {}
    for hit in index.search(SearchRequest(MatchAll(), limit=1000, highlight=False)).hits:
        d = hit.document.to_dict()
        (d.get("provenance") or {}).pop("fetched_at", None)
        out[hit.id] = d
    return out


def lose_restore_and_compare(data_dir: Path, src: Path, open_index: Any, lose: Any, *args: str,
                             env: dict[str, str] | None = None) -> None:
    """Harvest `src`, let `lose(index)` take documents away, then check stats, verify and verify --repair."""
    res = run(data_dir, *args, "harvest", "--path", str(src), env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    index = open_index()
    try:
        before = all_docs(index)
    finally:
        index.close()
    assert len(before) == 29 and "WO-2018148832-A1" in before
    assert run(data_dir, *args, "stats", env=env).stderr == ""  # state and index agree: no warning
    index = open_index()
    try:
        lost = lose(index)
    finally:
        index.close()
    stats = run(data_dir, *args, "stats", "--json", env=env)
    assert stats.returncode == 0, stats.stderr
    out = json.loads(stats.stdout)
    assert (out["harvested_documents"], out["missing_from_index"]) == (len(before), lost)
    assert f"the harvest state records {len(before)} documents stored" in stats.stderr
    assert f"({lost} missing)" in stats.stderr and "index verify" in stats.stderr

    checked = run(data_dir, *args, "index", "verify", env=env)
    assert checked.returncode == 3, checked.stdout + checked.stderr
    assert f"{lost} missing" in checked.stdout and "--repair" in checked.stdout
    repaired = run(data_dir, *args, "index", "verify", "--repair", env=env)
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert f"repair: {lost} of {lost} missing documents restored" in repaired.stdout
    index = open_index()
    try:
        assert all_docs(index) == before  # every document back, the three-part one merged whole again
    finally:
        index.close()
    again = run(data_dir, *args, "index", "verify", env=env)
    assert again.returncode == 0 and "0 missing" in again.stdout
    assert run(data_dir, *args, "stats", env=env).stderr == ""


def test_rows_deleted_from_the_embedded_index_are_restored(shared_patents: Path, tmp_path: Path) -> None:
    src = copy_sources(shared_patents, tmp_path / "src")

    def lose(index: EmbeddedIndex) -> int:
        ids = sorted(all_docs(index))
        return index.delete(sorted(set(ids[::2]) | {"WO-2018148832-A1"}))  # with the three-part publication

    lose_restore_and_compare(tmp_path, src, lambda: EmbeddedIndex(tmp_path / "index.sqlite"), lose)


def test_elasticsearch_index_replaced_by_an_empty_one_is_restored(es_url: str, shared_patents: Path,
                                                                  tmp_path: Path) -> None:
    from index.elastic import ElasticIndex

    prefix = unique_prefix("verify")
    env = {"PATENTSIFT_ES_URL": es_url, "PATENTSIFT_ES_INDEX_PREFIX": prefix}
    src = copy_sources(shared_patents, tmp_path / "src")

    def lose(index: ElasticIndex) -> int:
        n = index.count()
        index.drop()  # the index is gone; the next open creates an empty one behind the alias
        return n

    try:
        lose_restore_and_compare(tmp_path, src, lambda: ElasticIndex(es_url, index_prefix=prefix), lose,
                                 "--backend", "es", env=env)
    finally:
        ix = ElasticIndex(es_url, index_prefix=prefix)
        ix.drop()
        ix.close()


def test_a_deleted_download_is_cleared_for_refetch(shared_patents: Path, tmp_path: Path) -> None:
    """Downloads are deleted after ingestion (no keep_downloads): --repair cannot re-feed them, says so and clears
    the URL from the harvest state, so the next crawl fetches it again; its documents stay expected until then."""
    url = "https://bulkdata.example/patent/grant/redbook/fulltext/2023/ipg230110.xml"
    download = tmp_path / "downloads" / "ipg230110.xml"
    download.parent.mkdir()
    shutil.copy(shared_patents / SOURCES[1], download)
    index = EmbeddedIndex(tmp_path / "index.sqlite")
    with HarvestState(tmp_path / "state.sqlite") as state:
        report = ingest_path(download, index, state, key=url, source="uspto-grant", fingerprint="etag-1")
        assert report.indexed == 3 and state.is_done(url, "etag-1")
        assert state.file(url)["path"] == str(download.resolve())
        download.unlink()
        index.delete(["US-11553629-B2"])
        assert (check(index, state).stored, check(index, state).missing) == (3, 1)

        found = verify(index, state)
        [gap] = found.files
        assert (gap.key, gap.missing, gap.on_disk) == (url, ["US-11553629-B2"], False)
        assert state.is_done(url, "etag-1")  # without --repair nothing changes

        fixed = verify(index, state, repair=True)
        assert fixed.refetch == [url] and fixed.still_missing == ["US-11553629-B2"] and not fixed.ok
        assert "no longer on disk" in fixed.files[0].action and "fetches it again" in fixed.files[0].action
        assert not state.is_done(url, "etag-1") and state.resume_position(url) == 0
        assert check(index, state).missing == 1  # still expected: stats keeps warning until it is fetched

        shutil.copy(shared_patents / SOURCES[1], download)  # the next crawl fetches it again
        again = ingest_path(download, index, state, key=url, source="uspto-grant", fingerprint="etag-1")
        assert again.indexed == 3 and verify(index, state).ok
        assert index.get("US-11553629-B2").provenance.source == "uspto-grant"
    index.close()


def test_state_from_before_ids_were_recorded_is_learned_from_disk(shared_patents: Path, tmp_path: Path) -> None:
    src = copy_sources(shared_patents, tmp_path / "src")
    index = EmbeddedIndex(tmp_path / "index.sqlite")
    with HarvestState(tmp_path / "state.sqlite") as state:
        ingest_path(src, index, state)
        expected = check(index, state).stored
        state._db.execute("DELETE FROM stored_documents")  # an older state: files done, no stored ids
        state._db.execute("UPDATE files SET path = NULL")
        assert check(index, state).stored == 0 and check(index, state).unrecorded_files == len(SOURCES)
        index.delete(["US-11553629-B2"])
        fixed = verify(index, state, repair=True)
        assert len(fixed.backfilled) == len(SOURCES) and fixed.stored == expected
        assert fixed.missing == ["US-11553629-B2"] and fixed.restored == 1 and fixed.ok
    assert index.get("US-11553629-B2") is not None
    index.close()


def test_verify_with_no_harvest_state_says_so(tmp_path: Path) -> None:
    res = run(tmp_path, "index", "verify")
    assert res.returncode == 0 and "nothing harvested" in res.stdout


def test_crawled_files_are_refetched_by_the_next_harvest(shared_patents: Path, tmp_path: Path) -> None:
    """The deployment path: `harvest --uspto` crawls (a local copy of) the bulk-data site, downloads are deleted
    after ingestion; rows deleted from the index are named per URL, --repair clears those URLs, and the next
    `patentsift harvest --uspto` fetches exactly them again and restores every document."""
    build_fixture_site([shared_patents / SOURCES[0], shared_patents / SOURCES[1]], tmp_path / "site")
    control = ServerControl()
    env = {"PATENTSIFT_CRAWL_SETTINGS": json.dumps({"AUTOTHROTTLE_START_DELAY": "0.01", "DOWNLOAD_DELAY": "0",
                                                     "AUTOTHROTTLE_MAX_DELAY": "0.1", "LOG_LEVEL": "WARNING"})}
    data = tmp_path / "data"
    data.mkdir()
    with serve_fixtures(tmp_path / "site", control=control) as url:
        listing = url + "/data/patent/grant/redbook/fulltext/"
        res = run(data, "harvest", "--uspto", listing, env=env)
        assert res.returncode == 0, res.stdout + res.stderr
        assert "2 file(s) fetched" in res.stdout and "2 skipped, 0 rejected" in res.stdout
        assert not list((data / "downloads").rglob("*.zip"))  # deleted after ingestion
        index = EmbeddedIndex(data / "index.sqlite")
        before = all_docs(index)
        assert index.delete(["US-11553629-B2"]) == 1
        index.close()
        assert "(1 missing)" in run(data, "stats").stderr
        repaired = run(data, "index", "verify", "--repair")
        assert repaired.returncode == 3, repaired.stdout + repaired.stderr
        assert "ipg230110.zip: the file is no longer on disk: cleared from the harvest state" in repaired.stdout
        assert "1 documents still missing" in repaired.stderr
        control.clear_log()
        again = run(data, "harvest", "--uspto", listing, env=env)
        assert again.returncode == 0, again.stdout + again.stderr
        assert [p.rsplit("/", 1)[-1] for p in control.paths("GET", ".zip")] == ["ipg230110.zip"]
    assert run(data, "index", "verify").returncode == 0
    index = EmbeddedIndex(data / "index.sqlite")
    assert all_docs(index) == before
    index.close()


def test_stats_advises_elasticsearch_past_the_embedded_size_and_the_move_works(es_url: str, shared_patents: Path,
                                                                              tmp_path: Path) -> None:
    """Past the embedded index's comfortable size (lowered here by its environment variable) `stats` says so and
    names the way out; following it (backend Elasticsearch, `index verify --repair`) brings every document over."""
    from index.elastic import ElasticIndex

    prefix = unique_prefix("move")
    env = {"PATENTSIFT_ES_URL": es_url, "PATENTSIFT_ES_INDEX_PREFIX": prefix,
           "PATENTSIFT_EMBEDDED_COMFORTABLE_DOCUMENTS": "20"}
    src = copy_sources(shared_patents, tmp_path / "src")
    assert run(tmp_path, "harvest", "--path", str(src), env=env).returncode == 0
    stats = run(tmp_path, "stats", "--json", env=env)
    assert stats.returncode == 0
    assert "holds 29 documents, past its comfortable size (20" in stats.stderr
    assert "index verify --repair" in json.loads(stats.stdout)["size_warning"]
    assert run(tmp_path, "stats", env={**env, "PATENTSIFT_EMBEDDED_COMFORTABLE_DOCUMENTS": "100"}).stderr == ""
    try:
        moved = run(tmp_path, "--backend", "es", "index", "verify", "--repair", env=env)
        assert moved.returncode == 0, moved.stdout + moved.stderr
        es_stats = run(tmp_path, "--backend", "es", "stats", "--json", env=env)
        assert json.loads(es_stats.stdout)["documents"] == 29 and es_stats.stderr == ""  # no advice for ES
        embedded = EmbeddedIndex(tmp_path / "index.sqlite")
        try:
            assert all_docs(ElasticIndex(es_url, index_prefix=prefix)) == all_docs(embedded)
        finally:
            embedded.close()
    finally:
        ix = ElasticIndex(es_url, index_prefix=prefix)
        ix.drop()
        ix.close()
