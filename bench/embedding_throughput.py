"""Embedding throughput: plain SentenceTransformer.encode vs patentsift's fast path, and the ranking it keeps.

    .venv/bin/python bench/embedding_throughput.py [--texts 300] [--rounds 2] [--model PATH_OR_NAME]

Texts are titles + abstracts of the real fixture documents (../shared/data/patents), made up to --texts with
abstract-only and title-only variants and, if still short, repeats. Each timing is the best of --rounds runs,
the variants interleaved (the CPU is shared). Recall@10 compares each distinct text's 10 nearest neighbours under
torch vectors with those under fast-path vectors. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harvest.ingest import parse_path  # noqa: E402
from matching.embedding_cache import EmbeddingCache  # noqa: E402
from matching.embeddings import TorchEmbedder, load_embedder, resolve_model  # noqa: E402

DATA = Path(os.environ.get("PATENTSIFT_SHARED_DATA", ROOT.parent / "shared" / "data" / "patents"))


def fixture_texts(n: int) -> tuple[list[str], int]:
    """n texts (titles + abstracts first) and how many of them are distinct."""
    full: list[str] = []
    variants: list[str] = []
    for doc in parse_path(DATA):
        title, abstract = doc.title().strip(), " ".join(doc.abstract().split())
        if title and abstract:
            full.append(f"{title}\n{abstract}")
            variants += [abstract, title]
    pool = list(dict.fromkeys(full + variants))
    texts = (pool * (n // max(1, len(pool)) + 1))[:n]
    return texts, len(set(texts))


def best_time(fn: Callable[[], object], rounds: int, setup: Callable[[], None] | None = None) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(rounds):
        if setup:
            setup()
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def recall_at_k(reference: np.ndarray, candidate: np.ndarray, k: int = 10) -> float:
    """Mean overlap of each row's k nearest neighbours (itself excluded) under both sets of vectors."""
    def neighbours(vectors: np.ndarray) -> np.ndarray:
        sims = vectors @ vectors.T
        np.fill_diagonal(sims, -np.inf)
        return np.argsort(-sims, axis=1)[:, :k]

    ref, cand = neighbours(reference), neighbours(candidate)
    return float(np.mean([len(set(r) & set(c)) / k for r, c in zip(ref, cand, strict=True)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--model", default=None)
    args = parser.parse_args()

    texts, distinct = fixture_texts(args.texts)
    print(f"texts: {len(texts)} ({distinct} distinct) from {DATA}")
    spec = resolve_model(args.model)
    torch_embedder = load_embedder(args.model, backend="torch", center_languages=False)
    assert isinstance(torch_embedder, TorchEmbedder)
    plain = torch_embedder.model  # the SentenceTransformer itself: the baseline is its own encode()
    start = time.perf_counter()
    fast = load_embedder(args.model, backend="onnx", center_languages=False)
    print(f"model: {spec.path}\nfast path: {fast.model_id} (load incl. one-time export if needed: "
          f"{time.perf_counter() - start:.1f}s)")
    threads = __import__("torch").get_num_threads()
    print(f"cpu: {os.cpu_count()} cores, torch threads {threads}, load average {os.getloadavg()[0]:.1f}")

    plain.encode(texts[:8])
    fast.encode(texts[:8])  # warm-up both
    with tempfile.TemporaryDirectory() as tmp:
        cache_path = Path(tmp) / "emb.sqlite"

        def reset_cache() -> None:
            cache_path.unlink(missing_ok=True)
            Path(f"{cache_path}-wal").unlink(missing_ok=True)
            Path(f"{cache_path}-shm").unlink(missing_ok=True)

        def cached() -> np.ndarray:
            with EmbeddingCache(cache_path) as cache:
                return cache.embed(texts, fast, batch_size=args.batch_size)

        timings: dict[str, float] = {}
        for _ in range(args.rounds):  # interleave, keep the best of each
            for name, fn, setup in (
                ("baseline SentenceTransformer.encode", lambda: plain.encode(
                    texts, batch_size=args.batch_size, normalize_embeddings=True), None),
                ("fast path encode (no cache)", lambda: fast.encode(texts, batch_size=args.batch_size), None),
                ("fast path + cache, cold", cached, reset_cache),
            ):
                seconds, _ = best_time(fn, 1, setup)
                timings[name] = min(timings.get(name, float("inf")), seconds)
        timings["fast path + cache, warm"], _ = best_time(cached, args.rounds)

    base = timings["baseline SentenceTransformer.encode"]
    print(f"\n{'variant':40s} {'seconds':>8s} {'texts/s':>9s} {'x baseline':>10s}")
    for name, seconds in timings.items():
        print(f"{name:40s} {seconds:8.2f} {len(texts) / seconds:9.1f} {base / seconds:10.2f}")

    unique = list(dict.fromkeys(texts))
    reference = plain.encode(unique, batch_size=args.batch_size, normalize_embeddings=True)
    candidate = fast.encode(unique, batch_size=args.batch_size)
    cosines = (reference * candidate).sum(axis=1)
    print(f"\nquality on {len(unique)} distinct texts: cosine(fast, torch) min {cosines.min():.4f} "
          f"mean {cosines.mean():.4f}; recall@10 of fast vs torch neighbours {recall_at_k(reference, candidate):.3f}")


if __name__ == "__main__":
    main()
