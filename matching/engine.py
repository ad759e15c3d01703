"""The matching engine: new documents (since each profile's watermark) against interest profiles.

Per batch of new documents: embed them (through the cache) and store their vectors in the index; score every
profile at once (dense: one matrix product; classes and applicants: inverted maps over the batch; BM25: the batch's
best documents per profile, restricted to the batch); fuse (matching.fusion: weights chosen per profile when it is
prepared, and, with enough judgements, its classifier: matching.learned); threshold; hard exclusions; suppress
duplicate inventions (matching.dedupe), also against what the profile was already sent; explain the kept matches
only; store the matches and move the watermark in one transaction. A rerun finds nothing new; an interrupted run
resumes after the last stored batch. Reads through the `Index` interface, plus two declared abilities an index may
offer (index/base.py; the embedded one does): `BatchLexicalScores` (BM25 for many queries at once) and
`BatchHighlights` (each document analyzed once for every query); without them, one search per profile does the same.
A preview (what a profile would have matched since a date) scores the same way, but only the candidates the index
gives when it stores this model's vectors (`StoredVectors`, `VectorModelTag`: nearest neighbours, best lexical
matches, see `MatchingEngine._knn_candidates`), else every document of the window.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from itertools import islice
from typing import Any, Protocol

import numpy as np

from index.analysis import analyze
from index.base import (
    BatchHighlights,
    BatchLexicalScores,
    Filters,
    Index,
    SearchRequest,
    StoredVectors,
    VectorModelTag,
)
from index.fields import claims_text
from index.model import PatentDocument, normalize_party_name
from index.query.ast import MatchAll, Or, Phrase, Query, Term
from index.query.parser import parse_query
from matching import fusion, learned
from matching.applicants import ApplicantAliases, applicant_key
from matching.dedupe import invention_keys, suppress_duplicates
from matching.embeddings import Embedder
from matching.explain import (
    DescriptionText,
    Explanation,
    matched_applicants,
    matched_classes,
    matched_terms,
)
from matching.feedback import normalize, profile_base_vector, rocchio
from matching.store import MatchStore, NewMatch, ProfileState
from subscribers.profiles import Profile

log = logging.getLogger(__name__)

_STOP = frozenset(
    "a an and are as at be by for from has have in into is it its of on or that the their this to was were which "
    "with without using used use method methods system systems apparatus device devices thereof such wherein "
    "means based new improved including comprising".split())
# Chinese/Japanese descriptions are analyzed into character bigrams (index.analysis): a bigram is a content term
# unless it is one of these generic words, or straddles a function character (的, 和, の ...: "置的", "的制").
_CJK_STOP = frozenset(
    "一种 一个 多个 至少 方法 装置 系统 设备 及其 所述 其中 包括 包含 具有 用于 以及 根据 通过 进行 使用 采用 本发 发明 "
    "涉及 提供 领域 相关 特别 尤其 例如 所得 用途 应用 或者 如下 方式 其他".split())
_CJK_FUNCTION_CHARS = frozenset("的了和与及或其之于为是在将被从のにをはがでともへや")
MAX_DESCRIPTION_TERMS = 16  # Latin-script words
MAX_DESCRIPTION_BIGRAMS = 32  # CJK bigrams (a run of n characters gives n - 1, half of them across word bounds)


@dataclass
class PreviewStats:
    """How the last preview found its candidates: `knn` (from the index) or `full` (every document of the window)."""

    path: str
    candidates: int
    seconds: float  # finding the candidates and their vectors


class Cache(Protocol):
    def embed(self, texts: Sequence[str], embedder: Embedder) -> np.ndarray: ...


@dataclass
class EngineOptions:
    batch_size: int = 2000  # new documents per batch (one transaction per profile per batch)
    lexical_limit: int = 200  # BM25 candidates per profile per batch
    background_size: int = 500  # index documents that calibrate each profile's dense scores
    store_vectors: bool = True  # index.set_vectors for newly embedded documents
    # preview's candidates from the index (MatchingEngine.knn_k): this many nearest neighbours per item the profile
    # may return, at least knn_min, at most knn_max (Elasticsearch then weighs 10 x k = 10,000 HNSW candidates)
    knn_per_item: int = 5
    knn_min: int = 50
    knn_max: int = 1000
    max_unembedded: int = 2000  # window documents without a stored vector a preview embeds itself; more: full path


@dataclass
class Prepared:
    """A profile ready to score: its vector, seeds' vectors, lexical query and calibration."""

    state: ProfileState
    vector: np.ndarray | None
    seeds: dict[str, np.ndarray]
    lexical: Query | None
    background: fusion.Background
    weights: dict[str, float]
    classifier: learned.Classifier | None = None  # ranks the profile once it has enough judgements

    @property
    def profile(self) -> Profile:
        return self.state.profile

    @property
    def needs(self) -> set[str]:
        """The signals to compute: those weighted, and those its classifier reads."""
        return set(self.weights) | set(self.classifier.signals if self.classifier else ())


@dataclass
class Match:
    profile: str
    doc: PatentDocument
    seq: int
    score: float
    breakdown: dict[str, dict[str, float]]
    explanation: Explanation
    keys: set[str]

    def to_new(self) -> NewMatch:
        return NewMatch(self.doc.id, self.seq, self.score, self.breakdown, self.explanation.to_dict(), self.keys,
                        list(self.explanation.duplicates))


