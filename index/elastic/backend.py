"""ElasticIndex: the Index protocol on an Elasticsearch 8.x cluster (official client, versioned indices + alias)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager, nullcontext
from itertools import islice
from typing import Any

import orjson
from elastic_transport import ConnectionError as TransportConnectionError
from elastic_transport import ConnectionTimeout
from elasticsearch import ApiError, BadRequestError, Elasticsearch, NotFoundError, helpers

from index.base import (
    FacetValue,
    Filters,
    Hit,
    IndexError_,
    SearchRequest,
    SearchResult,
    UpsertReport,
    check_sort,
)
from index.elastic import mapping as m
from index.elastic.translate import (
    FACET_FIELDS,
    Analysis,
    decode_cursor,
    encode_cursor,
    facet_aggs,
    filter_clauses,
    highlight_spec,
    to_dsl,
)
from index.model import PatentDocument, merge_documents
from index.query.ast import MatchAll

log = logging.getLogger(__name__)
UNREACHABLE = (TransportConnectionError, ConnectionTimeout)
BATCH = 500  # documents per client-side batch (one mget for stored vectors/partials, then bulk requests)
MAX_CHUNK_BYTES = 8 * 1024 * 1024  # well under a small node's indexing-pressure limit (10% of heap)
KNN_OVERSAMPLE = 3.0  # knn: this many times k quantized nearest neighbours are rescored with the float vectors
RETRY_STATUS = (429, 503)  # per-item or whole-request answers worth retrying (queue full, shard moving)
# score, then newest publication first, then id (the embedded backend's order; equal scores tie-break alike)
SORT = [{"_score": "desc"}, {"pd": {"order": "desc", "missing": "_last"}}, {"id": "asc"}]
# request.sort -> the sort clause: a date sort puts that date (newest first, unknown last) before the score
SORTS = {"relevance": SORT,
         "pd": [{"pd": {"order": "desc", "missing": "_last"}}, {"_score": "desc"}, {"id": "asc"}],
         "ad": [{"ad": {"order": "desc", "missing": "_last"}}, {"_score": "desc"}, {"id": "asc"}]}


class BulkInterrupted(IndexError_):
    """The cluster became unreachable mid-load; `pending` lists the ids that were not indexed."""

    def __init__(self, message: str, report: UpsertReport, pending: list[str]) -> None:
        super().__init__(message)
        self.report = report
        self.pending = pending


class ElasticIndex:
    def __init__(
        self,
        hosts: str | Sequence[str] | None = None,
        client: Elasticsearch | None = None,
        *,
        index_prefix: str = "patentsift",
        api_key: str | None = None,
        basic_auth: tuple[str, str] | None = None,
        ca_certs: str | None = None,
        verify_certs: bool = True,
        request_timeout: float = 30,
        analyzers: str = "builtin",
        refresh: str | bool = "wait_for",
        vector_dims: int | None = None,
        chunk_size: int = 200,
        max_retries: int = 3,
        shards: int = 1,
        replicas: int = 0,
        bulk_threads: int = 2,
        bulk_relax_replicas: bool = False,
    ) -> None:
        if client is None:
            if not hosts:
                raise IndexError_("ElasticIndex needs hosts (e.g. http://127.0.0.1:9200) or a client")
            tls: dict[str, Any] = {"ca_certs": ca_certs} if ca_certs else {}
            client = Elasticsearch(
                hosts, api_key=api_key, basic_auth=basic_auth, verify_certs=verify_certs,
                request_timeout=request_timeout, max_retries=max_retries, retry_on_timeout=True, **tls,
            )
        self.es = client
        self.alias = f"{index_prefix}-docs"
        self.prefix = index_prefix
        self.refresh = refresh
        self.chunk_size = chunk_size
        self.max_retries = max_retries
        self.vector_dims = vector_dims
        self.shards = shards
        self.replicas = replicas
        self.bulk_threads = max(1, bulk_threads)
        self.bulk_relax_replicas = bulk_relax_replicas
        self._requested = analyzers
        self._seq_lock = threading.Lock()
        self._last_seq = 0
        self._side: ThreadPoolExecutor | None = None  # facet counts beside a search (created on first use)
        self._rescore = True  # knn rescores with the float vectors until the node says it cannot
        self.mode = self._open()

    # --- setup -------------------------------------------------------------------------------------------
    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run one client call; turn an unreachable cluster into IndexError_ naming the hosts."""
        try:
            return fn(*args, **kwargs)
        except UNREACHABLE as exc:
            raise IndexError_(f"Elasticsearch unreachable during {what} ({self._hosts()}): {exc}") from exc

    def _search(self, what: str, **kwargs: Any) -> Any:
        """A search that never returns partial results; a shard failure (a node leaving: its search contexts
        vanish, its shards move) is retried twice on the copies left before it is an error."""
        for attempt in range(3):
            try:
                return self._call(what, self.es.search, allow_partial_search_results=False, **kwargs)
            except BadRequestError:
                raise
            except ApiError as exc:
                if attempt == 2 or exc.error != "search_phase_execution_exception":
                    raise
                log.info("%s: shard failure (%s), retrying", what, exc)
                time.sleep(0.25 * (attempt + 1))
        raise AssertionError("unreachable")

    def _hosts(self) -> str:
        nodes = getattr(self.es.transport, "node_pool", None)
        try:
            return ", ".join(str(n.base_url) for n in nodes.all()) if nodes else "?"
        except Exception:  # noqa: BLE001 - only for the message
            return "?"

    def _open(self) -> str:
        """Find the alias or create the first versioned index; return the analysis mode in use."""
        if self._call("open", self.es.indices.exists_alias, name=self.alias):
            meta = self._call("open", self.es.indices.get_mapping, index=self.alias)
            first = next(iter(meta.body.values()))["mappings"].get("_meta", {})
            self._heal_bulk_settings()
            return str(first.get("analysis", "client"))
        mode = self.resolve_mode()
        name = self._create_index(mode)
        self._call("open", self.es.indices.put_alias, index=name, name=self.alias)
        return mode

    def resolve_mode(self) -> str:
        """`builtin` -> `server` when the node has the CJK filters (analysis-common), else `client`."""
        choice = self._requested.lower()
        if choice not in ("builtin", "auto"):
            return choice
        try:
            self.es.indices.analyze(tokenizer="standard", filter=m.PROBE_FILTERS["server"], text="试验 Test")
            return "server"
        except BadRequestError:
            log.info("node lacks cjk_width/cjk_bigram (analysis-common): analyzing on the client")
            return "client"

    def _create_index(self, mode: str) -> str:
        name = f"{self.prefix}-docs-v{m.SCHEMA_VERSION}-{time.time_ns()}"
        body = m.index_settings(mode, self.vector_dims, shards=self.shards, replicas=self.replicas)
        try:
            self._call("create index", self.es.indices.create, index=name, **body)
        except BadRequestError as exc:
            raise IndexError_(f"cannot create {name} with analyzers={mode!r}: {exc.message} "
                              f"(a plugin analyzer needs the plugin installed on every node)") from exc
        return name

    def current_index(self) -> str:
        aliases = self._call("alias lookup", self.es.indices.get_alias, name=self.alias)
        return next(iter(aliases.body))

    def _refresh(self) -> None:
        if self.refresh:
            self._call("refresh", self.es.indices.refresh, index=self.alias)

    def _next_seq(self) -> int:
        """Time-based, strictly increasing within this process (nanoseconds)."""
        with self._seq_lock:
            self._last_seq = max(time.time_ns(), self._last_seq + 1)
            return self._last_seq

    # --- writes ------------------------------------------------------------------------------------------
    def upsert(self, documents: Iterable[PatentDocument]) -> UpsertReport:
        """Bulk index by _id = publication number; per-document failures land in report.failed.

        A large load (more than one batch of BATCH documents) runs with the index's refresh turned off (and,
        with `bulk_relax_replicas`, no replicas), restored when the load ends, also when it fails; its bulk
        requests go out on `bulk_threads` connections while the next batch is prepared. Smaller writes send one
        request at a time, so what a refresh makes visible is always a prefix in `seq` order (a reader of
        `documents_since` never sees a later document before an earlier one)."""
        report = UpsertReport()
        it = iter(documents)
        first = list(islice(it, BATCH))
        second = list(islice(it, BATCH)) if len(first) == BATCH else []
        with self._bulk_load() if second else nullcontext(False) as relaxed:
            with _BulkSender(self, report, threads=self.bulk_threads if relaxed else 1) as sender:
                for batch in (first, second):
                    if batch:
                        sender.send(self._actions(batch))
                while batch := list(islice(it, BATCH)):
                    sender.send(self._actions(batch))
        self._refresh()
        return report

    def _actions(self, docs: list[PatentDocument]) -> list[tuple[str, bytes]]:
        """(id, NDJSON action + source) per document of one batch."""
        docs = self._merge_partials(docs)
        vectors = self._existing_vectors([d.id for d in docs])
        return [(d.id, _index_line(self.alias, d.id,
                                   m.document_body(d, self.mode, self._next_seq(), vectors.get(d.id))))
                for d in docs]

    def _bulk(self, actions: list[dict[str, Any]], so_far: UpsertReport) -> UpsertReport:
        """Index prepared `_op_type: index` actions (rebuild, set_vectors) through the same sender."""
        report = UpsertReport()
        lines = [(a["_id"], _index_line(a["_index"], a["_id"], a["_source"])) for a in actions]
        with _BulkSender(self, report, so_far) as sender:
            sender.send(lines)
        return report

    @contextmanager
    def _bulk_load(self) -> Iterator[bool]:
        """Refresh off (and replicas 0 when asked) for the duration of a large load; always restored."""
        try:
            name = self.current_index()
            got = self._call("bulk settings", self.es.indices.get_settings, index=name,
                             name=["index.refresh_interval", "index.number_of_replicas"], include_defaults=True)
            flat = next(iter(got.body.values()))
            live = {**flat.get("defaults", {}).get("index", {}), **flat.get("settings", {}).get("index", {})}
            before: dict[str, Any] = {"refresh_interval": flat.get("settings", {}).get("index", {})
                                      .get("refresh_interval")}
            relaxed: dict[str, Any] = {"refresh_interval": "-1"}
            if self.bulk_relax_replicas and str(live.get("number_of_replicas", "0")) != "0":
                before["number_of_replicas"] = int(live["number_of_replicas"])
                relaxed["number_of_replicas"] = 0
            if before["refresh_interval"] == "-1":  # left over from a load that could not restore it
                before["refresh_interval"] = None
            self._call("bulk settings", self.es.indices.put_settings, index=name, settings={"index": relaxed})
        except (IndexError_, ApiError) as exc:
            log.warning("could not relax index settings for a bulk load (%s); loading anyway", exc)
            yield False
            return
        try:
            yield True
        finally:
            try:
                self._call("restore settings", self.es.indices.put_settings, index=name,
                           settings={"index": before})
            except (IndexError_, ApiError) as exc:  # noqa: PERF203 - reported, healed by the next _open
                log.error("could not restore %s after a bulk load (%s): %s; the next open restores the refresh "
                          "interval", name, before, exc)

    def _heal_bulk_settings(self) -> None:
        """An index left with refresh off by an interrupted load gets its default refresh back (not while a
        load is writing to it: that load restores it when it ends)."""
        try:
            got = self.es.indices.get_settings(index=self.alias, name="index.refresh_interval")
        except (*UNREACHABLE, ApiError):
            return
        for name, body in got.body.items():
            if body.get("settings", {}).get("index", {}).get("refresh_interval") == "-1":
                if self._being_written(name):
                    continue
                log.warning("%s was left with refresh off by an interrupted bulk load: restoring it", name)
                self._call("restore settings", self.es.indices.put_settings, index=name,
                           settings={"index": {"refresh_interval": None}})

    def _merge_partials(self, docs: list[PatentDocument]) -> list[PatentDocument]:
        """A partial document (e.g. an OPS claims response) fills the stored record instead of replacing it."""
        partial_ids = [d.id for d in docs if d.partial]
        stored = self._mget(partial_ids) if partial_ids else {}
        out: dict[str, PatentDocument] = {}
        for d in docs:
            base = out.get(d.id) or stored.get(d.id)
            out[d.id] = merge_documents(base, d) if base and (d.partial or base.partial) else d
        return list(out.values())

    def _mget(self, ids: list[str], fields: Sequence[str] = ("doc", "desc")) -> dict[str, PatentDocument]:
        if not ids:
            return {}
        res = self._call("get", self.es.mget, index=self.alias, ids=ids, source_includes=list(fields))
        return {d["_id"]: _doc(d["_source"]) for d in res["docs"] if d.get("found")}

    def _existing_vectors(self, ids: list[str]) -> dict[str, list[float]]:
        res = self._call("get", self.es.mget, index=self.alias, ids=ids, source_includes=["vec"])
        return {d["_id"]: d["_source"]["vec"] for d in res["docs"] if d.get("found") and d["_source"].get("vec")}

    def delete(self, ids: Iterable[str]) -> int:
        actions = [{"_op_type": "delete", "_index": self.alias, "_id": i} for i in ids]
        if not actions:
            return 0
        deleted = 0
        try:
            for ok, item in helpers.streaming_bulk(self.es, actions, raise_on_error=False, chunk_size=self.chunk_size):
                deleted += int(ok and item["delete"].get("result") == "deleted")
        except UNREACHABLE as exc:
            raise IndexError_(f"Elasticsearch unreachable during delete ({self._hosts()}): {exc}") from exc
        self._refresh()
        return deleted

    def set_vectors(self, vectors: dict[str, Sequence[float]]) -> None:
        """Re-index the stored documents with their vectors (tokens are derived, so no partial update)."""
        ids = list(vectors)
        for start in range(0, len(ids), BATCH):
            chunk = ids[start:start + BATCH]
            res = self._call("get", self.es.mget, index=self.alias, ids=chunk,
                             source_includes=["doc", "desc", "seq"])
            actions = [{"_op_type": "index", "_index": self.alias, "_id": d["_id"],
                        "_source": m.document_body(_doc(d["_source"]), self.mode,
                                                   d["_source"]["seq"], [float(x) for x in vectors[d["_id"]]])}
                       for d in res["docs"] if d.get("found")]
            report = self._bulk(actions, UpsertReport())
            if report.failed:
                raise IndexError_(f"vectors not stored for {len(report.failed)} documents: {report.failed[:3]}")
        self._refresh()

    def vector_model(self) -> str | None:
        """The embedding model the stored vectors came from (index.base.VectorModelTag; kept in the index's
        mapping `_meta`), None when untagged."""
        return self._meta().get("vector_model")

    def set_vector_model(self, model_id: str | None) -> None:
        meta = {k: v for k, v in self._meta().items() if k != "vector_model"}
        if model_id is not None:
            meta["vector_model"] = model_id
        self._call("set vector model", self.es.indices.put_mapping, index=self.current_index(), meta=meta)

    def _meta(self, index: str | None = None) -> dict[str, Any]:
        res = self._call("mapping", self.es.indices.get_mapping, index=index or self.alias)
        return dict(next(iter(res.body.values()))["mappings"].get("_meta", {}))

    def vectors(self, ids: Sequence[str]) -> dict[str, list[float]]:
        """The stored vector of each of `ids` that has one (index.base.StoredVectors)."""
        out: dict[str, list[float]] = {}
        ids = list(ids)
        for start in range(0, len(ids), BATCH):
            out.update(self._existing_vectors(ids[start:start + BATCH]))
        return out

    def without_vectors(self, filters: Filters | None = None, limit: int = 1000) -> tuple[int, list[str]]:
        """How many documents matching `filters` have no stored vector, and up to `limit` of their ids."""
        query = {"bool": {"filter": filter_clauses(filters) if filters else [],
                          "must_not": [{"exists": {"field": "vec"}}]}}
        res = self._search("without vectors", index=self.alias, query=query, size=max(0, limit), source=False,
                           sort=[{"seq": "asc"}], track_total_hits=True)
        return int(res["hits"]["total"]["value"]), [h["_id"] for h in res["hits"]["hits"]]

    def _being_written(self, name: str, window: float = 2.0) -> bool:
        def total() -> int:
            stats = self.es.indices.stats(index=name, metric="indexing")
            return int(stats["_all"]["primaries"]["indexing"]["index_total"])

        before = total()
        time.sleep(window)
        return total() != before

    # --- reads -------------------------------------------------------------------------------------------
    def get(self, doc_id: str) -> PatentDocument | None:
        try:
            res = self._call("get", self.es.get, index=self.alias, id=doc_id, source_includes=["doc", "desc"])
        except NotFoundError:
            return None
        return _doc(res["_source"])

    def count(self) -> int:
        return int(self._call("count", self.es.count, index=self.alias)["count"])

    def applicant_names(self) -> list[FacetValue]:
        """Every distinct (normalized) applicant name with its document count, most documents first (a composite
        aggregation, paged)."""
        source = [{"name": {"terms": {"field": FACET_FIELDS["applicant"]}}}]
        out: list[FacetValue] = []
        after: dict[str, Any] | None = None
        while True:
            agg: dict[str, Any] = {"size": 5000, "sources": source, **({"after": after} if after else {})}
            res = self._search("applicant names", index=self.alias, size=0, aggs={"names": {"composite": agg}})
            names = res.get("aggregations", {}).get("names", {})
            out += [FacetValue(str(b["key"]["name"]), int(b["doc_count"])) for b in names.get("buckets", [])]
            after = names.get("after_key")
            if not after or not names.get("buckets"):
                break
        return sorted(out, key=lambda v: (-v.count, v.value))

    def build_body(self, request: SearchRequest) -> dict[str, Any]:
        """The search body for a request (pure apart from the analysis mode)."""
        analysis = Analysis(self.mode)
        query = {"bool": {"must": [to_dsl(request.query, analysis)], "filter": filter_clauses(request.filters)}}
        body: dict[str, Any] = {"query": query, "size": max(0, request.limit) + 1,
                                "sort": SORTS[check_sort(request.sort)], "track_total_hits": True,
                                "_source": ["doc", "desc"], "track_scores": True}
        if request.search_after:
            body["search_after"] = decode_cursor(request.search_after)
        else:
            body["from"] = request.offset
        if request.facets:
            body["aggs"] = facet_aggs(request.facets)
        if request.highlight and not isinstance(request.query, MatchAll):
            spec = highlight_spec(request.query, analysis)
            if spec:
                body["highlight"] = spec
        return body

    def search(self, request: SearchRequest) -> SearchResult:
        """One request for the page; with facets, a second, hitless one beside it counts the total and the facets
        (the node's request cache keeps that one until the next refresh, and the page's request, needing no
        exact total, may skip hits that cannot make the page)."""
        body = self.build_body(request)
        counting: Future[Any] | None = None
        if "aggs" in body:
            counts = {"query": body["query"], "size": 0, "track_total_hits": True, "aggs": body.pop("aggs")}
            body["track_total_hits"] = False
            counting = self._side_pool().submit(self._search, "search", index=self.alias, request_cache=True,
                                                **counts)
        try:
            res = self._search("search", index=self.alias, **_params(body))
            totals = counting.result() if counting is not None else res
        except BadRequestError as exc:
            raise IndexError_(f"Elasticsearch rejected the search: {exc.message}") from exc
        raw = res["hits"]["hits"]
        more = len(raw) > request.limit
        raw = raw[:max(0, request.limit)]
        hits = [_hit(h) for h in raw]
        facets = {
            name: [_facet_value(b) for b in totals.get("aggregations", {}).get(name, {}).get("buckets", [])]
            for name in request.facets if name in FACET_FIELDS
        }
        cursor = encode_cursor(raw[-1]["sort"]) if raw and more else None
        return SearchResult(total=int(totals["hits"]["total"]["value"]), hits=hits, facets=facets,
                            next_cursor=cursor)

    def _side_pool(self) -> ThreadPoolExecutor:
        if self._side is None:
            self._side = ThreadPoolExecutor(2, thread_name_prefix="es-facets")
        return self._side

    def knn(self, vector: Sequence[float], k: int, filters: Filters | None = None) -> list[Hit]:
        """Approximate nearest neighbours (HNSW over int8-quantized vectors, `num_candidates` = max(100, 10 k));
        the best KNN_OVERSAMPLE x k of them rescored with the float vectors (Elasticsearch 8.18 on; older
        nodes return the quantized scores); score = cosine similarity."""
        knn: dict[str, Any] = {"field": "vec", "query_vector": [float(x) for x in vector], "k": k,
                               "num_candidates": max(100, 10 * k)}
        if self._rescore:
            knn["rescore_vector"] = {"oversample": KNN_OVERSAMPLE}
        clauses = filter_clauses(filters) if filters else []
        if clauses:
            knn["filter"] = clauses
        try:
            res = self._search("knn", index=self.alias, knn=knn, size=k, source=["doc", "desc"])
        except BadRequestError as exc:
            if self._rescore and "rescore_vector" in str(exc):  # a node before 8.18
                self._rescore = False
                return self.knn(vector, k, filters)
            raise IndexError_(f"knn search failed (were vectors stored?): {exc.message}") from exc
        return [Hit(h["_id"], 2.0 * float(h["_score"]) - 1.0, _doc(h["_source"]))
                for h in res["hits"]["hits"]]

    def documents_since(self, seq: int, limit: int = 1000) -> Iterator[tuple[int, PatentDocument]]:
        """Documents upserted after `seq`, oldest first (pages of `limit` by search_after on seq)."""
        after = seq
        while True:
            res = self._search("documents_since", index=self.alias,
                               query={"range": {"seq": {"gt": after}}}, sort=[{"seq": "asc"}], size=limit,
                               source=["doc", "desc", "seq"])
            hits = res["hits"]["hits"]
            for h in hits:
                yield int(h["_source"]["seq"]), _doc(h["_source"])
            if len(hits) < limit:
                return
            after = int(hits[-1]["_source"]["seq"])

    # --- maintenance -------------------------------------------------------------------------------------
    def rebuild(self, mode: str | None = None) -> str:
        """New index from the current mapping, copy every document (recomputing derived fields), swap the
        alias atomically, delete the old index. Searches keep answering from the old index meanwhile."""
        old = self.current_index()
        new_mode = mode or self.resolve_mode()
        new = self._create_index(new_mode)
        copied = 0
        actions: list[dict[str, Any]] = []
        try:
            if tag := self._meta(old).get("vector_model"):  # the copied vectors keep their model's name
                meta = {**self._meta(new), "vector_model": tag}
                self._call("rebuild", self.es.indices.put_mapping, index=new, meta=meta)
            for h in helpers.scan(self.es, index=old, query={"query": {"match_all": {}}, "_source": ["doc", "desc", "seq", "vec"]}, size=500):
                src = h["_source"]
                doc = _doc(src)
                actions.append({"_op_type": "index", "_index": new, "_id": h["_id"],
                                "_source": m.document_body(doc, new_mode, src["seq"], src.get("vec"))})
                if len(actions) >= BATCH:
                    copied += self._copy(actions)
                    actions = []
            if actions:
                copied += self._copy(actions)
            self._call("refresh", self.es.indices.refresh, index=new)
        except BaseException:
            self.es.indices.delete(index=new, ignore_unavailable=True)
            raise
        self._call("alias swap", self.es.indices.update_aliases, actions=[
            {"remove": {"index": old, "alias": self.alias}}, {"add": {"index": new, "alias": self.alias}}])
        self._call("delete old index", self.es.indices.delete, index=old)
        self.mode = new_mode
        return f"rebuilt {self.alias}: {old} -> {new} ({copied} documents, analysis={new_mode})"

    def _copy(self, actions: list[dict[str, Any]]) -> int:
        report = self._bulk(actions, UpsertReport())
        if report.failed:
            raise IndexError_(f"rebuild: {len(report.failed)} documents failed, e.g. {report.failed[:3]}")
        return len(report.indexed)

    def drop(self) -> None:
        """Delete every index behind the alias (tests, `reset`)."""
        try:
            names = list(self.es.indices.get_alias(name=self.alias).body)
        except NotFoundError:
            return
        self.es.indices.delete(index=",".join(names), ignore_unavailable=True)

    def close(self) -> None:
        if self._side is not None:
            self._side.shutdown(wait=True)
        self.es.close()


