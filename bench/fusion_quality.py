"""Per-profile fusion vs fixed weights, per language pair, on the real fixture documents.

    .venv/bin/python bench/fusion_quality.py [--split test|tune|all] [--grid] [--dump] [PATENTS_DIR]

Profiles and relevance as in bench/multilingual_quality.py (IPC subclass titles in English or Chinese, or a
document's Chinese title; relevant = carries the subclass). Each profile is scored the way the engine scores a
description profile: dense cosine and BM25 of its derived lexical query (`lexical_query`: description words, CJK
bigrams) over the task's documents, each calibrated against the profile's background (`fusion.background_stats`,
BM25 floor at the median), then mixed. Methods: lexical (BM25 alone), dense (cosine alone), fixed hybrid (the old
WEIGHTS, dense 0.5 : lexical 0.3), dense+lexical (`fusion.profile_weights` from the profile's kind and the
lexical half's `fusion.agreement` with the dense half over the task's documents), per-profile (the engine's
hybrid: the same, with the related classes of the profile's nearest documents, `fusion.related_classes`; no
judgements: for those see bench/learning_curve.py). Relevance is the office's classification and so is the
related-classes signal's evidence (of other documents): expect a smaller gain on readers' judgements. Hybrids break ties by the raw cosine. Profiles are split by a hash of their name: the
constants of matching/fusion.py were chosen looking at the `tune` half only; `test` (the default) is the other
half. `--grid` adds the mean nDCG@10 of every fixed lexical share and of the best share per profile (an upper
bound for any per-profile choice of the dense : lexical weights); `--dump` prints one line per profile.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.matching_quality import load_corpus, ndcg  # noqa: E402
from bench.multilingual_quality import TASKS, profiles, views  # noqa: E402
from index.base import Filters, SearchRequest  # noqa: E402
from index.embedded import EmbeddedIndex  # noqa: E402
from matching import fusion  # noqa: E402
from matching.engine import lexical_query, subclasses  # noqa: E402
from subscribers.profiles import Profile  # noqa: E402

SHARES = [round(x, 2) for x in np.arange(0.0, 0.65, 0.05)]
METHODS = ["lexical", "dense", "fixed hybrid", "dense+lexical", "per-profile"]


def in_split(name: str, split: str) -> bool:
    """Deterministic half of the profiles: `tune` or `test` (or `all`)."""
    tune = hashlib.sha256(name.encode()).digest()[0] % 2 == 0
    return split == "all" or (split == "tune") == tune


def ranking(ids: list[str], score: np.ndarray, tie: np.ndarray, exclude: str) -> list[str]:
    order = np.lexsort((-tie, -score))
    return [ids[i] for i in order if ids[i] != exclude]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("patents", nargs="?", type=Path, default=ROOT.parent / "shared" / "data" / "patents")
    parser.add_argument("--split", default="test", choices=["test", "tune", "all"])
    parser.add_argument("--grid", action="store_true")
    parser.add_argument("--dump", action="store_true", help="one line per profile: agreement and nDCG by share")
    args = parser.parse_args()
    from matching.embeddings import load_embedder

    corpus = load_corpus(args.patents)
    vs = views(corpus)
    profs = profiles(corpus, vs)
    embedder = load_embedder()
    doc_vecs = {lang: embedder.encode(list(v.texts.values())) for lang, v in vs.items()}
    rows: dict[str, list[dict[str, float]]] = {t: [] for t in TASKS}
    with tempfile.TemporaryDirectory() as tmp:
        for task in TASKS:
            dst = task.split("->")[1]
            index = EmbeddedIndex(Path(tmp) / f"{task.replace('>', '')}.sqlite")
            index.upsert(vs[dst].docs)
            ids = list(vs[dst].texts)
            pos = {d: i for i, d in enumerate(ids)}
            subs = [subclasses(d) for d in vs[dst].docs]
            items = [it for it in profs[task] if in_split(f"{task}:{it[0]}", args.split)]
            qvecs = embedder.encode([text for _, text, _ in items]) if items else np.zeros((0, 1))
            for (name, text, rel), q in zip(items, qvecs, strict=True):
                rows[task].append(score_profile(index, ids, pos, subs, doc_vecs[dst] @ q, name, text, rel, task,
                                                args.dump))
            index.close()
    print(f"{len(corpus)} real documents; profiles: {args.split} split; nDCG@10")
    print(f"{'task':<14}{'n':>4}" + "".join(f"{m:>14}" for m in METHODS) + f"{'vs dense':>10}{'vs fixed':>10}"
          f"{'lex share':>10}")
    total: list[dict[str, float]] = []
    for task in TASKS:
        if rows[task]:
            total += rows[task]
            _line(task, rows[task])
    _line("all pairs", total)
    if args.grid:
        print("\nfixed lexical share -> mean nDCG@10 (calibrated mix), and the per-profile oracle")
        for task in [*TASKS, "all"]:
            r = total if task == "all" else rows[task]
            if r:
                best = np.mean([max(x[f"s{s}"] for s in SHARES) for x in r])
                q = np.percentile([x["agreement"] for x in r], [25, 50, 75])
                print(f"{task:<14}" + " ".join(f"{s}:{np.mean([x[f's{s}'] for x in r]):.3f}" for s in SHARES)
                      + f" oracle:{best:.3f} agreement q1/med/q3 {q[0]:.2f}/{q[1]:.2f}/{q[2]:.2f}")


def score_profile(index: EmbeddedIndex, ids: list[str], pos: dict[str, int], subs: list[set[str]], cos: np.ndarray,
                  name: str, text: str, rel: set[str], task: str, dump: bool) -> dict[str, float]:
    """nDCG@10 of every method (and every fixed share) for one profile, as the engine would calibrate it: the
    related classes from its RELATED_NEIGHBOURS nearest documents (the index's kNN; the profile's own document,
    for a profile made from a document's title, left out as the ranking leaves it out)."""
    bm25 = np.zeros(len(ids))
    query = lexical_query(Profile(name="p", description=text))
    if query is not None:
        for h in index.search(SearchRequest(query=query, limit=len(ids), highlight=False,
                                            filters=Filters(ids=ids))).hits:
            bm25[pos[h.id]] = h.score
    bg = fusion.background_stats(cos, sorted(bm25[bm25 > 0], reverse=True)[:100], floor_at_median=True)
    cd = np.asarray(fusion.calibrate_dense(cos, bg))
    cl = np.asarray(fusion.calibrate_bm25(bm25, bg))
    agree = fusion.agreement(cos, bm25)
    fixed = fusion.active_weights(["dense", "lexical"])
    w0 = fusion.profile_weights(["dense", "lexical"], "description", agree)
    near = [i for i in np.argsort(-cos, kind="stable") if ids[i] != name][:fusion.RELATED_NEIGHBOURS]
    related = fusion.related_classes([subs[i] for i in near])
    cr = np.array([max((related.get(c, 0.0) for c in s), default=0.0) for s in subs])
    w = fusion.profile_weights(["dense", "lexical", "related"] if related else ["dense", "lexical"], "description",
                               agree)
    row = {"agreement": agree, "share": w.get("lexical", 0.0),
           "lexical": ndcg(ranking(ids, bm25, np.zeros(len(ids)), name), rel),
           "dense": ndcg(ranking(ids, cos, bm25, name), rel),
           "fixed hybrid": ndcg(ranking(ids, fixed["dense"] * cd + fixed["lexical"] * cl, cos, name), rel),
           "dense+lexical": ndcg(ranking(ids, w0.get("dense", 0) * cd + w0.get("lexical", 0) * cl, cos, name), rel),
           "per-profile": ndcg(ranking(ids, w.get("dense", 0) * cd + w.get("lexical", 0) * cl
                                      + w.get("related", 0) * cr, cos, name), rel)}
    for s in SHARES:
        row[f"s{s}"] = ndcg(ranking(ids, (1 - s) * cd + s * cl, cos, name), rel)
    if dump:
        print(f"{task:<13}{name[:12]:<13}agree {agree:.2f} lex {row['lexical']:.2f} dense {row['dense']:.2f} "
              + " ".join(f"{s}:{row[f's{s}']:.2f}" for s in SHARES[::2]))
    return row


def _line(task: str, r: list[dict[str, float]]) -> None:
    mean = {m: float(np.mean([x[m] for x in r])) for m in METHODS}
    print(f"{task:<14}{len(r):>4}" + "".join(f"{mean[m]:>14.3f}" for m in METHODS)
          + f"{mean['per-profile'] - mean['dense']:>+10.3f}{mean['per-profile'] - mean['fixed hybrid']:>+10.3f}"
          + f"{np.mean([x['share'] for x in r]):>10.2f}")


if __name__ == "__main__":
    main()