@dataclass
class RunReport:
    run_id: str
    documents: int = 0
    batches: int = 0
    matches: dict[str, list[Match]] = field(default_factory=dict)
    stored: dict[str, list[int]] = field(default_factory=dict)  # profile -> stored match ids
    suppressed: dict[str, int] = field(default_factory=dict)  # duplicates of earlier-sent inventions
    timings: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    failed: dict[str, str] = field(default_factory=dict)  # profile -> why it was skipped (the others ran)
    notes: list[str] = field(default_factory=list)  # what the operator should know (e.g. a model change)

    def skip(self, name: str, exc: BaseException) -> None:
        """Record that profile `name` failed and was left out of this run (its watermark stays)."""
        self.failed[name] = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
        log.warning("matching: profile %r skipped in run %s: %s", name, self.run_id, self.failed[name])

    def add_time(self, stage: str, since: float) -> float:
        now = time.perf_counter()
        self.timings[stage] += now - since
        return now


class MatchingEngine:
    def __init__(self, index: Index, store: MatchStore, embedder: Embedder | None = None,
                 cache: Cache | None = None, options: EngineOptions | None = None) -> None:
        self.index, self.store, self.embedder, self.cache = index, store, embedder, cache
        self.options = options or EngineOptions()
        self._background: np.ndarray | None = None
        self._background_ids: list[str] = []
        self._background_subclasses: list[set[str]] = []
        self.aliases = ApplicantAliases()  # Chinese/English (...) spellings of one applicant, from the documents
        self._aliases_for: set[str] = set()  # watched names whose documents (and families) were looked at
        self.last_preview: PreviewStats | None = None

    # --- embeddings ---------------------------------------------------------------------------------------
    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        assert self.embedder is not None
        if not texts:
            return np.zeros((0, self.embedder.dim), np.float32)
        vecs = self.cache.embed(list(texts), self.embedder) if self.cache else self.embedder.encode(list(texts))
        return np.asarray(vecs, dtype=np.float32)

    def embed_documents(self, docs: Sequence[PatentDocument]) -> np.ndarray:
        from matching.embeddings import document_text

        return self.embed_texts([document_text(d) for d in docs])

    def _background_matrix(self) -> np.ndarray:
        """Vectors of up to `background_size` index documents (the oldest), the calibration sample."""
        if self._background is None:
            n = self.options.background_size
            docs = [d for _, d in islice(self.index.documents_since(0, n), n)]
            self._background = self.embed_documents(docs) if docs else np.zeros((0, 1), np.float32)
            self._background_ids = [d.id for d in docs]
            self._background_subclasses = [subclasses(d) for d in docs]
        return self._background

    # --- profiles -----------------------------------------------------------------------------------------
    def prepare(self, names: Iterable[str] | None = None, report: RunReport | None = None) -> list[Prepared]:
        """Load profiles with their (cached or recomputed) vectors and calibration. With a `report`, a profile that
        cannot be prepared (e.g. a stored query the parser now refuses) is skipped and named in `report.failed`;
        only when every profile fails does the first error propagate."""
        names = list(names) if names is not None else [p.name for p in self.store.profiles()]
        if report is None:
            return [self._prepare(self.store.state(n)) for n in names]
        out: list[Prepared] = []
        first: Exception | None = None
        for name in names:
            try:
                out.append(self._prepare(self.store.state(name)))
            except Exception as exc:  # one bad profile never stops the matching of the others
                first = first or exc
                report.skip(name, exc)
        if first is not None and not out:
            raise first
        return out

    def _prepare(self, state: ProfileState) -> Prepared:
        p = state.profile
        if p.applicants:
            self.learn_watched_aliases(p.applicants)
        lexical = lexical_query(p)
        seeds: dict[str, np.ndarray] = {}
        vector = None
        model_id = self.embedder.model_id if self.embedder else None
        if self.embedder is not None:
            seed_docs = [d for d in (self.index.get(s) for s in p.seeds) if d is not None]
            if seed_docs:
                seeds = dict(zip([d.id for d in seed_docs], self.embed_documents(seed_docs), strict=True))
        derived = lexical is not None and not p.query
        cal = state.calibration if state.calibration and "related" in state.calibration else None  # else stale
        if self.embedder is not None and state.vector is not None and state.model_id == model_id and cal:
            vector = state.vector
        elif self.embedder is not None:
            base = state.base_vector if state.model_id == model_id else None
            if base is None:
                desc = self.embed_texts([p.description])[0] if p.description else None
                base = profile_base_vector(desc, list(seeds.values()))
            vector = self._adapt(state.profile.name, base) if base is not None else None
            cal = self._calibrate(vector, lexical, derived)
            if base is not None and vector is not None:
                self.store.set_vectors(p.name, model_id or "", base, vector, cal)
        elif not cal:
            cal = self._calibrate(None, lexical, derived)
        background = fusion.Background(**cal) if cal else fusion.Background()
        signals = [s for s, on in (("dense", vector is not None), ("lexical", lexical is not None),
                                   ("classes", bool(p.classes)), ("applicants", bool(p.applicants)),
                                   ("related", bool(background.related) and not p.classes)) if on]
        kind = "query" if p.query else "description" if p.description else "seeds"
        prepared = Prepared(state, vector, seeds, lexical, background,
                            fusion.profile_weights(signals, kind, background.agreement))
        judged = self.store.feedback(p.name) if signals else {}
        if judged:
            self._learn(prepared, signals, kind, judged)
        return prepared

    def _learn(self, p: Prepared, signals: list[str], kind: str, judged: dict[str, bool]) -> None:
        """Judgements move the weights towards the signals that separate them (fusion.profile_weights) and, once
        there are enough (learned.enough), train the profile's classifier on every signal and the embedding."""
        docs = [d for d in (self.index.get(i) for i in judged) if d is not None]
        if not docs:
            return
        vectors = self.embed_documents(docs) if self.embedder is not None else None
        full = dataclasses.replace(p, weights={s: 1.0 for s in signals})
        parts, _ = self._signal_parts(full, docs, vectors, self._judged_lexical(full, docs),
                                      _BatchMeta(docs, self.aliases))
        labels = np.array([judged[d.id] for d in docs], dtype=bool)
        aucs = {s: fusion.separation(v[labels], v[~labels]) for s, v in parts.items()}
        p.weights = fusion.profile_weights(signals, kind, p.background.agreement, aucs, len(labels))
        p.classifier = learned.train(parts, vectors, labels.tolist())

    def _judged_lexical(self, p: Prepared, docs: Sequence[PatentDocument]) -> dict[str, dict[str, float]]:
        if p.lexical is None:
            return {}
        hits = self.index.search(SearchRequest(query=p.lexical, filters=Filters(ids=[d.id for d in docs]),
                                               limit=len(docs), highlight=False)).hits
        return {p.profile.name: {h.id: h.score for h in hits}}

    def _adapt(self, name: str, base: np.ndarray) -> np.ndarray:
        """Rocchio with every judgement recorded for this profile."""
        judged = self.store.feedback(name)
        if not judged:
            return normalize(base)
        docs = {d.id: d for d in (self.index.get(i) for i in judged) if d is not None}
        ids = list(docs)
        vecs = dict(zip(ids, self.embed_documents([docs[i] for i in ids]), strict=True)) if ids else {}
        rel = [vecs[i] for i in ids if judged[i]]
        irr = [vecs[i] for i in ids if not judged[i]]
        return rocchio(base, rel, irr)

    def _calibrate(self, vector: np.ndarray | None, lexical: Query | None, derived: bool) -> dict[str, float]:
        """fusion.Background fields; `derived`: the lexical query was built from the description."""
        cosines = np.zeros(0)
        if vector is not None:
            bg = self._background_matrix()
            cosines = bg @ vector if bg.shape[1] == vector.shape[0] else np.zeros(0)
        bm25: list[float] = []
        agree = None
        if lexical is not None:
            res = self.index.search(SearchRequest(query=lexical, limit=100, highlight=False))
            bm25 = [h.score for h in res.hits]
            if len(cosines) > 1:  # the lexical ranking of the background sample against its dense ranking
                ids = self._background_ids
                hits = self.index.search(SearchRequest(query=lexical, filters=Filters(ids=ids), limit=len(ids),
                                                       highlight=False)).hits
                found = {h.id: h.score for h in hits}
                agree = fusion.agreement(cosines, np.array([found.get(i, 0.0) for i in ids]))
        b = dataclasses.replace(fusion.background_stats(cosines, bm25, floor_at_median=derived), agreement=agree,
                                related=self._related(vector, cosines))
        return dataclasses.asdict(b)

    def _related(self, vector: np.ndarray | None, cosines: np.ndarray) -> dict[str, float]:
        """fusion.related_classes of the profile's RELATED_NEIGHBOURS nearest documents: over the whole index when
        it holds vectors of this model, else over the background sample."""
        k = fusion.RELATED_NEIGHBOURS
        if vector is None or not len(cosines):
            return {}
        ix = self.index
        if (self.embedder is not None and isinstance(ix, VectorModelTag)
                and ix.vector_model() == self.embedder.model_id):
            hits = ix.knn([float(x) for x in vector], k)
            if len(hits) >= min(k, len(cosines)):
                return fusion.related_classes([subclasses(h.document) for h in hits])
        best = np.argsort(-cosines, kind="stable")[:k]
        return fusion.related_classes([self._background_subclasses[i] for i in best])

    # --- runs ---------------------------------------------------------------------------------------------
    def run(self, names: Iterable[str] | None = None,
            on_batch_stored: Callable[[int], None] | None = None) -> RunReport:
        """Match every document newer than each profile's watermark; store matches; move watermarks."""
        report = RunReport(run_id=uuid.uuid4().hex[:12])
        t = time.perf_counter()
        prepared = self.prepare(names, report)
        t = report.add_time("prepare", t)
        if not prepared:
            return report
        seen = {p.profile.name: self.store.seen_keys(p.profile.name) for p in prepared}
        stored_count: dict[str, int] = defaultdict(int)
        after = min(p.state.watermark for p in prepared)
        while True:
            t = time.perf_counter()
            batch = list(islice(self.index.documents_since(after, self.options.batch_size), self.options.batch_size))
            t = report.add_time("load", t)
            if not batch:
                break
            seqs = np.array([s for s, _ in batch], dtype=np.int64)
            docs = [d for _, d in batch]
            if any(p.profile.applicants for p in prepared):
                self.learn_aliases(docs)
            vectors = self._batch_vectors(docs, report)
            truncated = len(batch) == self.options.batch_size
            matches = self._score_isolated(prepared, report, functools.partial(
                self.score_batch, docs=docs, seqs=seqs, vectors=vectors, report=report,
                lexical_filters=functools.partial(_window_filters, first=int(seqs[0])),
                seen=seen, remaining={p.profile.name: p.profile.max_items - stored_count[p.profile.name]
                                      for p in prepared}, max_seq=int(seqs[-1])))
            t = time.perf_counter()
            last = int(seqs[-1])
            for p in prepared:
                name = p.profile.name
                found = matches.get(name, [])
                ids = self.store.record_run(name, [m.to_new() for m in found], last, report.run_id)
                for m in found:
                    seen[name] |= m.keys
                stored_count[name] += len(ids)
                report.matches.setdefault(name, []).extend(found)
                report.stored.setdefault(name, []).extend(ids)
                p.state.watermark = max(p.state.watermark, last)
            report.add_time("store", t)
            report.documents += len(batch)
            report.batches += 1
            if on_batch_stored is not None:
                on_batch_stored(last)
            after = last
            if not truncated:
                break
        return report

    @staticmethod
    def _score_isolated(prepared: list[Prepared], report: RunReport,
                        score: Callable[[Sequence[Prepared]], dict[str, list[Match]]]) -> dict[str, list[Match]]:
        """`score(prepared)`; when that fails, each profile alone, and those that still fail are skipped (named in
        `report.failed`, removed from `prepared`: their watermarks stay). All failing: the error propagates."""
        suppressed = dict(report.suppressed)
        try:
            return score(prepared)
        except Exception as batch_error:
            report.suppressed.clear()
            report.suppressed.update(suppressed)  # the failed attempt counts nothing
            out: dict[str, list[Match]] = {}
            failed: list[tuple[Prepared, Exception]] = []
            for p in prepared:
                try:
                    out.update(score([p]))
                except Exception as exc:  # one bad profile never stops the matching of the others
                    failed.append((p, exc))
            if len(failed) == len(prepared):
                raise batch_error
            for p, error in failed:
                report.skip(p.profile.name, error)
                prepared.remove(p)
            return out

    def preview(self, name: str, since: date, limit: int = 10_000, *, knn: bool = True) -> list[Match]:
        """What the profile would have matched among documents published since `since`; stores nothing.

        Candidates: where the index stores this model's vectors (`StoredVectors`, tagged by `VectorModelTag`),
        the index's nearest neighbours of the profile's vector and its best lexical matches, in the window
        (`_knn_candidates`); otherwise (or with `knn=False`) the window's newest `limit` documents, all embedded.
        Either way the candidates are scored by `score_batch`, so scores and thresholds mean the same. How the
        last preview found its candidates is in `last_preview`."""
        report = RunReport(run_id="preview")
        prepared = self.prepare([name])
        prepared[0].state.watermark = 0
        t = time.perf_counter()
        window = Filters(published_from=since)
        found = self._knn_candidates(prepared[0], window) if knn else None
        vectors: np.ndarray | None
        if found is not None:
            docs, vectors = found
            self.last_preview = PreviewStats("knn", len(docs), time.perf_counter() - t)
        else:
            docs = self._window_documents(window, limit)
            vectors = self.embed_documents(docs) if self.embedder and docs else None
            self.last_preview = PreviewStats("full", len(docs), time.perf_counter() - t)
        if not docs:
            return []
        ids = [d.id for d in docs]
        if prepared[0].profile.applicants:
            self.learn_aliases(docs)
        matches = self.score_batch(prepared, docs, np.arange(1, len(docs) + 1), vectors, report,
                                   lexical_filters=lambda p: Filters(ids=ids), seen={},
                                   remaining={name: prepared[0].profile.max_items})
        return matches.get(name, [])

    def _window_documents(self, window: Filters, limit: int, page: int = 1000) -> list[PatentDocument]:
        """The window's first `limit` documents (newest publication first, then id), a page at a time with the
        cursor (Elasticsearch refuses one request beyond 10,000 documents)."""
        docs: list[PatentDocument] = []
        cursor: str | None = None
        while len(docs) < limit:
            res = self.index.search(SearchRequest(query=MatchAll(), filters=window, limit=min(page, limit - len(docs)),
                                                  search_after=cursor, highlight=False))
            docs += [h.document for h in res.hits]
            cursor = res.next_cursor
            if not res.hits or cursor is None:
                break
        return docs

    def knn_k(self, max_items: int) -> int:
        """How many nearest neighbours a preview asks the index for: `knn_per_item` per item the profile may
        return (room for the threshold, exclusions and duplicates), within [`knn_min`, `knn_max`]."""
        o = self.options
        return max(o.knn_min, min(o.knn_max, o.knn_per_item * max_items))

    def _knn_candidates(self, p: Prepared, window: Filters
                        ) -> tuple[list[PatentDocument], np.ndarray] | None:
        """A preview's candidates from the index (None when it cannot give them: no profile vector, no stored
        vectors of this model, or more than `max_unembedded` documents of the window without a vector), with their
        vectors. The union of: the `knn_k` nearest stored vectors to the profile's; its lexical query's best
        `lexical_limit` documents (those a full preview gives a BM25 score too); the nearest among the documents
        of its watched classes and of its watched applicants (their bonus can lift a document the plain
        neighbours miss); and the window's documents without a stored vector (embedded here). In the full path's
        order (newest publication first, then id), so ties break alike."""
        ix = self.index
        if (self.embedder is None or p.vector is None or not isinstance(ix, StoredVectors)
                or not isinstance(ix, VectorModelTag) or ix.vector_model() != self.embedder.model_id):
            return None
        missing_total, missing = ix.without_vectors(window, self.options.max_unembedded)
        if missing_total > self.options.max_unembedded:
            return None
        prof, k = p.profile, self.knn_k(p.profile.max_items)
        query = [float(x) for x in p.vector]
        docs: dict[str, PatentDocument] = {h.id: h.document for h in ix.knn(query, k, window)}
        if p.lexical is not None and "lexical" in p.needs:
            res = ix.search(SearchRequest(query=p.lexical, filters=window, limit=self.options.lexical_limit,
                                          highlight=False))
            docs.update((h.id, h.document) for h in res.hits)
        watched: list[Filters] = []
        if prof.classes and "classes" in p.needs:
            watched += [dataclasses.replace(window, ipc_prefixes=list(prof.classes)),
                        dataclasses.replace(window, cpc_prefixes=list(prof.classes))]
        if "related" in p.needs and (related := list(p.background.related)):
            watched += [dataclasses.replace(window, ipc_prefixes=related),
                        dataclasses.replace(window, cpc_prefixes=related)]
        if prof.applicants and "applicants" in p.needs and (names := self._stored_names(prof.applicants)):
            watched.append(dataclasses.replace(window, applicants=names))
        for f in watched:
            docs.update((h.id, h.document) for h in ix.knn(query, k, f))
        if missing := [i for i in missing if i not in docs]:
            res = ix.search(SearchRequest(query=MatchAll(), filters=Filters(ids=missing), limit=len(missing),
                                          highlight=False))
            docs.update((h.id, h.document) for h in res.hits)
        ordered = sorted(docs.values(), key=lambda d: (-(d.publication_date or date.min).toordinal(), d.id))
        stored = ix.vectors([d.id for d in ordered])
        todo = [d for d in ordered if d.id not in stored]
        fresh = dict(zip([d.id for d in todo], self.embed_documents(todo), strict=True)) if todo else {}
        vectors = np.zeros((len(ordered), self.embedder.dim), np.float32)
        for row, d in enumerate(ordered):
            vectors[row] = stored[d.id] if d.id in stored else fresh[d.id]
        return ordered, vectors

    def _stored_names(self, watched: Sequence[str], limit: int = 200, spellings_max: int = 32) -> list[str]:
        """The index's (normalized) applicant names of the watched applicants in any known spelling (the
        aliases learned so far), from the documents a `pa:` search for the spellings finds (the watched names'
        own first, at most `spellings_max`)."""
        keys = {k for n in watched for k in self.aliases.keys(n)}
        own = [k for k in dict.fromkeys(applicant_key(n) for n in watched) if k]
        spellings = (own + sorted(k for k in keys if k and k not in own))[:spellings_max]
        if not spellings:
            return []
        phrases: list[Query] = [Phrase("pa", k) for k in spellings]
        query = Or(tuple(phrases)) if len(phrases) > 1 else phrases[0]
        hits = self.index.search(SearchRequest(query=query, limit=limit, highlight=False)).hits
        return sorted({normalize_party_name(a.name) for h in hits for a in h.document.applicants
                       if applicant_key(a.name) in keys})

    def learn_watched_aliases(self, names: Sequence[str], limit: int = 500) -> None:
        """Learn the spellings of watched applicants from the stored documents that name them and their families."""
        new = [n for n in dict.fromkeys(names) if n.strip() and n not in self._aliases_for]
        if not new:
            return
        self._aliases_for.update(new)
        query: Query = Or(tuple(Phrase("pa", n) for n in new)) if len(new) > 1 else Phrase("pa", new[0])
        self.learn_aliases([h.document for h in self.index.search(SearchRequest(query=query, limit=limit,
                                                                                highlight=False)).hits])

    def learn_aliases(self, docs: Sequence[PatentDocument], chunk: int = 200) -> None:
        """Learn applicant spellings from these documents and the other members of their families in the index."""
        families = sorted({d.family_id for d in docs if d.family_id})
        related: list[PatentDocument] = []
        for start in range(0, len(families), chunk):
            part = families[start:start + chunk]
            query: Query = Or(tuple(Term("fam", f) for f in part)) if len(part) > 1 else Term("fam", part[0])
            res = self.index.search(SearchRequest(query=query, limit=20 * len(part), highlight=False))
            related += [h.document for h in res.hits]
        self.aliases.learn([*docs, *related])

    def _batch_vectors(self, docs: list[PatentDocument], report: RunReport) -> np.ndarray | None:
        if self.embedder is None:
            return None
        t = time.perf_counter()
        vectors = self.embed_documents(docs)
        t = report.add_time("embed", t)
        if self.options.store_vectors and self._may_store_vectors(report):
            self.index.set_vectors({d.id: v for d, v in zip(docs, vectors, strict=True)})
            report.add_time("set_vectors", t)
        return vectors

    def _may_store_vectors(self, report: RunReport) -> bool:
        """Whether this model's vectors may go into the index: never beside another model's (the index says which
        model made its vectors, where it can: index.base.VectorModelTag)."""
        assert self.embedder is not None
        if not isinstance(self.index, VectorModelTag):
            return True
        tag = self.index.vector_model()
        if tag is None:
            self.index.set_vector_model(self.embedder.model_id)
            return True
        if tag != self.embedder.model_id:
            note = (f"the index's vectors come from {tag}, not {self.embedder.model_id}: new vectors were not "
                    "stored; run `patentsift index reembed` to move the index to the current model")
            if note not in report.notes:
                report.notes.append(note)
                log.warning("matching: %s", note)
            return False
        return True

    # --- scoring (no writes) ------------------------------------------------------------------------------
    def score_batch(self, prepared: Sequence[Prepared], docs: Sequence[PatentDocument], seqs: np.ndarray,
                    vectors: np.ndarray | None, report: RunReport,
                    lexical_filters: Callable[[Prepared], Filters], seen: dict[str, set[str]],
                    remaining: dict[str, int], max_seq: int | None = None) -> dict[str, list[Match]]:
        """Score, threshold, dedupe and explain one batch for every profile. `lexical_filters` restricts each
        profile's BM25 search to the batch (with `max_seq`, the batch's last sequence number, as upper bound)."""
        n = len(docs)
        t = time.perf_counter()
        active = [p for p in prepared if remaining.get(p.profile.name, 0) > 0]
        dense_prof = [p for p in active if p.vector is not None and "dense" in p.needs] if vectors is not None else []
        cos = np.zeros((n, 0), np.float32)
        if dense_prof:
            assert vectors is not None
            cos = vectors @ np.stack([p.vector for p in dense_prof if p.vector is not None], axis=1)  # docs x profiles
        dense_col = {id(p): j for j, p in enumerate(dense_prof)}
        t = report.add_time("dense", t)
        meta = _BatchMeta(docs, self.aliases)
        t = report.add_time("meta", t)
        lexical = self._lexical_scores(active, docs, lexical_filters, max_seq)
        t = report.add_time("lexical", t)
        scored: list[tuple[Prepared, list[tuple[int, list[int]]], np.ndarray, dict[str, np.ndarray],
                           dict[str, np.ndarray]]] = []
        for p in active:
            t = time.perf_counter()
            prof = p.profile
            parts, raw = self._signal_parts(p, docs, vectors, lexical, meta,
                                            cos[:, dense_col[id(p)]] if id(p) in dense_col else None)
            score = np.zeros(n)
            for s, w in p.weights.items():
                if s in parts:
                    score += w * parts[s]
            if p.classifier is not None:
                prob = p.classifier.probability(parts, vectors)
                parts["classifier"] = prob
                score = learned.blend(score, prob)
            over = np.flatnonzero((score >= prof.threshold) & (seqs > p.state.watermark) & (score > 0))
            eligible: list[int] = [int(i) for i in over if not _excluded(prof, int(i), meta)]
            t = report.add_time("fuse", t)
            kept, dropped = suppress_duplicates(eligible, [meta.keys(i) for i in eligible],
                                                [float(score[i]) for i in eligible], seen.get(prof.name, ()))
            report.suppressed[prof.name] = report.suppressed.get(prof.name, 0) + len(dropped)
            kept = kept[: remaining.get(prof.name, prof.max_items)]
            if kept:
                scored.append((p, kept, score, parts, raw))
            report.add_time("dedupe", t)
        t = time.perf_counter()
        marks = self._highlights([(p, [docs[i] for i, _ in kept]) for p, kept, *_ in scored
                                  if p.lexical is not None and "lexical" in p.weights])  # terms that scored
        out = {p.profile.name: self._explain(p, kept, docs, seqs, vectors, score, parts, raw, meta,
                                             marks.get(p.profile.name, {}))
               for p, kept, score, parts, raw in scored}
        report.add_time("explain", t)
        return out

    @staticmethod
    def _signal_parts(p: Prepared, docs: Sequence[PatentDocument], vectors: np.ndarray | None,
                      lexical: dict[str, dict[str, float]], meta: _BatchMeta | None = None,
                      cosines: np.ndarray | None = None) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Calibrated (and raw) signals of the documents for the profile's weighted signals: dense from
        `cosines` (else `vectors` @ the profile vector), lexical from BM25 by document id, classes, applicants."""
        n, prof = len(docs), p.profile
        meta = meta or _BatchMeta(docs)
        parts: dict[str, np.ndarray] = {}
        raw: dict[str, np.ndarray] = {}
        if cosines is None and "dense" in p.needs and vectors is not None and p.vector is not None:
            cosines = vectors @ p.vector
        if cosines is not None:
            raw["dense"] = np.asarray(cosines)
            parts["dense"] = np.asarray(fusion.calibrate_dense(raw["dense"], p.background))
        if "lexical" in p.needs and p.lexical is not None:
            raw["lexical"] = np.zeros(n)
            scores = lexical.get(prof.name, {})
            for i, d in enumerate(docs):
                raw["lexical"][i] = scores.get(d.id, 0.0)
            parts["lexical"] = np.asarray(fusion.calibrate_bm25(raw["lexical"], p.background))
        if "classes" in p.needs:
            parts["classes"] = meta.class_mask(prof.classes)
        if "applicants" in p.needs:
            parts["applicants"] = meta.applicant_mask(prof.applicants)
        if "related" in p.needs:
            parts["related"] = meta.related_scores(p.background.related)
        return parts, raw

    def _lexical_scores(self, active: Sequence[Prepared], docs: Sequence[PatentDocument],
                        lexical_filters: Callable[[Prepared], Filters],
                        max_seq: int | None) -> dict[str, dict[str, float]]:
        """Profile -> {document id: BM25} for its best `lexical_limit` documents of the batch. Uses the index's
        batch path when it has one (`lexical_scores`: all profiles at once), else one search per profile."""
        wanted = [p for p in active if "lexical" in p.needs and p.lexical is not None]
        limit = self.options.lexical_limit
        out: dict[str, dict[str, float]] = {}
        if isinstance(self.index, BatchLexicalScores):
            batch_path = self.index.lexical_scores
            groups: dict[str, list[tuple[Prepared, Filters]]] = defaultdict(list)
            for p in wanted:  # profiles share filters unless their watermarks differ
                f = lexical_filters(p)
                groups[repr(f)].append((p, f))
            for members in groups.values():
                scores = batch_path([p.lexical for p, _ in members if p.lexical is not None], members[0][1], limit,
                                    max_seq)
                out.update({p.profile.name: s for (p, _), s in zip(members, scores, strict=True)})
            return out
        ids = [d.id for d in docs] if max_seq is not None else None
        for p in wanted:
            assert p.lexical is not None
            f = lexical_filters(p) if ids is None else dataclasses.replace(lexical_filters(p), ids=ids)
            res = self.index.search(SearchRequest(query=p.lexical, filters=f, limit=limit, highlight=False))
            out[p.profile.name] = {h.id: h.score for h in res.hits}
        return out

    def _highlights(self, wanted: list[tuple[Prepared, list[PatentDocument]]]) -> dict[str, dict[str, Any]]:
        """Profile -> {document id: highlights of its query}: the index's `highlight_many` when it has one
        (each document analyzed once for all profiles), else one highlighting search per profile."""
        if isinstance(self.index, BatchHighlights):
            res = self.index.highlight_many([(p.lexical, ds) for p, ds in wanted if p.lexical is not None])
            return {p.profile.name: r for (p, _), r in zip(wanted, res, strict=True)}
        out: dict[str, dict[str, Any]] = {}
        for p, ds in wanted:
            assert p.lexical is not None
            hits = self.index.search(SearchRequest(query=p.lexical, filters=Filters(ids=[d.id for d in ds]),
                                                   limit=len(ds), highlight=True)).hits
            out[p.profile.name] = {h.id: h.highlights for h in hits}
        return out

    def _explain(self, p: Prepared, kept: list[tuple[int, list[int]]], docs: Sequence[PatentDocument],
                 seqs: np.ndarray, vectors: np.ndarray | None, score: np.ndarray, parts: dict[str, np.ndarray],
                 raw: dict[str, np.ndarray], meta: _BatchMeta, highlights: dict[str, Any]) -> list[Match]:
        prof = p.profile
        seed_ids = list(p.seeds)
        seed_mat = np.stack([p.seeds[s] for s in seed_ids]) if seed_ids else None
        out = []
        for i, dups in kept:
            doc = docs[i]
            marks = dict(highlights.get(doc.id, {}))
            if p.lexical is not None and "lexical" in p.weights and doc.description:
                if desc := meta.description(i).highlights(p.lexical):
                    marks["desc"] = desc  # the description's share of the BM25 evidence
            exp = Explanation(
                terms=matched_terms(marks), snippets={k: v[:2] for k, v in marks.items() if v},
                classes=matched_classes(doc, prof.classes),
                related_classes=[c for c in p.background.related if c in meta.subclasses_of(i)]
                if "related" in p.weights else [],
                applicants=matched_applicants(doc, prof.applicants, meta.aliases),
                similarity=round(float(raw["dense"][i]), 4) if "dense" in raw else None,
                duplicates=[docs[j].id for j in dups],
            )
            if seed_mat is not None and vectors is not None:
                sims = seed_mat @ vectors[i]
                best = int(np.argmax(sims))
                exp.seed, exp.seed_similarity = seed_ids[best], round(float(sims[best]), 4)
            weights = dict(p.weights)
            if p.classifier is not None:  # the fused part keeps 1 - CLASSIFIER_SHARE of the score
                weights = {s: w * (1 - learned.CLASSIFIER_SHARE) for s, w in weights.items()}
                weights["classifier"] = learned.CLASSIFIER_SHARE
                exp.learned_from = p.classifier.judged
            breakdown = {s: {"raw": round(float(raw[s][i]), 4) if s in raw else round(float(parts[s][i]), 4),
                             "calibrated": round(float(parts[s][i]), 4), "weight": round(w, 4)}
                         for s, w in weights.items() if s in parts}
            keys = set(meta.keys(i))
            for j in dups:
                keys |= meta.keys(j)
            out.append(Match(prof.name, doc, int(seqs[i]), round(float(score[i]), 4), breakdown, exp, keys))
        return out


class _BatchMeta:
    """Inverted maps over one batch: class symbols by subclass, applicant keys, lower-cased text."""

    def __init__(self, docs: Sequence[PatentDocument], aliases: ApplicantAliases | None = None) -> None:
        self.docs = docs
        self.aliases = aliases
        self.n = len(docs)
        self._descriptions: dict[int, DescriptionText] = {}
        self.by_subclass: dict[str, list[tuple[int, str]]] = defaultdict(list)
        self.by_applicant: dict[str, list[int]] = defaultdict(list)
        for i, d in enumerate(docs):
            for sym in {c.symbol for c in [*d.ipc, *d.cpc]}:
                self.by_subclass[sym[:4]].append((i, sym))
            for key in {applicant_key(a.name) for a in d.applicants}:
                self.by_applicant[key].append(i)
        self._tokens: dict[int, set[str]] = {}
        self._keys: dict[int, set[str]] = {}
        self._subclass_rows: dict[str, np.ndarray] = {}

    def description(self, i: int) -> DescriptionText:
        """Document i's description, analyzed once for every profile that explains a match on it."""
        if i not in self._descriptions:
            self._descriptions[i] = DescriptionText(self.docs[i].description or "")
        return self._descriptions[i]

    def keys(self, i: int) -> set[str]:
        """The document's invention keys (matching.dedupe), computed once per batch; do not mutate."""
        if i not in self._keys:
            self._keys[i] = invention_keys(self.docs[i])
        return self._keys[i]

    def class_mask(self, prefixes: Sequence[str]) -> np.ndarray:
        mask = np.zeros(self.n)
        for pre in prefixes:
            for i, sym in self.by_subclass.get(pre[:4], ()):
                if sym.startswith(pre):
                    mask[i] = 1.0
        return mask

    def related_scores(self, related: Mapping[str, float]) -> np.ndarray:
        """Per document, the largest share (fusion.related_classes) among its subclasses; 0 outside them."""
        out = np.zeros(self.n)
        for sub, share in related.items():
            rows = self._subclass_rows.get(sub)
            if rows is None:
                rows = self._subclass_rows[sub] = np.unique([i for i, _ in self.by_subclass.get(sub, ())]).astype(int)
            out[rows] = np.maximum(out[rows], share)
        return out

    def classes_of(self, i: int) -> set[str]:
        d = self.docs[i]
        return {c.symbol for c in [*d.ipc, *d.cpc]}

    def subclasses_of(self, i: int) -> set[str]:
        return subclasses(self.docs[i])

    def applicant_mask(self, names: Sequence[str]) -> np.ndarray:
        """1 for the documents filed by a watched applicant (`names` as the profile writes them), in any spelling."""
        mask = np.zeros(self.n)
        for key in {k for n in names for k in (self.aliases.keys(n) if self.aliases else {applicant_key(n)})}:
            mask[self.by_applicant.get(key, [])] = 1.0
        return mask

    def tokens(self, i: int) -> set[str]:
        if i not in self._tokens:
            d = self.docs[i]
            text = "\n".join([*d.titles.values(), *d.abstracts.values(), claims_text(d)])
            self._tokens[i] = set(analyze(text))
        return self._tokens[i]


