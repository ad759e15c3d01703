"""Matching quality on the real fixture documents: topic profiles from IPC subclass titles, judged by the
office-assigned IPC classes. Prints nDCG@10 and recall@50 for BM25 only, dense only and hybrid, and the gain
after simulated feedback (top 10 marked by their true classes, Rocchio, re-rank; measured on unjudged documents).

    .venv/bin/python bench/matching_quality.py [PATENTS_DIR]
"""

from __future__ import annotations

import dataclasses
import math
import sys
import tempfile
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harvest.ingest import parse_path  # noqa: E402
from index.embedded import EmbeddedIndex  # noqa: E402
from index.model import PatentDocument  # noqa: E402
from matching.engine import MatchingEngine, Prepared, RunReport  # noqa: E402
from patentsift.wiring import standalone_match_store  # noqa: E402
from subscribers.profiles import Profile  # noqa: E402

# Official IPC subclass titles (WIPO IPC), for the subclasses that at least two fixture documents carry.
IPC_TITLES = {
    "A01D": "Harvesting; mowing",
    "A01G": "Horticulture; cultivation of vegetables, flowers, rice, fruit, vines, hops or seaweed; forestry; watering",
    "A01H": "New plants or non-transgenic processes for obtaining them; plant reproduction by tissue culture techniques",
    "A23L": "Foods, foodstuffs, or non-alcoholic beverages; their preparation or treatment",
    "A41B": "Shirts; underwear; baby linen; handkerchiefs",
    "A41D": "Outerwear; protective garments; accessories",
    "A42B": "Hats; head coverings",
    "A47C": "Chairs; sofas; beds",
    "A61B": "Diagnosis; surgery; identification",
    "A61K": "Preparations for medical, dental or toiletry purposes",
    "A61L": "Methods or apparatus for sterilising materials or objects in general; disinfection, sterilisation or "
            "deodorisation of air; chemical aspects of bandages, dressings, absorbent pads or surgical articles",
    "B01D": "Separation",
    "B01J": "Chemical or physical processes, e.g. catalysis or colloid chemistry; their relevant apparatus",
    "B65D": "Containers for storage or transport of articles or materials, e.g. bags, barrels, bottles, boxes, cans, "
            "cartons, crates, drums, jars, tanks, hoppers, forwarding containers; accessories, closures, or fittings "
            "therefor; packaging elements; packages",
    "C07C": "Acyclic or carbocyclic compounds",
    "C07D": "Heterocyclic compounds",
    "C12P": "Fermentation or enzyme-using processes to synthesise a desired chemical compound or composition",
    "E21B": "Earth drilling, e.g. deep drilling; obtaining oil, gas, water, soluble or meltable materials or a slurry "
            "of minerals from wells",
    "F02B": "Internal-combustion piston engines; combustion engines in general",
    "G01B": "Measuring length, thickness or similar linear dimensions; measuring angles; measuring areas; measuring "
            "irregularities of surfaces or contours",
    "G01N": "Investigating or analysing materials by determining their chemical or physical properties",
    "G02B": "Optical elements, systems or apparatus",
    "G06F": "Electric digital data processing",
    "G09G": "Arrangements or circuits for control of indicating devices using static means to present variable "
            "information",
    "H01J": "Electric discharge tubes or discharge lamps",
    "H01L": "Semiconductor devices; electric solid-state devices not otherwise provided for",
    "H01M": "Processes or means, e.g. batteries, for the direct conversion of chemical energy into electrical energy",
    "H01R": "Electrically-conductive connections; structural associations of a plurality of mutually-insulated "
            "electrical connecting elements; coupling devices; current collectors",
    "H04M": "Telephonic communication",
    "H04Q": "Selecting",
    "H05K": "Printed circuits; casings or constructional details of electric apparatus; manufacture of assemblages "
            "of electrical components",
}
METHODS = {"bm25": {"lexical": 1.0}, "dense": {"dense": 1.0}, "hybrid": None}


def load_corpus(root: Path) -> list[PatentDocument]:
    docs: dict[str, PatentDocument] = {}
    for d in parse_path(root, fetched_at="2026-01-01T00:00:00+00:00"):
        if d.ipc and (d.title() or d.abstract()):
            docs.setdefault(d.id, d)
    return list(docs.values())


