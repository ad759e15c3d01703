"""Elasticsearch-only behaviour: mapping and analysis, alias + rebuild without downtime, per-document failure
reports, and a node lost in the middle of a bulk load (a TCP proxy on 127.0.0.1 that is killed mid-load)."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from elasticsearch import BadRequestError, Elasticsearch

from index.analysis import analyze
from index.base import IndexError_, SearchRequest
from index.elastic import BulkInterrupted, ElasticIndex
from index.elastic.mapping import PROBE_FILTERS
from index.model import PatentDocument
from index.query.ast import MatchAll
from index.query.parser import parse_query
from tests.integration.es_support import KillableProxy, unique_prefix
from tests.integration.test_conformance import load_corpus, vectors_for

SAMPLES = ["Wireless power-transfer coils, 1,000.5 mm; don't U.S.A.", "一种医用放射治疗装置", "ＡＢＣ ｶﾀｶﾅ 显示设备 x"]


@pytest.fixture(scope="module")
def corpus(shared_patents: Path) -> list[PatentDocument]:
    return load_corpus(shared_patents)


@pytest.fixture
def index(es_url: str) -> Iterator[ElasticIndex]:
    ix = ElasticIndex(es_url, index_prefix=unique_prefix("es"))
    yield ix
    ix.drop()
    ix.close()


def test_mapping_alias_and_analysis(index: ElasticIndex, corpus: list[PatentDocument]) -> None:
    name = index.current_index()
    assert name.startswith(f"{index.prefix}-docs-v1-")
    mapping = index.es.indices.get_mapping(index=index.alias)[name]["mappings"]
    props = mapping["properties"]
    assert props["pn"]["type"] == "keyword" and props["applicant_norm"]["type"] == "keyword"
    assert props["vec"]["type"] == "dense_vector" and props["vec"]["similarity"] == "cosine"
    assert props["vec"]["index_options"]["type"] == "int8_hnsw"  # quantized HNSW on the node
    assert props["doc"] == {"type": "object", "enabled": False}
    assert props["pd"]["type"] == "date" and mapping["dynamic"] == "strict"
    assert mapping["_meta"]["analysis"] == index.mode
    # the node's tokens for every sample equal index.analysis.analyze (the embedded backend's analyzer)
    es: Elasticsearch = index.es
    for text in SAMPLES + [corpus[0].abstract()[:2000]]:
        if index.mode == "client":
            res = es.indices.analyze(index=name, field="tok.ab", text=" ".join(analyze(text)))
        else:
            res = es.indices.analyze(index=name, field="ab", text=text)
        assert [t["token"] for t in res["tokens"]] == analyze(text), text


def test_builtin_analysis_choice_matches_the_node(index: ElasticIndex) -> None:
    """`builtin` uses the node's CJK analyzer where it has analysis-common, else analyzes on the client."""
    try:
        res = index.es.indices.analyze(tokenizer="standard", filter=PROBE_FILTERS["server"], text=SAMPLES[2])
    except BadRequestError:
        assert index.mode == "client"
        return
    assert index.mode == "server"
    assert [t["token"] for t in res["tokens"]] == analyze(SAMPLES[2])


def test_rebuild_swaps_alias_without_downtime(index: ElasticIndex, corpus: list[PatentDocument]) -> None:
    assert not index.upsert(corpus).failed
    index.set_vectors(vectors_for(corpus))
    index.set_vector_model("model-a")
    old = index.current_index()
    errors: list[BaseException] = []
    totals: list[int] = []
    stop = threading.Event()

    def searcher() -> None:
        while not stop.is_set():
            try:
                totals.append(index.search(SearchRequest(parse_query("battery OR shielding"))).total)
            except BaseException as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(exc)

    thread = threading.Thread(target=searcher)
    thread.start()
    try:
        for _ in range(2):
            message = index.rebuild()
            assert f"{len(corpus)} documents" in message
    finally:
        stop.set()
        thread.join()
    assert not errors
    assert len(totals) > 3 and len(set(totals)) == 1 and totals[0] > 0
    new = index.current_index()
    assert new != old and not index.es.indices.exists(index=old)
    assert index.count() == len(corpus)
    first = corpus[0]
    assert index.knn(vectors_for(corpus)[first.id], 1)[0].id == first.id  # vectors survive the copy
    assert index.vector_model() == "model-a"  # with the name of their model
    assert index.get(first.id) is not None and index.get(first.id).to_dict() == first.to_dict()


def test_per_document_failures_are_reported(index: ElasticIndex, corpus: list[PatentDocument]) -> None:
    bad = dataclasses.replace(corpus[1], application_number="9" * 40000)  # an immense keyword term
    report = index.upsert([corpus[0], bad, corpus[2]])
    assert sorted(report.indexed) == sorted([corpus[0].id, corpus[2].id])
    assert len(report.failed) == 1 and report.failed[0][0] == bad.id
    assert "immense term" in report.failed[0][1]
    assert index.count() == 2 and index.get(bad.id) is None