def subclasses(doc: PatentDocument) -> set[str]:
    """The IPC and CPC subclasses (first four characters) a document is classified in."""
    return {c.symbol[:4] for c in [*doc.ipc, *doc.cpc]}


def _excluded(prof: Profile, i: int, meta: _BatchMeta) -> bool:
    """Hard exclusions: language, excluded classes, excluded terms (in title, abstract or claims)."""
    doc = meta.docs[i]
    if prof.languages:
        langs = {x.lower() for x in [doc.lang, *doc.titles, *doc.abstracts] if x}
        if langs and not langs & set(prof.languages):
            return True
    if prof.exclude_classes and any(s.startswith(tuple(prof.exclude_classes)) for s in meta.classes_of(i)):
        return True
    if prof.exclude_terms:
        toks = meta.tokens(i)
        for term in prof.exclude_terms:
            words = analyze(term)
            if words and all(w in toks for w in words):
                return True
    return False


def lexical_query(profile: Profile) -> Query | None:
    """The profile's boolean query, or else an OR of its description's content terms (BM25 ranks them)."""
    if profile.query:
        return parse_query(profile.query)
    words = description_terms(profile.description)
    if not words:
        return None
    terms: list[Query] = [Term(None, w) for w in words if re.fullmatch(r"\w+", w)]
    if not terms:
        return None
    return terms[0] if len(terms) == 1 else Or(tuple(terms))


