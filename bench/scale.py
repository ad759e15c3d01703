"""Scale bench: how ingest, search, disk and memory grow with the corpus, on each backend.

    python bench/scale.py [--sizes 10000,100000] [--backends embedded,es] [--es-url URL] [--runs 5] [--seed 1]
    python bench/scale.py --knn 5000 [--es-url URL]      # recall@10 of the node's kNN vs exact search
    python bench/scale.py --from-json a.json b.json --plot /tmp/scale   # table + SVG charts of earlier runs

For each size and backend, in a fresh process (so its peak memory is its own), the generated corpus
(bench/corpus.py, same seed: the same documents for both backends) is loaded into an empty index, then:
* ingest: documents/s from the first document to the last one searchable (`upsert` returns after a refresh;
  the count is checked);
* search latency p50/p95 (ms, limit 10, highlights on) per query kind, each kind a set of queries built from
  the corpus's own words and classes, every query run `--runs` times after one warm-up pass:
  term, phrase, boolean with classes, facets (every facet), CJK, date range, sorted (filter-only, newest first);
* disk: the SQLite files / the Elasticsearch index's primary store after a flush;
* peak memory: the bench process's peak RSS (for the embedded index that is the index); for Elasticsearch also
  the node's peak RSS (VmHWM; heap included) when the node runs on this machine.
Prints one table (and `--json FILE` writes the rows).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

KINDS = ("term", "phrase", "bool+class", "facets", "cjk", "date", "sorted")


def query_set(seed: int, docs_sample: list[Any]) -> dict[str, list[str]]:
    """Queries per kind from a sample of the generated documents (words that occur, classes that exist)."""
    from index.analysis import analyze

    rng = random.Random(f"queries-{seed}")
    en = [d for d in docs_sample if (d.lang or "en") == "en"]
    zh = [d for d in docs_sample if d.lang in ("zh", "ja")]
    words = sorted({w for d in en for w in d.title().lower().split() if w.isalpha() and len(w) > 4})
    pairs = sorted({" ".join(p) for d in en for p in zip(d.title().split(), d.title().split()[1:], strict=False)
                    if all(w.isalpha() and len(w) > 3 for w in p)})
    subclasses = sorted({c.subclass_symbol for d in docs_sample for c in d.ipc if c.subclass_symbol})
    cjk = sorted({t for d in zh for t in analyze(d.title()) if len(t) == 2})
    pick = lambda xs, k: rng.sample(xs, min(k, len(xs)))  # noqa: E731
    w = pick(words, 20)
    return {
        "term": w[:10],
        "phrase": [f'"{p}"' for p in pick(pairs, 10)],
        "bool+class": [f"({a} OR {b}) AND ipc:{c}" for a, b, c in
                       zip(w[:10], w[10:20], pick(subclasses, 10) * 2, strict=False)],
        "facets": w[:5] + ["*"],
        "cjk": pick(cjk, 10),
        "date": [f"{a} AND pd:[{y}-01-01 TO {y + 2}-12-31]" for a, y in zip(w[:10], range(2004, 2024, 2), strict=False)],
        "sorted": [f"ipc:{c} AND pd>={y}" for c, y in zip(pick(subclasses, 10), range(2000, 2020, 2), strict=False)],
    }


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def node_peak_rss_mb(url: str) -> float | None:
    """The local node's VmHWM (peak resident set), found through its process id."""
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/_nodes/_local/process", timeout=5) as resp:
            nodes = json.load(resp)["nodes"]
        pid = next(iter(nodes.values()))["process"]["id"]
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, KeyError, StopIteration, ValueError):
        return None
    return None