class _BulkSender:
    """Sends NDJSON bulk requests on `bulk_threads` connections while the caller prepares the next batch;
    retries what the cluster asks to retry (429, 503), records every document's outcome, and turns a lost
    cluster into BulkInterrupted naming the documents not indexed (rerunning the load is safe)."""

    def __init__(self, ix: ElasticIndex, report: UpsertReport, so_far: UpsertReport | None = None,
                 threads: int | None = None) -> None:
        self.ix = ix
        self.report = report
        self.so_far = so_far or UpsertReport()
        self.threads = max(1, threads or ix.bulk_threads)
        self.pool = ThreadPoolExecutor(self.threads, thread_name_prefix="es-bulk")
        self.inflight: dict[Future[tuple[list[str], list[tuple[str, str]]]], list[str]] = {}
        self.given: list[str] = []  # every id handed to send(), in order
        self.done: set[str] = set()
        self.error: BaseException | None = None

    def __enter__(self) -> _BulkSender:
        return self

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:
        try:
            if exc is None:
                self._reap(all_=True)
                self._raise_if_failed()
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def send(self, lines: list[tuple[str, bytes]]) -> None:
        self.given.extend(doc_id for doc_id, _ in lines)
        for chunk in _chunks(lines, self.ix.chunk_size, MAX_CHUNK_BYTES):
            while len(self.inflight) >= (2 * self.threads if self.threads > 1 else 1):
                self._reap()
            self._raise_if_failed()
            self.inflight[self.pool.submit(self._send_chunk, chunk)] = [doc_id for doc_id, _ in chunk]

    def _reap(self, all_: bool = False) -> None:
        if not self.inflight:
            return
        finished, _ = wait(list(self.inflight), return_when="ALL_COMPLETED" if all_ else FIRST_COMPLETED)
        for fut in finished:
            self.inflight.pop(fut)
            try:
                indexed, failed = fut.result()
            except BaseException as exc:  # noqa: BLE001 - the first one is raised as BulkInterrupted
                self.error = self.error or exc
                continue
            self.report.indexed.extend(indexed)
            self.report.failed.extend(failed)
            self.done.update(indexed)
            self.done.update(doc_id for doc_id, _ in failed)

    def _raise_if_failed(self) -> None:
        if self.error is None:
            return
        self._reap(all_=True)  # let the requests in flight finish and count what they indexed
        exc = self.error
        if not isinstance(exc, (*UNREACHABLE, ApiError)):
            raise exc
        pending = [doc_id for doc_id in self.given if doc_id not in self.done]
        total = UpsertReport(self.so_far.indexed + self.report.indexed, self.so_far.failed + self.report.failed)
        shown = ", ".join(pending[:10]) + (f" (+{len(pending) - 10} more)" if len(pending) > 10 else "")
        what = "became unreachable" if isinstance(exc, UNREACHABLE) else "refused a bulk request"
        raise BulkInterrupted(
            f"Elasticsearch {what} ({self.ix._hosts()}) after {len(total.indexed)} documents were "
            f"indexed; {len(pending)} of this batch were NOT indexed: {shown}, nor any later input. "
            f"Rerun the load: documents are keyed by publication number, so nothing is duplicated. ({exc})",
            total, pending) from exc

    def _send_chunk(self, chunk: list[tuple[str, bytes]]) -> tuple[list[str], list[tuple[str, str]]]:
        indexed: list[str] = []
        failed: list[tuple[str, str]] = []
        todo = chunk
        attempt = 0
        while True:
            try:
                res = self.ix.es.bulk(operations=b"".join(line for _, line in todo))  # type: ignore[arg-type]
            except ApiError as exc:
                if exc.meta.status in RETRY_STATUS and attempt < self.ix.max_retries:
                    attempt += 1
                    time.sleep(min(30.0, 2.0 ** (attempt - 1)))
                    continue
                raise
            retry: list[tuple[str, bytes]] = []
            for (doc_id, line), item in zip(todo, res["items"], strict=True):
                info = next(iter(item.values()))
                status = int(info.get("status", 500))
                if status < 300:
                    indexed.append(doc_id)
                elif status in RETRY_STATUS and attempt < self.ix.max_retries:
                    retry.append((doc_id, line))
                else:
                    failed.append((doc_id, _reason(info)))
            if not retry:
                return indexed, failed
            todo = retry
            attempt += 1
            time.sleep(min(30.0, 2.0 ** (attempt - 1)))