@pytest.mark.parametrize("threads", [1, 2])
def test_node_lost_mid_bulk_then_rerun(es_url: str, corpus: list[PatentDocument], threads: int) -> None:
    """Kill the connection after two bulk requests: a clear IndexError_ names what was not indexed; once the
    node is back, rerunning indexes the rest with no duplicates. With two requests in flight, the response to
    one that the node did index can be lost with the connection: then the node holds more than was reported."""
    prefix = unique_prefix("lost")
    proxy = KillableProxy(es_url, allow_bulks=2)
    index = ElasticIndex(proxy.url, index_prefix=prefix, chunk_size=5, max_retries=1, request_timeout=5,
                         bulk_threads=threads)
    direct = ElasticIndex(es_url, index_prefix=prefix)
    try:
        with pytest.raises(BulkInterrupted) as err:
            index.upsert(corpus)
        exc = err.value
        assert isinstance(exc, IndexError_)
        assert exc.pending and set(exc.pending) <= {d.id for d in corpus}
        assert set(exc.report.indexed).isdisjoint(exc.pending)
        assert exc.pending[0] in str(exc) and "NOT indexed" in str(exc)
        assert set(exc.report.indexed) | set(exc.pending) == {d.id for d in corpus}
        with pytest.raises(IndexError_, match="unreachable"):
            index.count()
        direct.es.indices.refresh(index=direct.alias)
        if threads == 1:
            assert len(exc.report.indexed) == 10  # two chunks of five made it
            assert direct.count() == len(exc.report.indexed)
        else:
            assert 5 <= len(exc.report.indexed) <= 10 and len(exc.report.indexed) <= direct.count() <= 10
        # the node is back (a fresh proxy on the same port): rerun everything
        proxy = KillableProxy(es_url, port=proxy.port)
        report = index.upsert(corpus)
        assert not report.failed and len(report.indexed) == len(corpus)
        assert direct.count() == len(corpus)
        ids = [h.id for h in direct.search(SearchRequest(MatchAll(), limit=100, highlight=False)).hits]
        assert sorted(ids) == sorted(d.id for d in corpus) and len(ids) == len(set(ids))
    finally:
        proxy.kill()
        direct.drop()
        direct.close()
        index.close()


def test_large_load_relaxes_refresh_and_restores_it(index: ElasticIndex) -> None:
    """A load of more than one batch runs with refresh off; the setting comes back when the load ends, also
    when the input fails mid-load, and an index left with refresh off is healed when it is next opened."""
    from bench.corpus import CorpusGenerator

    def refresh_interval() -> str | None:
        got = index.es.indices.get_settings(index=index.alias, name="index.refresh_interval")
        values = [b.get("settings", {}).get("index", {}).get("refresh_interval") for b in got.body.values()]
        return values[0] if values else None  # an index without the setting is left out of the answer

    during: list[str | None] = []

    def documents(fail: bool) -> Iterator[PatentDocument]:
        for k, doc in enumerate(CorpusGenerator(3, max_description=300).documents(1200)):
            if k == 1100:
                during.append(refresh_interval())
                if fail:
                    raise RuntimeError("the harvest broke")
            yield doc

    with pytest.raises(RuntimeError, match="harvest broke"):
        index.upsert(documents(fail=True))
    assert during == ["-1"] and refresh_interval() is None
    report = index.upsert(documents(fail=False))
    assert not report.failed and len(report.indexed) == 1200 and index.count() == 1200
    assert during == ["-1", "-1"] and refresh_interval() is None
    index.es.indices.put_settings(index=index.alias, settings={"index": {"refresh_interval": "-1"}})
    reopened = ElasticIndex(index.es.transport.node_pool.get().base_url, index_prefix=index.prefix)
    reopened.close()
    assert refresh_interval() is None


def test_large_load_can_drop_replicas_and_restores_them(es_url: str) -> None:
    """`bulk_relax_replicas`: a large load runs without replicas; the count comes back afterwards."""
    from bench.corpus import CorpusGenerator

    ix = ElasticIndex(es_url, index_prefix=unique_prefix("relax"), replicas=1, bulk_relax_replicas=True)

    def replicas() -> str:
        got = ix.es.indices.get_settings(index=ix.alias, name="index.number_of_replicas")
        return str(next(iter(got.body.values()))["settings"]["index"]["number_of_replicas"])

    during: list[str] = []

    def documents() -> Iterator[PatentDocument]:
        for k, doc in enumerate(CorpusGenerator(4, max_description=200).documents(1200)):
            if k == 1100:  # batches 1 and 2 are read before the load starts
                during.append(replicas())
            yield doc

    try:
        assert replicas() == "1"
        report = ix.upsert(documents())
        assert not report.failed and ix.count() == 1200
        assert during == ["0"] and replicas() == "1"
    finally:
        ix.drop()
        ix.close()