def worker(backend: str, n: int, seed: int, runs: int, es_url: str, tmp: Path) -> dict[str, Any]:
    from bench.corpus import CorpusGenerator
    from index.base import FACETS, SearchRequest
    from index.query.parser import parse_query

    gen = CorpusGenerator(seed)
    queries = query_set(seed, list(gen.documents(min(n, 2000))))
    if backend == "embedded":
        from index.embedded import EmbeddedIndex

        index: Any = EmbeddedIndex(tmp / "scale.sqlite")
    else:
        from index.elastic import ElasticIndex

        index = ElasticIndex(es_url, index_prefix=f"psscale-{os.getpid()}")
    row: dict[str, Any] = {"backend": backend + (f"({index.mode})" if backend == "es" else ""), "docs": n}
    try:
        t0 = time.perf_counter()
        report = index.upsert(gen.documents(n))
        assert not report.failed, report.failed[:3]
        assert index.count() == n, (index.count(), n)
        row["ingest_docs_s"] = n / (time.perf_counter() - t0)
        for kind in KINDS:
            reqs = [SearchRequest(parse_query(q), limit=10, facets=FACETS if kind == "facets" else ())
                    for q in queries[kind]]
            for r in reqs:
                index.search(r)  # warm-up
            lat = []
            for _ in range(runs):
                for r in reqs:
                    s = time.perf_counter()
                    index.search(r)
                    lat.append((time.perf_counter() - s) * 1000)
            row[f"{kind}_p50"] = percentile(lat, 50)
            row[f"{kind}_p95"] = percentile(lat, 95)
        if backend == "embedded":
            row["disk_mb"] = sum(p.stat().st_size for p in tmp.glob("scale.sqlite*")) / 1e6
        else:
            index.es.indices.flush(index=index.alias)
            stats = index.es.indices.stats(index=index.alias, metric="store")
            row["disk_mb"] = stats["_all"]["primaries"]["store"]["size_in_bytes"] / 1e6
            row["node_peak_mb"] = node_peak_rss_mb(es_url)
        row["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    finally:
        if backend == "es":
            index.drop()
        index.close()
    return row


def knn_recall(es_url: str, n: int, seed: int, queries: int = 200, k: int = 10) -> dict[str, Any]:
    """Recall@k of the node's approximate kNN (int8 HNSW) against exact cosine search over the same vectors:
    n generated documents embedded with the default model (title + abstract), queried with the vectors of
    `queries` further generated documents (new publications looking for their nearest indexed ones)."""
    import numpy as np

    from bench.corpus import CorpusGenerator
    from index.elastic import ElasticIndex
    from matching.embeddings import load_embedder

    gen = CorpusGenerator(seed, max_description=2000)
    docs = list(gen.documents(n))
    probes = list(gen.documents(queries, start=n))
    embedder = load_embedder()
    t0 = time.perf_counter()
    vecs = embedder.encode([f"{d.title()}. {d.abstract()}" for d in docs + probes])
    embed_s = time.perf_counter() - t0
    vecs = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
    base, qs = vecs[:n], vecs[n:]
    index = ElasticIndex(es_url, index_prefix=f"psknn-{os.getpid()}", vector_dims=int(vecs.shape[1]))
    try:
        assert not index.upsert(docs).failed
        t0 = time.perf_counter()
        index.set_vectors({d.id: base[i].tolist() for i, d in enumerate(docs)})
        vectors_s = time.perf_counter() - t0
        ids = [d.id for d in docs]
        recalls, lat = [], []
        for q in qs:
            exact = {ids[i] for i in np.argsort(-(base @ q))[:k]}
            s = time.perf_counter()
            got = [h.id for h in index.knn(q.tolist(), k)]
            lat.append((time.perf_counter() - s) * 1000)
            recalls.append(len(exact & set(got)) / k)
        mapping = index.es.indices.get_mapping(index=index.alias)
        kind = next(iter(mapping.body.values()))["mappings"]["properties"]["vec"]["index_options"]["type"]
    finally:
        index.drop()
        index.close()
    return {"docs": n, "dims": int(vecs.shape[1]), "index": kind, "queries": queries, "k": k,
            "recall": float(np.mean(recalls)), "min_recall": float(np.min(recalls)),
            "knn_p50": percentile(lat, 50), "knn_p95": percentile(lat, 95),
            "embed_s": embed_s, "set_vectors_docs_s": n / vectors_s}


def table(rows: list[dict[str, Any]]) -> str:
    head = ["backend", "docs", "ingest/s"] + [f"{k} p50/p95" for k in KINDS] + ["disk MB", "peak RSS MB"]
    lines = [" | ".join(head), " | ".join("---" for _ in head)]
    for r in rows:
        mem = f"{r['peak_rss_mb']:.0f}"
        if r.get("node_peak_mb"):
            mem += f" + node {r['node_peak_mb']:.0f}"
        cells = [r["backend"], f"{r['docs']:,}", f"{r['ingest_docs_s']:.0f}"]
        cells += [f"{r[f'{k}_p50']:.1f} / {r[f'{k}_p95']:.1f}" for k in KINDS]
        cells += [f"{r['disk_mb']:.0f}", mem]
        lines.append(" | ".join(cells))
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], prefix: Path) -> list[Path]:
    """How each cost grows: SVG line charts (pygal, log-scaled sizes) of search p95 per query kind and backend,
    ingest rate and disk size, written next to `prefix` (PREFIX-latency.svg, PREFIX-ingest.svg, PREFIX-disk.svg)."""
    import pygal

    backends = sorted({r["backend"] for r in rows})
    out = []

    def chart(name: str, title: str, y_title: str, series: dict[str, list[tuple[float, float]]]) -> None:
        c = pygal.XY(title=title, x_title="documents (log scale)", y_title=y_title, logarithmic=False,
                     show_dots=True, dots_size=3, legend_at_bottom=True, legend_at_bottom_columns=3, width=900,
                     height=620, js=[], x_value_formatter=lambda x: f"{10 ** x:,.0f}")
        for label, pts in series.items():
            c.add(label, [(math.log10(n), v) for n, v in sorted(pts)])
        path = prefix.with_name(f"{prefix.name}-{name}.svg")
        path.write_bytes(c.render())
        out.append(path)

    chart("latency", "Search latency p95 by query kind", "ms",
          {f"{b} {k}": [(r["docs"], r[f"{k}_p95"]) for r in rows if r["backend"] == b] for b in backends for k in KINDS})
    chart("ingest", "Harvest-to-searchable ingest", "documents/s",
          {b: [(r["docs"], r["ingest_docs_s"]) for r in rows if r["backend"] == b] for b in backends})
    chart("disk", "Disk size", "MB", {b: [(r["docs"], r["disk_mb"]) for r in rows if r["backend"] == b] for b in backends})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000")
    ap.add_argument("--backends", default="embedded,es")
    ap.add_argument("--es-url", default=os.environ.get("PATENTSIFT_ES_URL", "http://127.0.0.1:9200").split(",")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", type=Path, help="write the rows (JSON)")
    ap.add_argument("--from-json", type=Path, nargs="+", metavar="FILE",
                    help="no run: the table (and --plot) of rows written by earlier runs' --json")
    ap.add_argument("--plot", type=Path, metavar="PREFIX", help="write PREFIX-latency/-ingest/-disk.svg")
    ap.add_argument("--knn", type=int, metavar="N", help="only: recall@10 of Elasticsearch kNN on N documents")
    ap.add_argument("--worker", nargs=2, metavar=("BACKEND", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.knn:
        r = knn_recall(args.es_url, args.knn, args.seed)
        print(f"kNN ({r['index']}, {r['dims']} dims) on {r['docs']:,} documents, {r['queries']} queries: "
              f"recall@{r['k']} {r['recall']:.3f} (worst query {r['min_recall']:.1f}), latency p50 "
              f"{r['knn_p50']:.1f} ms p95 {r['knn_p95']:.1f} ms; embedding {r['embed_s']:.0f}s, "
              f"set_vectors {r['set_vectors_docs_s']:.0f} docs/s")
        return 0
    if args.worker:
        with tempfile.TemporaryDirectory() as tmp:
            row = worker(args.worker[0], int(args.worker[1]), args.seed, args.runs, args.es_url, Path(tmp))
        print("ROW " + json.dumps(row), flush=True)
        return 0
    rows: list[dict[str, Any]] = []
    if args.from_json:
        rows = sorted((r for f in args.from_json for r in json.loads(f.read_text())),
                      key=lambda r: (r["backend"], r["docs"]))
        print(table(rows))
        for path in plot(rows, args.plot) if args.plot else []:
            print(f"wrote {path}")
        return 0
    for n in [int(s) for s in args.sizes.split(",")]:
        for backend in args.backends.split(","):
            t0 = time.perf_counter()
            out = subprocess.run([sys.executable, __file__, "--worker", backend, str(n), "--seed", str(args.seed),
                                  "--runs", str(args.runs), "--es-url", args.es_url],
                                 capture_output=True, text=True)
            line = next((ln for ln in out.stdout.splitlines() if ln.startswith("ROW ")), None)
            if out.returncode or line is None:
                print(f"{backend} {n}: failed\n{out.stderr[-3000:]}", file=sys.stderr)
                continue
            rows.append(json.loads(line[4:]))
            print(f"{backend} {n:,} done in {time.perf_counter() - t0:.0f}s (load {os.getloadavg()[0]:.1f})",
                  file=sys.stderr, flush=True)
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    for path in plot(rows, args.plot) if args.plot else []:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
