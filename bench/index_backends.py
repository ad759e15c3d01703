"""Benchmark both index backends on the same real documents, repeated under new publication numbers.

    python bench/index_backends.py [--docs 3000] [--es-url http://127.0.0.1:9200] [--runs 20]

Prints bulk indexing throughput (docs/s) and search latency p50/p95 (ms) for a fixed query set per backend.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from index.base import Index, SearchRequest  # noqa: E402
from index.model import PatentDocument, PublicationNumber  # noqa: E402
from index.query.parser import parse_query  # noqa: E402

QUERY_SET = [
    "battery", "shielding AND electromagnetic", '"light emitting"', "shield*", "battery OR vacuum OR razor",
    "ipc:H05K", "pd:[2014-01-01 TO 2015-12-31]", "显示设备", "NOT shielding", "pa:raytheon AND pd>=2020",
]


def corpus(root: Path, n: int) -> list[PatentDocument]:
    """The real documents, cycled under new numbers (`<number>9<copy>`) until there are `n`."""
    from tests.integration.test_conformance import load_corpus

    base = load_corpus(root)
    out: list[PatentDocument] = []
    copy = 0
    while len(out) < n:
        for doc in base:
            if len(out) >= n:
                break
            pn = PublicationNumber(doc.pn.country, f"{doc.pn.number}9{copy:04d}", doc.pn.kind) if copy else doc.pn
            out.append(dataclasses.replace(doc, pn=pn))
        copy += 1
    return out


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


def bench(name: str, open_index: Callable[[], Index], docs: list[PatentDocument], runs: int) -> dict[str, float]:
    index = open_index()
    try:
        start = time.perf_counter()
        report = index.upsert(docs)
        load_s = time.perf_counter() - start
        assert not report.failed, report.failed[:3]
        assert index.count() == len(docs)
        requests = [SearchRequest(parse_query(q), facets=("ipc", "year"), limit=10) for q in QUERY_SET]
        for r in requests:  # warm-up
            index.search(r)
        latencies = []
        for _ in range(runs):
            for r in requests:
                t0 = time.perf_counter()
                index.search(r)
                latencies.append((time.perf_counter() - t0) * 1000)
        out = {"docs": len(docs), "index_s": load_s, "docs_per_s": len(docs) / load_s,
               "p50_ms": percentile(latencies, 50), "p95_ms": percentile(latencies, 95)}
        print(f"{name:9s} {out['docs']:6d} docs  index {out['index_s']:7.2f}s = {out['docs_per_s']:8.1f} docs/s   "
              f"search p50 {out['p50_ms']:7.2f} ms  p95 {out['p95_ms']:7.2f} ms  ({len(latencies)} searches)")
        return out
    finally:
        drop = getattr(index, "drop", None)
        if drop:
            drop()
        index.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=3000)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--es-url", default=os.environ.get("PATENTSIFT_ES_URL", "http://127.0.0.1:9200"))
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/patents")
    ap.add_argument("--only", choices=["embedded", "es"])
    args = ap.parse_args(argv)
    docs = corpus(Path(os.environ.get("PATENTSIFT_SHARED_DATA", args.data)), args.docs)
    print(f"{len(docs)} documents ({sum(len(d.description) for d in docs) / 1e6:.1f} MB description text), "
          f"{len(QUERY_SET)} queries x {args.runs} runs")
    with tempfile.TemporaryDirectory() as tmp:
        if args.only in (None, "embedded"):
            from index.embedded import EmbeddedIndex

            bench("embedded", lambda: EmbeddedIndex(Path(tmp) / "bench.sqlite"), docs, args.runs)
        if args.only in (None, "es"):
            from index.elastic import ElasticIndex

            bench("es", lambda: ElasticIndex(args.es_url, index_prefix=f"psbench-{os.getpid()}", chunk_size=500),
                  docs, args.runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
