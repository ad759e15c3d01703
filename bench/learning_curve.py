"""Learning from judgements: nDCG@10 gain vs number of judgements, through the real engine and store.

    .venv/bin/python bench/learning_curve.py [--counts 5,10,20,50] [PATENTS_DIR]

Profiles: IPC subclass titles (bench/matching_quality.py) over the real fixture documents with IPC. For each
profile and each count n, a copy of the profile gets n judgements, simulated from the office classification: the
curator judges the first n documents the profile matched (relevant = carries the subclass), as they would judge
what was sent. The profile is then prepared anew (engine.preview, the path a user's profile takes) and ranked; the
gain is nDCG@10 on the documents nobody judged, against the unjudged profile's ranking of the same documents.
Methods: Rocchio (the profile vector moves; weights and classifier off), Rocchio + judged weights (fusion), and
the full engine: + the classifier (matching/learned.py, once learned.enough). A profile counts at n when some
relevant document is left unjudged.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.matching_quality import IPC_TITLES, load_corpus, ndcg  # noqa: E402
from index.embedded import EmbeddedIndex  # noqa: E402
from matching import fusion, learned  # noqa: E402
from matching.engine import MatchingEngine  # noqa: E402
from patentsift.wiring import standalone_match_store  # noqa: E402
from subscribers.profiles import Profile  # noqa: E402

METHODS = ("rocchio", "rocchio+weights", "full engine")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("patents", nargs="?", type=Path, default=ROOT.parent / "shared" / "data" / "patents")
    parser.add_argument("--counts", default="5,10,20,50")
    parser.add_argument("--topics", type=int, default=0, help="only the first N topic profiles (0: all)")
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    from matching.embedding_cache import EmbeddingCache
    from matching.embeddings import load_embedder

    corpus = load_corpus(args.patents)
    truth = {sub: {d.id for d in corpus if any(c.subclass_symbol == sub for c in d.ipc)} for sub in IPC_TITLES}
    topics = {s: t for s, t in IPC_TITLES.items() if len(truth[s]) >= 2}
    topics = dict(list(topics.items())[:args.topics]) if args.topics else topics
    gains: dict[str, dict[int, list[float]]] = {m: {n: [] for n in counts} for m in METHODS}
    base_at: dict[int, list[float]] = {n: [] for n in counts}
    made: dict[int, list[int]] = {n: [] for n in counts}  # judgements actually made (fewer when fewer matched)
    with tempfile.TemporaryDirectory() as tmp:
        index = EmbeddedIndex(Path(tmp) / "index.sqlite")
        index.upsert(corpus)
        store = standalone_match_store(Path(tmp) / "p.sqlite")
        engine = MatchingEngine(index, store, load_embedder(), EmbeddingCache(Path(tmp) / "emb.sqlite"))
        names = [_name(sub, m, n) for sub in topics for m in METHODS for n in counts]
        for sub, title in topics.items():
            store.save_profile(Profile(name=f"{sub}-base", description=title, threshold=0.0, max_items=10**6))
            for name in names:
                if name.startswith(f"{sub}-"):
                    store.save_profile(Profile(name=name, description=title, threshold=0.0, max_items=10**6))
        engine.run()  # stores every match (threshold 0), so judgements can refer to them
        for sub in topics:
            rel = truth[sub]
            before = _ranking(engine, f"{sub}-base")
            for n in counts:
                judged = before[:n]
                rest = rel - set(judged)
                if not rest:
                    continue
                base = ndcg([d for d in before if d not in judged], rest)
                base_at[n].append(base)
                made[n].append(len(judged))
                for method in METHODS:
                    name = _name(sub, method, n)
                    ids = {m.doc_id: m.id for m in store.matches(name)}
                    for doc_id in judged:
                        store.add_feedback(ids[doc_id], doc_id in rel, source="curator")
                    with _method(method):
                        after = _ranking(engine, name)
                    gains[method][n].append(ndcg([d for d in after if d not in judged], rest) - base)
        index.close()
        store.close()
    print(f"{len(corpus)} real documents with IPC, {len(topics)} topic profiles; classifier from "
          f"{learned.MIN_JUDGED} judgements (>= {learned.MIN_PER_CLASS} of each kind)")
    print(f"{'judgements':>10}{'made':>6}{'profiles':>10}{'nDCG@10 (0)':>13}"
          + "".join(f"{'gain ' + m:>24}" for m in METHODS))
    print(f"{0:>10}{0:>6}{len(topics):>10}{'':>13}" + "".join(f"{0.0:>+24.3f}" for _ in METHODS))
    for n in counts:
        if base_at[n]:
            print(f"{n:>10}{np.mean(made[n]):>6.1f}{len(base_at[n]):>10}{np.mean(base_at[n]):>13.3f}"
                  + "".join(f"{np.mean(gains[m][n]):>+24.3f}" for m in METHODS))
    print("made: judgements actually made (a profile matching fewer documents than n has all of them judged); "
          "nDCG@10 (0): the unjudged profile on the documents left, where those it never matched count as missed")


def _name(sub: str, method: str, n: int) -> str:
    return f"{sub}-m{METHODS.index(method)}-{n}"


def _ranking(engine: MatchingEngine, name: str) -> list[str]:
    return [m.doc.id for m in engine.preview(name, date(1800, 1, 1), limit=10**6)]


class _method:
    """Switch off what a method does without: judged weights (fusion.JUDGED_PRIOR huge) and the classifier."""

    def __init__(self, method: str) -> None:
        self.method = method
        self.saved = (fusion.JUDGED_PRIOR, learned.MIN_JUDGED)

    def __enter__(self) -> None:
        if self.method == "rocchio":
            fusion.JUDGED_PRIOR = 10**12
        if self.method != "full engine":
            learned.MIN_JUDGED = 10**9

    def __exit__(self, *exc: object) -> None:
        fusion.JUDGED_PRIOR, learned.MIN_JUDGED = self.saved


if __name__ == "__main__":
    main()
