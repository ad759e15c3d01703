"""The office spiders crawl, for real, a local copy of the USPTO bulk-data and EP publication-server sites.

Real weekly files and EP documents from the shared fixtures are laid out (USPTO files zipped) by
`build_fixture_site` and served by `serve_fixtures`; each crawl runs the real Scrapy engine in a subprocess
(`python -m harvest.crawl`, since Twisted's reactor runs once per process) into an EmbeddedIndex + HarvestState.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from harvest.spiders.base import listing_fingerprint
from harvest.spiders.ep_pubserver import document_url
from harvest.spiders.uspto_bulk import classify_archive
from harvest.testserver import ServerControl, build_fixture_site, serve_fixtures, uspto_archive_name

ROOT = Path(__file__).resolve().parents[2]
USPTO_WEEKLY = [
    "uspto-grant/weekly/ipg230110.first3.xml",
    "uspto-grant/weekly/ipg060103.small.xml",  # interleaves <sequence-cwu> listings: skipped, not indexed
    "uspto-grant/weekly/pg020507.ten.xml",
    "uspto-application/weekly/ipa130117.two.xml",
    "uspto-application/weekly/pa040101.publications_sample_2004.xml",
]
GRANTS = "/data/patent/grant/redbook/fulltext/"
APPLICATIONS = "/data/patent/application/redbook/fulltext/"
EP_DATES = "/publication-server/rest/v1.2/publication-dates"
FAST = {  # polite machinery stays on (AutoThrottle, retries, robots.txt) with test-sized delays
    "AUTOTHROTTLE_START_DELAY": "0.01", "AUTOTHROTTLE_MAX_DELAY": "0.1", "DOWNLOAD_DELAY": "0",
    "LOG_LEVEL": "WARNING",
}


def expected_ids(patent_index: list[dict[str, str]], files: list[str]) -> set[str]:
    """Patent documents INDEX.csv lists for these files (sequence listings are not patent documents)."""
    return {r["doc_id"] for r in patent_index if r["file"] in files and r["format"] != "USPTO sequence-cwu"}


@dataclass
class Site:
    root: Path
    url: str
    control: ServerControl
    work: Path

    def crawl(self, spider: str, paths: list[str], *, run: str = "a", expect_rc: int = 0,
              args: dict[str, str] | None = None, **settings: str) -> dict[str, Any]:
        """Crawl in a subprocess into work/<run>/ (index, state, downloads); return the JSON summary."""
        out = self.work / run
        cmd = [sys.executable, "-m", "harvest.crawl", spider, *[self.url + p for p in paths],
               "--index", str(out / "index"), "--state", str(out / "state.sqlite"), "--downloads", str(out / "dl")]
        for name, value in {**FAST, **settings}.items():
            cmd += ["-s", f"{name}={value}"]
        for name, value in (args or {}).items():
            cmd += ["-a", f"{name}={value}"]
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240)
        assert proc.returncode == expect_rc, proc.stderr[-4000:]
        return json.loads(proc.stdout.strip().splitlines()[-1])

    def archive_gets(self) -> list[str]:
        return self.control.paths("GET", ".zip")


@pytest.fixture
def site(tmp_path: Path, shared_patents: Path) -> Iterator[Site]:
    files = [shared_patents / f for f in USPTO_WEEKLY] + sorted((shared_patents / "ep/publication-server").glob("*.xml"))
    root = tmp_path / "site"
    build_fixture_site(files, root)
    control = ServerControl()
    with serve_fixtures(root, control=control) as url:
        yield Site(root, url, control, tmp_path / "runs")


def open_index(site: Site, run: str = "a") -> Any:
    from index.embedded import EmbeddedIndex

    return EmbeddedIndex(site.work / run / "index")


def open_state(site: Site, run: str = "a") -> Any:
    from harvest.state import HarvestState

    return HarvestState(site.work / run / "state.sqlite")


def test_uspto_crawl_indexes_every_archive_then_fetches_nothing_new(site: Site, patent_index: list[dict[str, str]]) -> None:
    want = expected_ids(patent_index, USPTO_WEEKLY)
    first = site.crawl("uspto", [GRANTS, APPLICATIONS])
    assert first["files_fetched"] == len(USPTO_WEEKLY) and first["files_failed"] == 0
    assert first["indexed"] == len(want)
    assert sorted(Path(p).name for p in site.archive_gets()) == sorted(
        f"{uspto_archive_name(Path(f).name)[1]}.zip" for f in USPTO_WEEKLY)
    assert not list((site.work / "a" / "dl").rglob("*.zip"))  # deleted after ingestion
    index = open_index(site)
    try:
        assert index.count() == len(want)
        missing = sorted(i for i in want if index.get(i) is None)
        assert not missing
        doc = index.get("US-11553629-B2")
        assert doc.provenance.source == "uspto-grant" and doc.provenance.file.startswith(site.url)
    finally:
        index.close()
    agents = {r.user_agent for r in site.control.requests}
    assert agents and all(a.startswith("patentsift/0.1 (+") for a in agents)

    site.control.clear_log()
    second = site.crawl("uspto", [GRANTS, APPLICATIONS])
    assert site.archive_gets() == []  # the server saw no archive download
    assert second["files_skipped"] == len(USPTO_WEEKLY) and second["files_fetched"] == 0
    index = open_index(site)
    try:
        assert index.count() == len(want)
    finally:
        index.close()


def test_listing_without_sizes_uses_head_validators(site: Site) -> None:
    site.control.listing_details = False  # a bare listing: the spider asks the server with HEAD
    first = site.crawl("uspto", [GRANTS + "2023/"])
    assert first["files_fetched"] == 1
    assert site.control.paths("HEAD", ".zip") == [GRANTS + "2023/ipg230110.zip"]
    site.control.clear_log()
    second = site.crawl("uspto", [GRANTS + "2023/"])
    assert second["files_skipped"] == 1 and site.archive_gets() == []
    assert site.control.paths("HEAD", ".zip") == [GRANTS + "2023/ipg230110.zip"]


def test_failed_archive_is_recorded_and_the_rerun_fetches_only_it(site: Site, patent_index: list[dict[str, str]]) -> None:
    broken = GRANTS + "2006/ipg060103.zip"
    site.control.fail(broken, times=None)  # fails every time during the first crawl, retries included
    first = site.crawl("uspto", [GRANTS], expect_rc=1, RETRY_TIMES="1")
    assert first["files_failed"] == 1 and first["files_fetched"] == 2
    assert first["failures"] == [[site.url + broken, "download failed: HTTP 503"]]
    assert site.archive_gets().count(broken) == 2  # first try + one retry
    state = open_state(site)
    try:
        rejects = [r for r in state.rejects() if r.file == site.url + broken]
        assert [r.reason for r in rejects] == ["download failed: HTTP 503"]
    finally:
        state.close()

    site.control.clear_faults()
    site.control.clear_log()
    second = site.crawl("uspto", [GRANTS], RETRY_TIMES="1")
    assert site.archive_gets() == [broken]
    assert second["files_fetched"] == 1 and second["files_skipped"] == 2
    grants = [f for f in USPTO_WEEKLY if f.startswith("uspto-grant")]
    index, state = open_index(site), open_state(site)
    try:
        assert index.count() == len(expected_ids(patent_index, grants))
        assert not [r for r in state.rejects() if r.file == site.url + broken and r.position == 0]
    finally:
        index.close()
        state.close()


def test_transient_errors_and_dropped_connections_are_retried(site: Site, patent_index: list[dict[str, str]]) -> None:
    flaky, dropped = GRANTS + "2023/ipg230110.zip", APPLICATIONS + "2013/ipa130117.zip"
    site.control.fail(flaky, times=2, status=503)
    site.control.drop(dropped, times=1)
    summary = site.crawl("uspto", [GRANTS + "2023/", APPLICATIONS + "2013/"])
    assert summary["files_fetched"] == 2 and summary["files_failed"] == 0
    statuses = [r.status for r in site.control.requests if r.path == flaky]
    assert statuses == [503, 503, 200]
    assert [r.status for r in site.control.requests if r.path == dropped] == [0, 200]
    files = ["uspto-grant/weekly/ipg230110.first3.xml", "uspto-application/weekly/ipa130117.two.xml"]
    index = open_index(site)
    try:
        assert {i for i in expected_ids(patent_index, files) if index.get(i) is not None} == expected_ids(
            patent_index, files)
    finally:
        index.close()


def test_robots_txt_disallow_is_obeyed(site: Site, patent_index: list[dict[str, str]]) -> None:
    (site.root / "robots.txt").write_text("User-agent: *\nDisallow: /data/patent/application/\n")
    summary = site.crawl("uspto", [GRANTS, APPLICATIONS])
    requested = [r.path for r in site.control.requests]
    assert requested[0] == "/robots.txt"
    assert not [p for p in requested if p.startswith("/data/patent/application/")]
    grants = [f for f in USPTO_WEEKLY if f.startswith("uspto-grant")]
    assert summary["files_fetched"] == len(grants) and summary["disallowed"] == 1  # the applications listing
    index = open_index(site)
    try:
        assert index.count() == len(expected_ids(patent_index, grants))
    finally:
        index.close()


def test_ep_publication_server_crawl(site: Site, patent_index: list[dict[str, str]]) -> None:
    ep_files = sorted({r["file"] for r in patent_index if r["file"].startswith("ep/publication-server/")})
    want = expected_ids(patent_index, ep_files)
    first = site.crawl("ep", [EP_DATES])
    documents = site.control.paths("GET", "/document.xml")
    assert len(documents) == len(ep_files) == first["files_fetched"]
    index = open_index(site)
    try:
        assert index.count() == len(want)
        assert all(index.get(i) is not None for i in want)
        assert index.get("EP-4114164-A1").provenance.source == "epo-pubserver"
    finally:
        index.close()

    site.control.clear_log()
    second = site.crawl("ep", [EP_DATES])
    assert site.control.paths("GET", "/document.xml") == []
    assert second["files_skipped"] == len(ep_files)

    site.control.clear_log()  # a date window: only the publication dates in it are followed (fresh state)
    windowed = site.crawl("ep", [EP_DATES], run="b", args={"since": "20210101", "until": "2021-12-31"})
    in_2021 = {r["file"] for r in patent_index if r["file"] in ep_files and r["pub_date"].startswith("2021")}
    assert windowed["files_fetched"] == len(in_2021) > 0
    dated = [p for p in site.control.paths("GET") if p.startswith(EP_DATES + "/")]
    assert dated and all(p.startswith(EP_DATES + "/2021") for p in dated)


def test_pure_helpers() -> None:
    grant = classify_archive("ipg230110.zip")
    assert grant and grant.source == "uspto-grant" and grant.published == date(2023, 1, 10)
    old = classify_archive("pa040101.zip")
    assert old and old.source == "uspto-application" and old.published == date(2004, 1, 1)
    assert classify_archive("ipgb20221025.zip") is None  # bibliographic product: opt-in
    assert classify_archive("ipgb20221025.zip", ("grant-biblio",)).published == date(2022, 10, 25)
    assert classify_archive("ipg230110.tar") is None and classify_archive("ipg231340.zip") is None
    assert document_url("https://data.epo.org/publication-server/rest/v1.2/publication-dates/20130904/patents/"
                        "EP1004359NWB1") == (
        "https://data.epo.org/publication-server/rest/v1.2/patents/EP1004359NWB1/document.xml", "EP1004359NWB1",
        "20130904")
    assert document_url("https://x/publication-server/rest/v1.2/publication-dates/20130904/patents") is None
    assert listing_fingerprint("  143215  2023-01-10 00:11 ") == "listing:143215 2023-01-10 00:11"
    assert listing_fingerprint("  -  ") is None
    assert uspto_archive_name("ipg060103.small.xml") == ("grant", "ipg060103", 2006)