def description_terms(text: str) -> list[str]:
    """The content terms of a description as the index analyzes them, in order, distinct: words of more than two
    characters that are not stop words or numbers (at most MAX_DESCRIPTION_TERMS), and CJK bigrams - the index's
    tokens for Chinese and Japanese - that are not generic (at most MAX_DESCRIPTION_BIGRAMS)."""
    words: dict[str, None] = {}
    bigrams: dict[str, None] = {}
    for token in analyze(text):
        if _is_cjk_token(token):
            if (len(bigrams) < MAX_DESCRIPTION_BIGRAMS and token not in _CJK_STOP
                    and not (len(token) > 1 and _CJK_FUNCTION_CHARS.intersection(token))):
                bigrams.setdefault(token, None)
        elif len(words) < MAX_DESCRIPTION_TERMS and token not in _STOP and len(token) > 2 and not token.isdigit():
            words.setdefault(token, None)
    return [*words, *bigrams]


def _is_cjk_token(token: str) -> bool:
    return bool(token) and _CJK_CHAR.match(token) is not None


_CJK_CHAR = re.compile("[\u1100-\u11ff\u3005-\u3007\u3041-\u30ff\u3131-\u318e\u31f0-\u31ff\u3400-\u4dbf"
                       "\u4e00-\u9fff\ua960-\ud7ff\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f]")


def _window_filters(p: Prepared, first: int) -> Filters:
    """Lexical candidates of a batch: documents after the profile's watermark and from the batch's first on."""
    return Filters(min_seq=max(p.state.watermark, first - 1))
