"""Harvest-to-searchable throughput: from weekly archives on an office-like HTTP site to documents a search finds.

Builds weekly grant files from the real ICE grants in the shared data (numbers rewritten so every document is
distinct), zips them the way the USPTO names its archives, serves them on 127.0.0.1, and measures in one run:
  (a) baseline: plain lxml parsing of every document (`etree.fromstring`, documents cut out beforehand);
  (b) offline: `harvest.ingest.ingest_path` of the same weekly files on disk into a fresh embedded index;
  (c) crawl: the real Scrapy spider fetching the zips over HTTP -> split -> parse -> embedded index,
      until `count()` and a search see every document.
Prints docs/s and MB/s for each and ratios against (a). Figures only; no asserts.

    .venv/bin/python bench/harvest_throughput.py --weeks 4 --mb 8
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from lxml import etree

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from parse_throughput import SHARED, build_weekly, real_grants  # noqa: E402

from harvest.crawl import crawl  # noqa: E402
from harvest.files import iter_raw_documents  # noqa: E402
from harvest.ingest import ingest_path  # noqa: E402
from harvest.raw import RawDocument  # noqa: E402
from harvest.state import HarvestState  # noqa: E402
from harvest.testserver import build_fixture_site, serve_fixtures  # noqa: E402
from index.base import SearchRequest  # noqa: E402
from index.embedded import EmbeddedIndex  # noqa: E402
from index.query.ast import MatchAll  # noqa: E402


def line(label: str, docs: int, mbytes: float, seconds: float, base: float | None = None) -> None:
    rate = docs / seconds
    ratio = f"  {rate / base:6.1%} of baseline" if base else ""
    print(f"{label:<44} {docs:>7} docs {seconds:8.2f} s {rate:9.0f} docs/s {mbytes / seconds:8.1f} MB/s{ratio}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weeks", type=int, default=4, help="number of weekly archives")
    ap.add_argument("--mb", type=int, default=8, help="uncompressed MB per weekly file")
    args = ap.parse_args()

    grants = real_grants(SHARED)
    with tempfile.TemporaryDirectory(prefix="patentsift-bench-") as tmp:
        work = Path(tmp)
        weekly_dir = work / "weekly"
        weekly_dir.mkdir()
        files, total_docs = [], 0
        for week in range(args.weeks):
            path = weekly_dir / f"ipg2401{week + 1:02d}.xml"
            n = build_weekly(path, grants, args.mb)  # numbers 30,000,000 + i, made distinct per week below
            files.append(path)
            total_docs += n
        for week, path in enumerate(files):
            data = path.read_bytes().replace(b"<doc-number>3", f"<doc-number>{4 + week}".encode())
            path.write_bytes(data)
        mbytes = sum(p.stat().st_size for p in files) / 1e6
        print(f"{args.weeks} weekly files, {total_docs} grants, {mbytes:.1f} MB uncompressed")

        docs = [r.data for p in files for r in iter_raw_documents(p) if isinstance(r, RawDocument)]
        t0 = time.perf_counter()
        for d in docs:
            etree.fromstring(d)
        base_s = time.perf_counter() - t0
        base_rate = len(docs) / base_s
        line("(a) plain lxml fromstring (baseline)", len(docs), mbytes, base_s)
        del docs

        index = EmbeddedIndex(work / "offline.sqlite")
        t0 = time.perf_counter()
        indexed = sum(ingest_path(p, index).indexed for p in files)
        offline_s = time.perf_counter() - t0
        line("(b) offline ingest_path -> embedded index", indexed, mbytes, offline_s, base_rate)
        index.close()

        site = work / "site"
        pages = build_fixture_site(files, site)
        listings = sorted({p.path.rsplit("/", 1)[0] + "/" for p in pages})
        index = EmbeddedIndex(work / "crawl.sqlite")
        state = HarvestState(work / "state.sqlite")
        with serve_fixtures(site) as base:
            t0 = time.perf_counter()
            summary = crawl("uspto", [base + listing for listing in listings], index, state,
                            downloads_dir=work / "downloads",
                            settings_overrides={"LOG_LEVEL": "WARNING", "AUTOTHROTTLE_ENABLED": False,
                                                "DOWNLOAD_DELAY": 0})
            found = index.search(SearchRequest(query=MatchAll(), limit=1)).total
            crawl_s = time.perf_counter() - t0
        line("(c) Scrapy crawl over HTTP -> searchable", found, mbytes, crawl_s, base_rate)
        print(f"crawl summary: {summary}")
        print(f"searchable: {found} of {total_docs} documents; index.count() = {index.count()}")
        state.close()
        index.close()


if __name__ == "__main__":
    main()