def _chunks(lines: list[tuple[str, bytes]], size: int, max_bytes: int) -> Iterator[list[tuple[str, bytes]]]:
    """Bulk requests of at most `size` documents and about `max_bytes` bytes (a bigger document goes alone)."""
    chunk: list[tuple[str, bytes]] = []
    nbytes = 0
    for item in lines:
        if chunk and (len(chunk) >= size or nbytes + len(item[1]) > max_bytes):
            yield chunk
            chunk, nbytes = [], 0
        chunk.append(item)
        nbytes += len(item[1])
    if chunk:
        yield chunk


def _index_line(index: str, doc_id: str, source: dict[str, Any]) -> bytes:
    """One bulk `index` action and its source as NDJSON (orjson; `doc` may be a ready orjson.Fragment)."""
    action = orjson.dumps({"index": {"_index": index, "_id": doc_id}})
    try:
        body = orjson.dumps(source, default=_json_default)
    except orjson.JSONEncodeError:  # e.g. a lone surrogate or an integer beyond 64 bits: the standard library copes
        plain = {k: orjson.loads(orjson.dumps(v)) if isinstance(v, orjson.Fragment) else v for k, v in source.items()}
        body = json.dumps(plain, ensure_ascii=False, default=_json_default).encode("utf-8", "surrogatepass")
    return action + b"\n" + body + b"\n"


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def _doc(src: dict[str, Any]) -> PatentDocument:
    """The stored document: `doc` holds everything but the description, which is stored once, as `desc`
    (indices written before that keep it inside `doc`)."""
    data = src["doc"]
    if not data.get("description"):
        data = {**data, "description": src.get("desc", "")}
    return PatentDocument.from_dict(data)


def _params(body: dict[str, Any]) -> dict[str, Any]:
    """A search body as client keyword arguments (`from` and `_source` are spelled `from_` and `source`)."""
    renames = {"from": "from_", "_source": "source"}
    return {renames.get(k, k): v for k, v in body.items()}


def _reason(info: dict[str, Any]) -> str:
    err = info.get("error")
    if isinstance(err, dict):
        reason = f"{err.get('type')}: {err.get('reason')}"
        cause = err.get("caused_by")
        if isinstance(cause, dict):
            reason += f" (caused by {cause.get('type')}: {cause.get('reason')})"
        return reason
    return str(err or f"status {info.get('status')}")


def _hit(h: dict[str, Any]) -> Hit:
    return Hit(h["_id"], float(h.get("_score") or 0.0), _doc(h["_source"]),
               {k: list(v) for k, v in h.get("highlight", {}).items()})


def _facet_value(bucket: dict[str, Any]) -> FacetValue:
    return FacetValue(str(bucket["key"]), int(bucket["doc_count"]))
