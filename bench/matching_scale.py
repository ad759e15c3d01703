"""Matching at scale on the embedded backend: N new documents (real ones repeated under new numbers, vectors from
the embedding cache, warmed first: embedding time is the embeddings bench's) against P profiles built from real
IPC subclass titles. Goal: 10,000 x 1,000 under 60 s on 2 cores. Prints the time and per-stage breakdown.
The profiles repeat 33 titles, so BM25 sees few distinct phrases and the documents few distinct texts: real profile
sets and document streams cost more in the lexical and explain stages.

    .venv/bin/python bench/matching_scale.py [N_DOCS] [N_PROFILES]   (defaults: 10000 1000, the goal's size)
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.matching_quality import IPC_TITLES, load_corpus  # noqa: E402
from index.embedded import EmbeddedIndex  # noqa: E402
from index.model import PublicationNumber  # noqa: E402
from matching.engine import EngineOptions, MatchingEngine  # noqa: E402
from patentsift.wiring import standalone_match_store  # noqa: E402
from subscribers.profiles import Profile  # noqa: E402


def main() -> None:
    from matching.embedding_cache import EmbeddingCache
    from matching.embeddings import load_embedder

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n_docs", nargs="?", type=int, default=10_000, help="new documents (default 10000)")
    parser.add_argument("n_profiles", nargs="?", type=int, default=1_000, help="profiles (default 1000)")
    args = parser.parse_args()
    n_docs, n_profiles = args.n_docs, args.n_profiles
    real = load_corpus(ROOT.parent / "shared" / "data" / "patents")
    subclasses = sorted({c.subclass_symbol for d in real for c in d.ipc if c.subclass_symbol})
    titled = sorted(IPC_TITLES)
    with tempfile.TemporaryDirectory() as tmp:
        index = EmbeddedIndex(Path(tmp) / "index.sqlite")
        store = standalone_match_store(Path(tmp) / "p.sqlite")
        engine = MatchingEngine(index, store, load_embedder(), EmbeddingCache(Path(tmp) / "emb.sqlite"),
                                EngineOptions(batch_size=n_docs))
        t0 = time.perf_counter()
        index.upsert(real)
        engine.embed_documents(real)  # warm the cache: every synthetic document repeats one of these texts
        for i in range(n_profiles):  # profiles from real class titles, some with classes, queries, applicants
            sub = titled[i % len(titled)]
            words = [w for w in IPC_TITLES[sub].replace(";", ",").split(",") if w.strip()][:2]
            store.save_profile(Profile(
                name=f"p{i:05d}", description=IPC_TITLES[sub],
                query=" OR ".join(f'"{w.strip()}"' for w in words) if i % 2 else None,
                classes=[subclasses[i % len(subclasses)]] if i % 3 == 0 else [], threshold=0.4, max_items=20))
        engine.run()  # profiles' vectors + calibration (one-time, stored), watermark past the real documents
        setup = time.perf_counter() - t0
        t1 = time.perf_counter()
        synthetic = [dataclasses.replace(real[k % len(real)], pn=PublicationNumber("XX", f"{9_000_000 + k}", "A1"),
                                         application_number=f"XX{k}", family_id=None, priorities=[])
                     for k in range(n_docs)]
        index.upsert(synthetic)
        ingest = time.perf_counter() - t1
        t2 = time.perf_counter()
        report = engine.run()
        total = time.perf_counter() - t2
        n_matches = sum(len(v) for v in report.stored.values())
        index.close()
        store.close()
    print(f"setup {setup:.1f}s (profiles' vectors/calibration, once); indexing {n_docs} documents {ingest:.1f}s")
    print(f"matching {report.documents} new documents x {n_profiles} profiles: {total:.1f}s "
          f"({n_matches} matches stored){'  GOAL MET (<60 s)' if total < 60 else '  over the 60 s goal'}")
    for stage, secs in sorted(report.timings.items(), key=lambda kv: -kv[1]):
        print(f"  {stage:<16}{secs:>8.2f}s")


if __name__ == "__main__":
    main()
