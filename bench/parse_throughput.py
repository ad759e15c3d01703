"""Parse throughput: plain lxml parsing of each document (the baseline) against patentsift's split + parse_raw.

Builds a weekly grant file of the requested size from the real ICE grants in the shared data (doc-numbers rewritten
so every document is distinct), then times, in the same run:
  (a) `lxml.etree.fromstring(doc_bytes)` for every document (documents cut out beforehand, not timed);
  (b) `harvest.files.iter_raw_documents(path)` + `harvest.formats.parse_raw(raw)` for every document.
Prints MB/s and docs/s for both and the ratio (goal: (b) >= 70% of (a)), then the cost of the layers (splitting
alone; splitting + `harvest.xmlsafe.parse_xml`). `--stages` adds the time of each ICE field extractor on parsed
trees; `--profile` adds a cProfile of (b).

    .venv/bin/python bench/parse_throughput.py --mb 64 --repeat 3 [--stages] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import re
import sys
import tempfile
import time
from pathlib import Path

from lxml import etree

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harvest.files import iter_raw_documents  # noqa: E402
from harvest.formats import parse_raw, uspto_ice  # noqa: E402
from harvest.raw import RawDocument  # noqa: E402
from harvest.xmlsafe import parse_xml  # noqa: E402

SHARED = Path(os.environ.get("PATENTSIFT_SHARED_DATA", ROOT.parent / "shared" / "data" / "patents"))
SOURCES = [
    "uspto-grant/weekly/ipg060103.small.xml", "uspto-grant/weekly/ipg080101.small.xml",
    "uspto-grant/weekly/ipg130416.xml", "uspto-grant/weekly/ipg230110.first3.xml",
]
_PUB_NUMBER = re.compile(rb"(<publication-reference>\s*<document-id>\s*<country>US</country>\s*<doc-number>)[^<]+")


def real_grants(shared: Path) -> list[bytes]:
    """The ICE grant documents (not sequence listings) of the shared weekly excerpts."""
    grants = []
    for rel in SOURCES:
        for raw in iter_raw_documents(shared / rel):
            if isinstance(raw, RawDocument) and b"<us-patent-grant" in raw.data[:2000]:
                grants.append(raw.data)
    return grants


def build_weekly(path: Path, grants: list[bytes], megabytes: int) -> int:
    """Write a concatenated weekly file of about `megabytes` MB; returns the number of documents."""
    written = count = 0
    with open(path, "wb") as fh:
        while written < megabytes * 1_000_000:
            number = f"{30_000_000 + count:08d}".encode()
            doc = _PUB_NUMBER.sub(rb"\g<1>" + number, grants[count % len(grants)], count=1)
            fh.write(doc)
            written += len(doc)
            count += 1
    return count


def bench_lxml(docs: list[bytes]) -> float:
    start = time.perf_counter()
    for data in docs:
        etree.fromstring(data)
    return time.perf_counter() - start


def bench_patentsift(path: Path) -> tuple[float, int, int]:
    start = time.perf_counter()
    parsed = rejected = 0
    for raw in iter_raw_documents(path, source="bench"):
        if not isinstance(raw, RawDocument):
            rejected += 1
            continue
        parsed += len(parse_raw(raw, fetched_at="2024-01-01T00:00:00+00:00"))
    return time.perf_counter() - start, parsed, rejected


def bench_layers(path: Path) -> tuple[float, float]:
    """Where the time goes: splitting alone, and splitting + safe XML parsing without field extraction."""
    start = time.perf_counter()
    for _ in iter_raw_documents(path):
        pass
    t_split = time.perf_counter() - start
    start = time.perf_counter()
    for raw in iter_raw_documents(path):
        parse_xml(raw.data)
    return t_split, time.perf_counter() - start


def bench_stages(path: Path, repeat: int) -> dict[str, float]:
    """Seconds (best of `repeat`) each part of `uspto_ice.parse` takes over all documents, on parsed trees."""
    raws = [r for r in iter_raw_documents(path) if isinstance(r, RawDocument)]
    roots = [parse_xml(r.data) for r in raws]
    bibs = [root.find("us-bibliographic-data-grant") for root in roots]
    stages = {
        "description": lambda: [uspto_ice._paragraphs(root.find("description")) for root in roots],
        "abstract": lambda: [uspto_ice._paragraphs(root.find("abstract")) for root in roots],
        "claims": lambda: [uspto_ice._claims(root.find("claims")) for root in roots],
        "citations": lambda: [uspto_ice._citations(bib) for bib in bibs],
        "parties": lambda: [uspto_ice._parties(bib) for bib in bibs],
        "classifications": lambda: [(uspto_ice._ipc(b), uspto_ice._cpc(b), uspto_ice._other_classes(b)) for b in bibs],
        "whole parse()": lambda: [uspto_ice.parse(root, raw) for root, raw in zip(roots, raws, strict=True)],
    }
    out = {}
    for name, run in stages.items():
        best = float("inf")
        for _ in range(repeat):
            start = time.perf_counter()
            run()
            best = min(best, time.perf_counter() - start)
        out[name] = best
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=int, default=64, help="size of the generated weekly file in MB (default 64)")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each side; the best is reported (default 3)")
    ap.add_argument("--stages", action="store_true", help="time each ICE field extractor on already parsed trees")
    ap.add_argument("--profile", action="store_true", help="cProfile one patentsift run and print the top entries")
    ap.add_argument("--shared", type=Path, default=SHARED, help="the shared patent data directory")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="patentsift-bench-") as tmp:
        path = Path(tmp) / "ipg-bench.xml"
        count = build_weekly(path, real_grants(args.shared), args.mb)
        size = path.stat().st_size
        docs = [r.data for r in iter_raw_documents(path) if isinstance(r, RawDocument)]
        assert len(docs) == count, (len(docs), count)
        print(f"weekly file: {size / 1e6:.1f} MB, {count} ICE grant documents (avg {size / count / 1e3:.1f} kB)")

        t_lxml = min(bench_lxml(docs) for _ in range(args.repeat))
        del docs
        runs = [bench_patentsift(path) for _ in range(args.repeat)]
        t_ps, parsed, rejected = min(runs)
        mb = size / 1e6
        print(f"(a) plain lxml fromstring : {mb / t_lxml:8.1f} MB/s {count / t_lxml:9.1f} docs/s  ({t_lxml:.2f} s)")
        print(f"(b) split + parse_raw     : {mb / t_ps:8.1f} MB/s {count / t_ps:9.1f} docs/s  ({t_ps:.2f} s)"
              f"  [{parsed} parsed, {rejected} rejected]")
        print(f"ratio (b)/(a): {t_lxml / t_ps:.0%}  (goal >= 70%)")
        layers = [bench_layers(path) for _ in range(args.repeat)]
        t_split, t_safe = min(t for t, _ in layers), min(t for _, t in layers)
        print(f"    split only            : {mb / t_split:8.1f} MB/s  ({t_split:.2f} s)")
        print(f"    split + safe parse_xml: {mb / t_safe:8.1f} MB/s  ({t_safe:.2f} s)  "
              f"ratio to (a): {t_lxml / t_safe:.0%}; the rest of (b) is field extraction in the format parser")

        if args.stages:
            print("    field extraction (uspto_ice.parse, trees parsed beforehand), share of (a):")
            for name, seconds in bench_stages(path, args.repeat).items():
                print(f"      {name:16s}: {seconds:6.2f} s  {seconds / t_lxml:5.0%}")

        if args.profile:
            prof = cProfile.Profile()
            prof.runcall(bench_patentsift, path)
            stats = pstats.Stats(prof).strip_dirs()
            print("\n--- top functions by own time ---")
            stats.sort_stats("tottime").print_stats(18)
            print("--- top functions by cumulative time ---")
            stats.sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()
