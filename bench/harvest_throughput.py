"""Harvest-to-searchable throughput: from weekly archives on an office-like HTTP site to documents a search finds.

Builds weekly grant files from the real ICE grants in the shared data (numbers rewritten so every document is
distinct), zips them the way the USPTO names its archives, serves them on 127.0.0.1, and measures in one run:
  (a) baseline: plain lxml parsing of every document (`etree.fromstring`, documents cut out beforehand);
  (b) offline: `harvest.ingest.ingest_path` of the same weekly files on disk into a fresh embedded index with a
      harvest state, as `patentsift harvest --path` runs it, until a search sees every document;
  (b2) the same with parse worker processes (harvest.parallel; --workers, default what "auto" picks here), in
      wall-clock seconds against the baseline and (b) in wall-clock seconds, runs alternating in this process;
  (c) crawl (--crawl): the real Scrapy spider fetching the zips over HTTP -> split -> parse -> embedded index,
      until `count()` and a search see every document;
  stages of (b), each timed alone on the same documents: splitting, safe XML parsing, field extraction (and each
      ICE extractor's share), tokenization for the index, the stored document's JSON encoding (+ zlib), SQLite
      writes (upsert minus building its rows; the FTS5 insert alone), what is left for the harvest state and
      batching, and the floor no Python change removes (XML parse + zlib + FTS5).
Prints docs/s and MB/s for each and ratios against (a); (a), (b), (b2) and the stages are the best of `--repeat`
runs (default 3), (c) one run. Figures only; no asserts.

    .venv/bin/python bench/harvest_throughput.py --weeks 1 --mb 16 [--crawl]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from lxml import etree

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from parse_throughput import SHARED, build_weekly, real_grants  # noqa: E402

from harvest.files import iter_raw_documents  # noqa: E402
from harvest.formats import parse_raw, uspto_ice  # noqa: E402
from harvest.ingest import ingest_path  # noqa: E402
from harvest.parallel import AUTO_MIN_BYTES, Parser, workers_for  # noqa: E402
from harvest.raw import RawDocument  # noqa: E402
from harvest.state import HarvestState  # noqa: E402
from harvest.testserver import build_fixture_site, serve_fixtures  # noqa: E402
from harvest.xmlsafe import parse_xml  # noqa: E402
from index.analysis import index_text  # noqa: E402
from index.base import SearchRequest  # noqa: E402
from index.embedded import EmbeddedIndex  # noqa: E402
from index.embedded.rows import FTS_COLUMNS, doc_rows, encode_document  # noqa: E402
from index.embedded.schema import connect  # noqa: E402
from index.fields import index_fields  # noqa: E402
from index.query.ast import MatchAll  # noqa: E402
from patentsift.config import Config  # noqa: E402
from patentsift.wiring import HarvestJobs, System  # noqa: E402

CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}
now = time.process_time  # CPU seconds of this process by default: steady on a machine shared with other work


def line(label: str, docs: int, mbytes: float, seconds: float, base: float | None = None) -> None:
    rate = docs / seconds
    ratio = f"  {rate / base:6.1%} of baseline" if base else ""
    print(f"{label:<44} {docs:>7} docs {seconds:8.2f} s {rate:9.0f} docs/s {mbytes / seconds:8.1f} MB/s{ratio}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weeks", type=int, default=4, help="number of weekly archives")
    ap.add_argument("--mb", type=int, default=8, help="uncompressed MB per weekly file")
    ap.add_argument("--crawl", action="store_true", help="also (c): the Scrapy crawl over HTTP")
    ap.add_argument("--clock", choices=sorted(CLOCKS), default="cpu",
                    help="cpu: this process's CPU seconds (default; the crawl's server thread counts too); wall")
    ap.add_argument("--repeat", type=int, default=3, help="runs of (a), (b), (b2) and each stage; the best is reported")
    ap.add_argument("--workers", type=int, default=None,
                    help="parse workers of (b2) (default: what 'auto' picks for these files here, at least 2)")
    args = ap.parse_args()
    global now
    now = CLOCKS[args.clock]

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
        print(f"{args.weeks} weekly files, {total_docs} grants, {mbytes:.1f} MB uncompressed; {args.clock} seconds")

        docs = [r.data for p in files for r in iter_raw_documents(p) if isinstance(r, RawDocument)]
        base_s = float("inf")
        for _ in range(args.repeat):
            t0 = now()
            for d in docs:
                etree.fromstring(d)
            base_s = min(base_s, now() - t0)
        base_rate = len(docs) / base_s
        line("(a) plain lxml fromstring (baseline)", len(docs), mbytes, base_s)
        del docs

        offline_s = float("inf")
        for n in range(args.repeat):  # each run into a fresh index and harvest state
            index = EmbeddedIndex(work / f"offline-{n}.sqlite")
            state = HarvestState(work / f"offline-state-{n}.sqlite")
            t0 = now()
            indexed = sum(ingest_path(p, index, state, workers=0).indexed for p in files)
            found = index.search(SearchRequest(query=MatchAll(), limit=1)).total
            offline_s = min(offline_s, now() - t0)
            state.close()
            index.close()
            assert indexed == found == total_docs, (indexed, found, total_docs)
        line("(b) harvest --path -> searchable (embedded)", found, mbytes, offline_s, base_rate)
        parallel(files, work, mbytes, total_docs, args.repeat, args.workers)
        stages(files, work, offline_s, args.repeat, base_rate)
        if not args.crawl:
            return

        site = work / "site"
        pages = build_fixture_site(files, site)
        listings = sorted({p.path.rsplit("/", 1)[0] + "/" for p in pages})
        os.environ["PATENTSIFT_CRAWL_SETTINGS"] = json.dumps({"LOG_LEVEL": "WARNING", "AUTOTHROTTLE_ENABLED": False,
                                                             "DOWNLOAD_DELAY": 0})
        with serve_fixtures(site) as base, System(Config(data_dir=work / "crawl")) as system:
            t0 = now()  # the one way every entry point crawls (patentsift.wiring), into the embedded index
            outcome = system.harvest(HarvestJobs(crawls=[("uspto", [base + listing for listing in listings])]))
            found = system.index.search(SearchRequest(query=MatchAll(), limit=1)).total
            crawl_s = now() - t0
            line("(c) Scrapy crawl over HTTP -> searchable", found, mbytes, crawl_s, base_rate)
            print(f"crawl: {'; '.join(map(str, outcome.crawl_summaries))}")
            print(f"searchable: {found} of {total_docs} documents; index.count() = {system.index.count()}")


def parallel(files: list[Path], work: Path, mbytes: float, total_docs: int, repeat: int, workers: int | None) -> None:
    """(b2): ingest_path with parse workers against the baseline and (b), all in wall-clock seconds, alternating
    runs (the pool and its start are inside each timed run: one per ingest_path call); with the CPU seconds of the
    main process and of the workers, for what an otherwise idle machine would give."""
    size = max(p.stat().st_size for p in files)
    n = workers if workers is not None else max(2, workers_for(None, max(size, AUTO_MIN_BYTES), os.cpu_count()))
    docs = [r.data for p in files for r in iter_raw_documents(p) if isinstance(r, RawDocument)]
    base_s, times, cpu = float("inf"), {0: [], n: []}, {0: [], n: []}
    for _ in range(repeat):
        t0 = time.perf_counter()
        for d in docs:
            etree.fromstring(d)
        base_s = min(base_s, time.perf_counter() - t0)
    del docs
    for run in range(repeat):
        for w in (0, n):
            index = EmbeddedIndex(work / f"wall-{w}-{run}.sqlite")
            state = HarvestState(work / f"wall-state-{w}-{run}.sqlite")
            with WorkerCPU() as workers_cpu:
                t0, c0 = time.perf_counter(), time.process_time()
                indexed = sum(ingest_path(p, index, state, workers=w).indexed for p in files)
                found = index.search(SearchRequest(query=MatchAll(), limit=1)).total
                times[w].append(time.perf_counter() - t0)
                cpu[w].append((time.process_time() - c0, workers_cpu.seconds))
            state.close()
            index.close()
            assert indexed == found == total_docs, (w, indexed, found, total_docs)
    base_rate = total_docs / base_s
    print(f"wall clock, {os.cpu_count()} cores, best of {repeat} (runs alternating; first parallel run "
          f"{times[n][0]:.2f} s, with the pool's start):")
    line("(a2) plain lxml fromstring, wall clock", total_docs, mbytes, base_s)
    line("(b1) harvest --path, in process, wall clock", total_docs, mbytes, min(times[0]), base_rate)
    line(f"(b2) harvest --path, {n} parse workers, wall", total_docs, mbytes, min(times[n]), base_rate)
    main_s, workers_s = min(c[0] for c in cpu[n]), min(c[1] for c in cpu[n])
    cores = min(os.cpu_count() or 1, n + 1)
    idle = max(main_s, (main_s + workers_s) / cores)
    print(f"(b2) is {min(times[0]) / min(times[n]):.2f}x (b1) with {n} parse workers; CPU seconds (best): main "
          f"{main_s:.2f} + workers {workers_s:.2f} = {main_s + workers_s:.2f} (b1: {min(c[0] for c in cpu[0]):.2f});"
          f" on {cores} otherwise idle cores at best {idle:.2f} s = {total_docs / idle / base_rate:.1%} of the wall "
          "baseline")


class WorkerCPU:
    """CPU seconds of the parse workers, read from /proc just before each pool stops (Linux; 0 elsewhere)."""

    def __enter__(self) -> WorkerCPU:
        self.seconds = 0.0
        self.close = Parser.close
        tick = os.sysconf("SC_CLK_TCK")

        def close(parser: Parser) -> None:
            for pid in list(getattr(parser.pool, "_processes", None) or {}):
                try:
                    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                self.seconds += (int(fields[11]) + int(fields[12])) / tick  # utime + stime
            self.close(parser)

        Parser.close = close  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        Parser.close = self.close  # type: ignore[method-assign]


def stages(files: list[Path], work: Path, total_s: float, repeat: int = 3, base_rate: float = 0.0) -> None:
    """Each stage of (b) timed alone on the same documents (best of `repeat`); shares of (b)'s time. Field extraction
    is broken down by ICE extractor, SQLite writes by the FTS5 insert, and the part no Python change can remove
    (XML parse + zlib + FTS5) is summed up as a floor."""

    def best(run: object) -> float:
        times = []
        for _ in range(repeat):
            t = now()
            run()  # type: ignore[operator]
            times.append(now() - t)
        return min(times)

    raws = [r for p in files for r in iter_raw_documents(p) if isinstance(r, RawDocument)]
    docs = [d for r in raws for d in parse_raw(r, fetched_at="2024-01-01T00:00:00+00:00")]

    def tokenize() -> None:
        for d in docs:
            f = index_fields(d)
            for col in FTS_COLUMNS:
                index_text(f[col] or "")

    def xml_parse() -> None:
        for r in raws:  # each tree dropped at once, as in (a) and in a harvest (a list of them all costs memory)
            parse_xml(r.data)

    split = best(lambda: [r for p in files for r in iter_raw_documents(p)])
    xml = best(xml_parse)
    parse = best(lambda: [parse_raw(r, fetched_at="2024-01-01T00:00:00+00:00") for r in raws])
    tok = best(tokenize)
    enc = best(lambda: [encode_document(d) for d in docs])
    rows = best(lambda: [doc_rows(d) for d in docs])
    upserts = []
    for n in range(repeat):
        index = EmbeddedIndex(work / f"stages-{n}.sqlite")
        t = now()
        for i in range(0, len(docs), 500):
            index.upsert(docs[i:i + 500])
        upserts.append(now() - t)
        index.close()
    fts = fts_insert(work, [doc_rows(d).fts for d in docs], repeat)
    timed = {
        "split (cut documents out of the weekly file)": split,
        "XML parse (harvest.xmlsafe.parse_xml)": xml,
        "field extraction (parse_raw minus XML parse)": parse - xml,
        "tokenization for the index (index_fields + index_text)": tok,
        "stored document JSON + zlib (encode_document)": enc,
        "other row building (doc_rows minus the two above)": rows - tok - enc,
        "SQLite writes (upsert minus doc_rows)": min(upserts) - rows,
    }
    timed["harvest state, batching, merge checks (the rest of (b))"] = total_s - sum(timed.values())
    parts = extraction_parts(raws, best)
    print(f"stages of (b), each timed alone, best of {repeat} ({len(docs)} documents):")
    for name, sec in timed.items():
        print(f"  {name:<56} {sec:8.2f} s {sec / total_s:6.1%}")
        if name.startswith("field extraction"):
            for part, part_s in parts.items():
                print(f"    {part:<54} {part_s:8.2f} s {part_s / total_s:6.1%}")
        if name.startswith("SQLite writes"):
            print(f"    {'of which the FTS5 insert (alone, same texts)':<54} {fts:8.2f} s {fts / total_s:6.1%}")
    floor = xml + enc + fts
    ceiling = f" = {len(docs) / floor / base_rate:.1%} of baseline" if base_rate else ""
    print(f"floor in C (XML parse + JSON/zlib + FTS5 insert) {floor:.2f} s: with no Python work at all (b) would run "
          f"at most at {len(docs) / floor:.0f} docs/s{ceiling}")


def extraction_parts(raws: list[RawDocument], best: Callable[[Callable[[], object]], float]) -> dict[str, float]:
    """Field extraction of the ICE grants by extractor, on trees parsed beforehand (not timed)."""
    roots = [root for root in (parse_xml(r.data) for r in raws) if root.tag == "us-patent-grant"]
    bibs = [root.find("us-bibliographic-data-grant") for root in roots]
    runs: dict[str, Callable[[], object]] = {
        "description + abstract": lambda: [(uspto_ice._paragraphs(r.find("description")),
                                            uspto_ice._paragraphs(r.find("abstract"))) for r in roots],
        "claims": lambda: [uspto_ice._claims(r.find("claims")) for r in roots],
        "citations": lambda: [uspto_ice._citations(b) for b in bibs],
        "parties": lambda: [uspto_ice._parties(b) for b in bibs],
        "classifications": lambda: [(uspto_ice._ipc(b), uspto_ice._cpc(b), uspto_ice._other_classes(b)) for b in bibs],
    }
    out = {f"{name} (uspto_ice)": best(run) for name, run in runs.items()}
    whole = best(lambda: [uspto_ice.parse(r, raw) for r, raw in zip(roots, raws, strict=False)])
    out["the rest of uspto_ice.parse"] = whole - sum(out.values())
    return out


def fts_insert(work: Path, texts: list[tuple[str, ...]], repeat: int) -> float:
    """The FTS5 insert alone: the analyzed texts of every document into a fresh index's full-text table."""
    sql = "INSERT INTO fts(rowid, {}) VALUES (?{})".format(
        ", ".join(f'"{c}"' for c in FTS_COLUMNS), ", ?" * len(FTS_COLUMNS))
    times = []
    for n in range(repeat):
        conn = connect(work / f"fts-{n}.sqlite")
        t = now()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(sql, [(i + 1, *cols) for i, cols in enumerate(texts)])
        conn.execute("COMMIT")
        times.append(now() - t)
        conn.close()
    return min(times)


if __name__ == "__main__":
    main()