def ndcg(ranking: list[str], relevant: set[str], k: int = 10) -> float:
    dcg = sum(1 / math.log2(i + 2) for i, d in enumerate(ranking[:k]) if d in relevant)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(k, len(relevant))))
    return dcg / ideal if ideal else 0.0


def recall(ranking: list[str], relevant: set[str], k: int = 50) -> float:
    return len(set(ranking[:k]) & relevant) / len(relevant) if relevant else 0.0


def rank(engine: MatchingEngine, p: Prepared, docs: list[PatentDocument], vectors: np.ndarray,
         weights: dict[str, float] | None) -> list[str]:
    q = dataclasses.replace(p, weights=weights or p.weights, state=dataclasses.replace(p.state, watermark=0))
    ids = [d.id for d in docs]
    out = engine.score_batch([q], docs, np.arange(1, len(docs) + 1), vectors, RunReport("bench"),
                             lexical_filters=lambda _: engine_filters(ids), seen={}, remaining={p.profile.name: 10**6})
    return [m.doc.id for m in out.get(p.profile.name, [])]


def engine_filters(ids: list[str]):  # noqa: ANN201
    from index.base import Filters

    return Filters(ids=ids)


def main() -> None:
    from matching.embedding_cache import EmbeddingCache
    from matching.embeddings import load_embedder

    root = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "data" / "patents"
    corpus = load_corpus(root)
    truth = {sub: {d.id for d in corpus if any(c.subclass_symbol == sub for c in d.ipc)} for sub in IPC_TITLES}
    topics = {s: t for s, t in IPC_TITLES.items() if len(truth[s]) >= 2}
    with tempfile.TemporaryDirectory() as tmp:
        index = EmbeddedIndex(Path(tmp) / "index.sqlite")
        index.upsert(corpus)
        store = standalone_match_store(Path(tmp) / "p.sqlite")
        engine = MatchingEngine(index, store, load_embedder(), EmbeddingCache(Path(tmp) / "emb.sqlite"))
        for sub, title in topics.items():
            store.save_profile(Profile(name=f"ipc-{sub}", description=title, threshold=0.0, max_items=1000))
        engine.run()  # stores document vectors and every match (threshold 0) so feedback can refer to them
        vectors = engine.embed_documents(corpus)
        results: dict[str, list[tuple[float, float]]] = {m: [] for m in [*METHODS, "hybrid+feedback", "hybrid(resid)"]}
        for p in engine.prepare():
            sub = p.profile.name.removeprefix("ipc-")
            rel = truth[sub]
            for method, weights in METHODS.items():
                r = rank(engine, p, corpus, vectors, weights)
                results[method].append((ndcg(r, rel), recall(r, rel)))
            # before and after feedback through the path a user's profile takes (preview prepares it anew)
            before = [m.doc.id for m in engine.preview(p.profile.name, date(1800, 1, 1), limit=10**6)]
            judged = before[:10]
            mids = {m.doc_id: m.id for m in store.matches(p.profile.name)}
            for doc_id in judged:
                store.add_feedback(mids[doc_id], doc_id in rel, source="curator")
            after = [m.doc.id for m in engine.preview(p.profile.name, date(1800, 1, 1), limit=10**6)]
            resid_rel = rel - set(judged)
            if resid_rel:
                results["hybrid(resid)"].append((ndcg([d for d in before if d not in judged], resid_rel),
                                                 recall([d for d in before if d not in judged], resid_rel)))
                results["hybrid+feedback"].append((ndcg([d for d in after if d not in judged], resid_rel),
                                                   recall([d for d in after if d not in judged], resid_rel)))
        index.close()
        store.close()
    print(f"{len(corpus)} real documents with IPC codes, {len(topics)} topic profiles (IPC subclass titles)")
    print(f"{'method':<18}{'nDCG@10':>9}{'recall@50':>11}{'topics':>8}")
    for method, vals in results.items():
        if vals:
            a = np.mean(vals, axis=0)
            print(f"{method:<18}{a[0]:>9.3f}{a[1]:>11.3f}{len(vals):>8}")
    print("hybrid(resid) / hybrid+feedback: the same topics, ranked on the documents not judged in the feedback round")


if __name__ == "__main__":
    main()
