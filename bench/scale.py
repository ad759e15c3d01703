"""Scale bench: how ingest, search, disk and memory grow with the corpus, on each backend.

    python bench/scale.py [--sizes 10000,100000] [--backends embedded,es] [--es-url URL] [--runs 5] [--seed 1]
    python bench/scale.py --knn 20000 [--backends es] [--cache FILE]   # kNN recall@10 vs exact; preview full vs kNN
    python bench/scale.py --from-json a.json b.json --plot /tmp/scale   # table + SVG charts of earlier runs

For each size and backend, in a fresh process (so its peak memory is its own), the generated corpus
(bench/corpus.py, same seed: the same documents for both backends) is loaded into an empty index, then:
* ingest: documents/s from the first document to the last one searchable (`upsert` returns after a refresh;
  the count is checked);
* Elasticsearch only: the seconds until the load's background merges end (`settle_s`), before searching;
* search latency p50/p95 (ms, limit 10, highlights on) per query kind, each kind a set of queries built from
  the corpus's own words and classes, every query run `--runs` times after one warm-up pass:
  term, phrase, boolean with classes, facets (every facet), CJK, date range, sorted (filter-only, newest first);
* disk: the SQLite files / the Elasticsearch index's primary store after a flush;
* peak memory: the bench process's peak RSS (for the embedded index that is the index); for Elasticsearch also
  the node's peak RSS (VmHWM; heap included) when the node runs on this machine.
Prints one table (and `--json FILE` writes the rows, with `<kind>_first_p95`: the first run of each query, before
any cache holds it). PATENTSIFT_SCALE_KEEP=1 leaves the Elasticsearch index in place; PATENTSIFT_SCALE_REUSE=<its
prefix> then times searches on it again without loading.
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
from collections.abc import Iterator
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


def _progress(docs: Iterator[Any], n: int, t0: float, what: str) -> Iterator[Any]:
    """Pass the documents through, printing to stderr how far the load is every tenth of the way."""
    step = max(1, n // 10)
    for i, doc in enumerate(docs, 1):
        yield doc
        if i % step == 0 and i < n:
            rate = i / (time.perf_counter() - t0)
            print(f"  {what}: {i:,} documents handed over, {rate:.0f}/s, ~{(n - i) / rate:.0f} s to go",
                  file=sys.stderr, flush=True)


def settle(es: Any, index: str, limit_s: float = 1800) -> float:
    """Wait until the node has no merge running on `index` (checked on three polls in a row); seconds waited."""
    t0 = time.perf_counter()
    quiet = 0
    while quiet < 3 and time.perf_counter() - t0 < limit_s:
        current = es.indices.stats(index=index, metric="merge")["_all"]["total"]["merges"]["current"]
        quiet = quiet + 1 if current == 0 else 0
        time.sleep(2)
    return time.perf_counter() - t0


def worker(backend: str, n: int, seed: int, runs: int, es_url: str, tmp: Path) -> dict[str, Any]:
    from bench.corpus import CorpusGenerator
    from index.base import FACETS, SearchRequest
    from index.query.parser import parse_query

    reuse = os.environ.get("PATENTSIFT_SCALE_REUSE")  # the prefix of an index a KEEP run left: search only
    gen = CorpusGenerator(seed)
    queries = query_set(seed, list(gen.documents(min(n, 2000))))
    if backend == "embedded":
        from index.embedded import EmbeddedIndex

        index: Any = EmbeddedIndex(tmp / "scale.sqlite")
    else:
        from index.elastic import ElasticIndex

        index = ElasticIndex(es_url, index_prefix=reuse or f"psscale-{os.getpid()}")
    row: dict[str, Any] = {"backend": backend + (f"({index.mode})" if backend == "es" else ""), "docs": n}
    try:
        t0 = time.perf_counter()
        if not reuse or backend == "embedded":
            report = index.upsert(_progress(gen.documents(n), n, t0, f"{backend} {n:,}"))
            assert not report.failed, report.failed[:3]
            row["ingest_docs_s"] = n / (time.perf_counter() - t0)
        assert index.count() == n, (index.count(), n)
        if backend == "es":  # searches are timed on a settled index, not beside the load's own merges
            row["settle_s"] = settle(index.es, index.alias)
        for kind in KINDS:
            reqs = [SearchRequest(parse_query(q), limit=10, facets=FACETS if kind == "facets" else ())
                    for q in queries[kind]]
            first = []
            for r in reqs:  # the first run of each query (nothing cached for it yet) also warms up
                s = time.perf_counter()
                index.search(r)
                first.append((time.perf_counter() - s) * 1000)
            row[f"{kind}_first_p95"] = percentile(first, 95)
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
        if backend == "es" and not os.environ.get("PATENTSIFT_SCALE_KEEP"):
            index.drop()
        index.close()
    return row


def knn_bench(backend: str, es_url: str, n: int, seed: int, cache_path: Path | None, tmp: Path,
              queries: int = 200, k: int = 10, profiles: int = 6, runs: int = 2) -> dict[str, Any]:
    """On n generated documents embedded with the default model (`document_text`, through an embedding cache,
    as matching embeds them) and stored in the index, tagged with the model:
    * recall@k of the index's kNN against exact cosine over the same vectors, queried with the vectors of
      `queries` further generated documents (new publications looking for their nearest indexed ones), with its
      latency; on Elasticsearch also without the float-vector rescoring (the int8 scores alone);
    * `profiles` interest profiles made from further generated documents (description, some with watched classes
      or applicants), each previewed over the newest <= 9,000 documents (under the full path's 10,000 limit) by
      the full path (every document of the window scored) and by the kNN path: time (best of `runs`, after one
      warm-up that calibrates the profile), candidates scored, and whether the matches are the same."""
    import numpy as np

    from bench.corpus import CorpusGenerator
    from index.base import Filters, SearchRequest
    from index.query.ast import MatchAll
    from matching.embedding_cache import EmbeddingCache
    from matching.embeddings import document_text, load_embedder
    from matching.engine import MatchingEngine
    from patentsift.wiring import standalone_match_store
    from subscribers.profiles import Profile, validate_profile

    gen = CorpusGenerator(seed, max_description=2000)
    docs = list(gen.documents(n))
    probes = list(gen.documents(queries + profiles, start=n))
    embedder = load_embedder()
    cache = EmbeddingCache(cache_path or tmp / "embeddings.sqlite")
    t0 = time.perf_counter()
    vecs = cache.embed([document_text(d) for d in docs + probes], embedder)
    embed_s = time.perf_counter() - t0
    vecs = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
    base, qs = vecs[:n], vecs[n:n + queries]
    index: Any
    if backend == "embedded":
        from index.embedded import EmbeddedIndex

        index = EmbeddedIndex(tmp / "knn.sqlite")
    else:
        from index.elastic import ElasticIndex

        index = ElasticIndex(es_url, index_prefix=f"psknn-{os.getpid()}", vector_dims=int(vecs.shape[1]))
    row: dict[str, Any] = {"backend": backend, "docs": n, "dims": int(vecs.shape[1]), "queries": queries, "k": k,
                           "embed_s": embed_s}
    store = standalone_match_store(tmp / "patentsift.sqlite")
    try:
        t0 = time.perf_counter()
        assert not index.upsert(docs).failed
        index.set_vectors({d.id: base[i].tolist() for i, d in enumerate(docs)})
        index.set_vector_model(embedder.model_id)
        row["load_s"] = time.perf_counter() - t0
        ids = [d.id for d in docs]
        exact = [{ids[i] for i in np.argsort(-(base @ q))[:k]} for q in qs]
        passes = [("", True), ("_int8", False)] if backend == "es" else [("", True)]
        for suffix, rescore in passes:
            if backend == "es":
                index._rescore = rescore
            index.knn(qs[0].tolist(), k)  # warm-up
            recalls, lat = [], []
            for q, want in zip(qs, exact, strict=True):
                s = time.perf_counter()
                got = [h.id for h in index.knn(q.tolist(), k)]
                lat.append((time.perf_counter() - s) * 1000)
                recalls.append(len(want & set(got)) / k)
            row[f"recall{suffix}"] = float(np.mean(recalls))
            row[f"min_recall{suffix}"] = float(np.min(recalls))
            row[f"knn_p50{suffix}"] = percentile(lat, 50)
            row[f"knn_p95{suffix}"] = percentile(lat, 95)
        if backend == "es":
            index._rescore = True
            mapping = index.es.indices.get_mapping(index=index.alias)
            row["index"] = next(iter(mapping.body.values()))["mappings"]["properties"]["vec"]["index_options"]["type"]
        else:
            row["index"] = "brute force"
        dates = sorted((d.publication_date for d in docs if d.publication_date), reverse=True)
        since = dates[min(len(dates), 9000) - 1]
        row["since"] = since.isoformat()
        row["window"] = index.search(SearchRequest(MatchAll(), Filters(published_from=since), limit=0)).total
        engine = MatchingEngine(index, store, embedder, cache)
        previews = []
        for j, probe in enumerate(probes[queries:]):
            prof = validate_profile(Profile(
                name=f"bench-{j}", description=document_text(probe)[:400], threshold=0.3, max_items=20,
                classes=[probe.ipc[0].symbol[:4]] if j % 2 == 0 and probe.ipc else [],
                applicants=[probe.applicants[0].name] if j % 3 == 0 and probe.applicants else []))
            store.save_profile(prof)
            engine.preview(prof.name, since)  # warm-up: calibrates the profile (stored), as a profile in use is
            out: dict[str, Any] = {}
            for path, knn in (("full", False), ("knn", True)):
                best = float("inf")
                for _ in range(runs):
                    s = time.perf_counter()
                    matches = engine.preview(prof.name, since, limit=10_000, knn=knn)
                    best = min(best, time.perf_counter() - s)
                assert engine.last_preview is not None and engine.last_preview.path == path
                out[path] = ([(m.doc.id, m.score) for m in matches], best, engine.last_preview.candidates)
            (full, full_s, full_n), (fast, fast_s, fast_n) = out["full"], out["knn"]
            full_ids, fast_ids = [i for i, _ in full], [i for i, _ in fast]
            previews.append({"profile": prof.name, "matches": len(full), "same": full == fast,
                             "overlap": len(set(full_ids) & set(fast_ids)) / max(1, len(full_ids)),
                             "full_s": full_s, "knn_s": fast_s, "full_candidates": full_n, "knn_candidates": fast_n})
        row["previews"] = previews
    finally:
        store.close()
        if backend == "es":
            index.drop()
        index.close()
        cache.close()
    return row


def knn_report(r: dict[str, Any]) -> str:
    lines = [f"{r['backend']}: kNN ({r['index']}, {r['dims']} dims) on {r['docs']:,} documents, {r['queries']} "
             f"queries: recall@{r['k']} {r['recall']:.3f} (worst query {r['min_recall']:.1f}), latency p50 "
             f"{r['knn_p50']:.1f} ms p95 {r['knn_p95']:.1f} ms"]
    if "recall_int8" in r:
        lines.append(f"  without rescoring (int8 scores only): recall@{r['k']} {r['recall_int8']:.3f} (worst "
                     f"{r['min_recall_int8']:.1f}), p50 {r['knn_p50_int8']:.1f} ms p95 {r['knn_p95_int8']:.1f} ms")
    lines.append(f"  embedding {r['embed_s']:.0f}s (cache), load + vectors {r['load_s']:.0f}s; previews since "
                 f"{r['since']} ({r['window']:,} documents in the window), best of runs:")
    lines.append("  profile | matches | same as full | overlap | full s (candidates) | knn s (candidates) | ratio")
    for p in r["previews"]:
        lines.append(f"  {p['profile']} | {p['matches']} | {'yes' if p['same'] else 'no'} | {p['overlap']:.2f} | "
                     f"{p['full_s']:.2f} ({p['full_candidates']:,}) | {p['knn_s']:.2f} ({p['knn_candidates']:,}) | "
                     f"{p['full_s'] / p['knn_s']:.1f}x")
    full = sum(p["full_s"] for p in r["previews"])
    fast = sum(p["knn_s"] for p in r["previews"])
    same = sum(1 for p in r["previews"] if p["same"])
    lines.append(f"  total: full {full:.1f}s, knn {fast:.1f}s ({full / fast:.1f}x faster); identical matches "
                 f"{same}/{len(r['previews'])}, mean overlap "
                 f"{sum(p['overlap'] for p in r['previews']) / len(r['previews']):.3f}")
    return "\n".join(lines)


def table(rows: list[dict[str, Any]]) -> str:
    head = ["backend", "docs", "ingest/s"] + [f"{k} p50/p95" for k in KINDS] + ["disk MB", "peak RSS MB"]
    lines = [" | ".join(head), " | ".join("---" for _ in head)]
    for r in rows:
        mem = f"{r['peak_rss_mb']:.0f}"
        if r.get("node_peak_mb"):
            mem += f" + node {r['node_peak_mb']:.0f}"
        cells = [r["backend"], f"{r['docs']:,}", f"{r['ingest_docs_s']:.0f}" if r.get('ingest_docs_s') else "-"]
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
                     height=720, js=[], x_value_formatter=lambda x: f"{10 ** x:,.0f}")
        c.x_labels = sorted({math.log10(r["docs"]) for r in rows})  # ticks at the measured sizes
        for label, pts in series.items():
            c.add(label, [(math.log10(n), v) for n, v in sorted(pts)])
        path = prefix.with_name(f"{prefix.name}-{name}.svg")
        path.write_bytes(c.render())
        out.append(path)

    chart("latency", "Search latency p95 by query kind", "ms",
          {f"{b} {k}": [(r["docs"], r[f"{k}_p95"]) for r in rows if r["backend"] == b] for b in backends for k in KINDS})
    chart("ingest", "Harvest-to-searchable ingest", "documents/s",
          {b: [(r["docs"], r["ingest_docs_s"]) for r in rows if r["backend"] == b and r.get("ingest_docs_s")] for b in backends})
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
    ap.add_argument("--knn", type=int, metavar="N",
                    help="only: recall@10 of each backend's kNN and preview time, full vs kNN path, on N documents")
    ap.add_argument("--cache", type=Path, help="--knn: embedding cache file (kept: a rerun embeds nothing)")
    ap.add_argument("--worker", nargs=2, metavar=("BACKEND", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.knn:
        rows = []
        for backend in args.backends.split(","):
            with tempfile.TemporaryDirectory() as tmp:
                rows.append(knn_bench(backend, args.es_url, args.knn, args.seed, args.cache, Path(tmp)))
            print(knn_report(rows[-1]), flush=True)
        if args.json:
            args.json.write_text(json.dumps(rows, indent=1))
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
                                 stdout=subprocess.PIPE, text=True)  # its progress and errors: on stderr
            line = next((ln for ln in out.stdout.splitlines() if ln.startswith("ROW ")), None)
            if out.returncode or line is None:
                print(f"{backend} {n}: failed (exit {out.returncode}; its error is above)", file=sys.stderr)
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
