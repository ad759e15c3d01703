"""Benchmark both index backends on the same documents: bulk ingest throughput and search latency.

    python bench/index_backends.py [--docs 3000] [--es-url http://127.0.0.1:9200] [--runs 20]
        [--only embedded|es] [--es-variants head-client,client,server] [--corpus generated|cycled]

The documents come from bench/corpus.py (seeded, varied, from the real fixtures; `--corpus cycled` repeats the
real documents under new numbers instead). Elasticsearch variants, all on the same node and corpus in one run:
  head-client  the committed backend (`git show <--baseline-ref>:index/elastic/*`), client-side analysis:
               the "before" figure
  head-server  the same committed backend with the node's own analysis
  client       this tree's backend with client-side analysis (the fallback on a node without the CJK filters)
  server       this tree's backend with the node's own analysis (`analyzers = "builtin"` on a node that has
               cjk_width/cjk_bigram, e.g. scripts/elasticsearch's default node)
Prints, per backend, bulk indexing throughput (docs/s) and search latency p50/p95 (ms) for a fixed query set.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import importlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

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


def generated(n: int, seed: int = 1) -> list[PatentDocument]:
    from bench.corpus import CorpusGenerator

    return list(CorpusGenerator(seed).documents(n))


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


def bench(name: str, open_index: Callable[[], Index], docs: Iterable[PatentDocument], n: int,
          runs: int) -> dict[str, float]:
    index = open_index()
    try:
        start = time.perf_counter()
        report = index.upsert(docs)
        load_s = time.perf_counter() - start
        assert not report.failed, report.failed[:3]
        assert index.count() == n, (index.count(), n)
        requests = [SearchRequest(parse_query(q), facets=("ipc", "year"), limit=10) for q in QUERY_SET]
        for r in requests:  # warm-up
            index.search(r)
        latencies = []
        for _ in range(runs):
            for r in requests:
                t0 = time.perf_counter()
                index.search(r)
                latencies.append((time.perf_counter() - t0) * 1000)
        out = {"docs": n, "index_s": load_s, "docs_per_s": n / load_s,
               "p50_ms": percentile(latencies, 50), "p95_ms": percentile(latencies, 95)}
        print(f"{name:14s} {out['docs']:6d} docs  index {out['index_s']:7.2f}s = {out['docs_per_s']:8.1f} docs/s   "
              f"search p50 {out['p50_ms']:7.2f} ms  p95 {out['p95_ms']:7.2f} ms  ({len(latencies)} searches)",
              flush=True)
        return out
    finally:
        drop = getattr(index, "drop", None)
        if drop:
            drop()
        index.close()


def baseline_elastic(ref: str, tmp: Path) -> type:
    """ElasticIndex as committed at `ref`, loaded from `git show` under another package name."""
    pkg = tmp / "ps_baseline_elastic"
    if pkg.exists():
        return importlib.import_module("ps_baseline_elastic").ElasticIndex  # type: ignore[no-any-return]
    pkg.mkdir()
    for mod in ("__init__", "backend", "mapping", "translate"):
        src = subprocess.run(["git", "-C", str(ROOT), "show", f"{ref}:index/elastic/{mod}.py"],
                             check=True, capture_output=True, text=True).stdout
        (pkg / f"{mod}.py").write_text(src.replace("index.elastic", "ps_baseline_elastic"))
    sys.path.insert(0, str(tmp))
    return importlib.import_module("ps_baseline_elastic").ElasticIndex  # type: ignore[no-any-return]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=3000)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--corpus", choices=["generated", "cycled"], default="generated")
    ap.add_argument("--es-url", default=os.environ.get("PATENTSIFT_ES_URL", "http://127.0.0.1:9200"))
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/patents")
    ap.add_argument("--only", choices=["embedded", "es"])
    ap.add_argument("--es-variants", default="client,server",
                    help="comma-separated: head-client, head-server (the committed backend), client, server")
    ap.add_argument("--baseline-ref", default="HEAD")
    ap.add_argument("--bulk-threads", type=int, default=2)
    args = ap.parse_args(argv)
    if args.corpus == "cycled":
        docs = corpus(Path(os.environ.get("PATENTSIFT_SHARED_DATA", args.data)), args.docs)
    else:
        docs = generated(args.docs, args.seed)
    print(f"{len(docs)} documents ({args.corpus}, {sum(len(d.description) for d in docs) / 1e6:.1f} MB description "
          f"text), {len(QUERY_SET)} queries x {args.runs} runs")
    with tempfile.TemporaryDirectory() as tmp:
        if args.only in (None, "embedded"):
            from index.embedded import EmbeddedIndex

            bench("embedded", lambda: EmbeddedIndex(Path(tmp) / "bench.sqlite"), docs, len(docs), args.runs)
        if args.only in (None, "es"):
            from index.elastic import ElasticIndex

            for variant in [v.strip() for v in args.es_variants.split(",") if v.strip()]:
                prefix = f"psbench-{os.getpid()}-{variant}"
                opener: Callable[[], Index]
                if variant == "head-client":
                    opener = functools.partial(baseline_elastic(args.baseline_ref, Path(tmp)), args.es_url,
                                               index_prefix=prefix, chunk_size=500, analyzers="client")
                elif variant == "head-server":
                    opener = functools.partial(baseline_elastic(args.baseline_ref, Path(tmp)), args.es_url,
                                               index_prefix=prefix, analyzers="builtin",
                                               bulk_threads=args.bulk_threads)
                elif variant in ("client", "server"):
                    opener = functools.partial(ElasticIndex, args.es_url, index_prefix=prefix,
                                               analyzers="client" if variant == "client" else "builtin",
                                               bulk_threads=args.bulk_threads)
                else:
                    raise SystemExit(f"unknown variant {variant!r}")
                probe = opener()
                mode = getattr(probe, "mode", "?")
                probe.drop()  # type: ignore[attr-defined]
                probe.close()
                bench(f"es-{variant}" + ("" if mode in variant else f"({mode})"), opener, docs, len(docs), args.runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
