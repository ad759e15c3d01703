"""A three-node Elasticsearch cluster on loopback (scripts/es-cluster): an index with one replica loses a node
while it is being searched and while another index is being bulk-loaded; the searches keep answering with the
same totals, the load completes (or resumes once), and nothing is missing afterwards."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from index.base import SearchRequest
from index.elastic import BulkInterrupted, ElasticIndex
from index.model import PatentDocument
from index.query.ast import MatchAll
from index.query.parser import parse_query
from tests.integration.es_support import reachable, unique_prefix

pytestmark = pytest.mark.es

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "es-cluster"
NODES = 3
LOADED = 2000  # documents bulk-loaded while a node goes away (upsert reads two batches of 500 before sending)
QUERIES = ["*", "method OR device", "ipc:H01L OR ipc:G06F", "pd:[2005 TO 2015]"]


def _urls() -> list[str]:
    out = subprocess.run([str(SCRIPT), "urls"], capture_output=True, text=True, check=True).stdout
    return out.strip().split(",")


def _script(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def cluster() -> Iterator[list[str]]:
    """The URLs of a green three-node cluster: the one already running on scripts/es-cluster's ports, or one
    started here (and stopped afterwards). Fails when PATENTSIFT_REQUIRE_ES=1 and none can be had."""
    urls = _urls()
    started = False
    up = [u for u in urls if reachable(u) is None]
    if len(up) < NODES:
        if up:  # a partial cluster left over: complete it
            for i, u in enumerate(urls):
                if u not in up:
                    _script("start-node", str(i))
        else:
            res = _script("start")
            if res.returncode != 0:
                msg = f"could not start a {NODES}-node cluster with scripts/es-cluster: {res.stderr[-2000:]}"
                if os.environ.get("PATENTSIFT_REQUIRE_ES") == "1":
                    pytest.fail(msg)
                pytest.skip(msg)
            started = True
    yield urls
    if started:
        _script("stop")
    else:  # leave it as found
        for i, u in enumerate(urls):
            if reachable(u) is not None:
                _script("start-node", str(i))


def _generated(n: int, start: int) -> Iterator[PatentDocument]:
    from bench.corpus import CorpusGenerator

    return CorpusGenerator(seed=7, max_description=1500).documents(n, start=start)


def test_node_lost_during_searches_and_a_bulk_load(cluster: list[str]) -> None:
    searched = ElasticIndex(cluster, index_prefix=unique_prefix("cl-search"), shards=3, replicas=1,
                            request_timeout=60)
    loaded = ElasticIndex(cluster, index_prefix=unique_prefix("cl-load"), shards=3, replicas=1, chunk_size=50,
                          request_timeout=60)
    stopped: list[int] = []
    try:
        assert not searched.upsert(_generated(300, 0)).failed
        es = searched.es
        for ix in (searched, loaded):
            health = es.cluster.health(index=ix.alias, wait_for_status="green", timeout="120s")
            assert health["status"] == "green", health
        requests = [SearchRequest(MatchAll() if q == "*" else parse_query(q), limit=5, facets=("ipc",))
                    for q in QUERIES]
        expected = [searched.search(r).total for r in requests]
        assert expected[0] == 300 and all(t > 0 for t in expected)

        # the victim: a node that is not the elected master and holds a primary of the index being loaded
        master = es.cat.master(format="json")[0]["node"]
        primaries = {s["node"] for s in es.cat.shards(index=loaded.current_index(), format="json")
                     if s["prirep"] == "p"}
        names = [f"patentsift-{u.rsplit(':', 1)[1]}" for u in cluster]
        victim = next(i for i, name in enumerate(names) if name != master and name in primaries)

        errors: list[BaseException] = []
        answers: list[tuple[int, int]] = []  # (query number, total) for every search that answered
        done = threading.Event()
        gone = threading.Event()

        def search_loop() -> None:
            while not done.is_set():
                for i, r in enumerate(requests):
                    try:
                        answers.append((i, searched.search(r).total))
                    except BaseException as exc:  # noqa: BLE001 - asserted below
                        errors.append(exc)

        progress: list[int] = []  # documents the cluster had indexed into the loaded index when the node went

        def indexed_so_far() -> int:
            stats = es.indices.stats(index=loaded.alias, metric="indexing")
            return int(stats["_all"]["primaries"]["indexing"]["index_total"])

        def stop_victim() -> None:
            deadline = time.monotonic() + 30
            while indexed_so_far() < 200 and time.monotonic() < deadline:
                time.sleep(0.05)  # wait until the load is well under way
            progress.append(indexed_so_far())
            res = _script("stop-node", str(victim), timeout=90)
            assert res.returncode == 0, res.stderr
            stopped.append(victim)
            gone.set()

        stopper = threading.Thread(target=stop_victim)

        def documents() -> Iterator[PatentDocument]:
            for k, doc in enumerate(_generated(LOADED, 10_000)):
                if k == 1050:  # the first 1,000 are being sent: stop the node in the middle of the load
                    stopper.start()
                if k == 1500:
                    gone.wait(60)  # the rest of the load goes to a two-node cluster
                yield doc

        searcher = threading.Thread(target=search_loop)
        searcher.start()
        t0 = time.monotonic()
        try:
            try:
                report = loaded.upsert(documents())
            except BulkInterrupted as exc:  # the load resumes: documents are keyed, so a rerun adds nothing twice
                print(f"load interrupted ({len(exc.pending)} pending), resuming: {exc}")
                report = loaded.upsert(_generated(LOADED, 10_000))
            stopper.join(90)
            answered_before = len(answers)
            deadline = time.monotonic() + 30
            while len(answers) < answered_before + 2 * len(requests) and time.monotonic() < deadline:
                time.sleep(0.2)  # searches after the node is gone, too
        finally:
            done.set()
            searcher.join(60)
        print(f"load + node loss: {time.monotonic() - t0:.1f}s, node stopped after {progress} documents, "
              f"{len(answers)} searches answered")

        assert stopped == [victim], "the node was not stopped"
        assert 200 <= progress[0] < LOADED, progress  # it went in the middle of the load
        assert not errors, errors[:3]
        assert len(answers) > 2 * len(requests)
        wrong = [(QUERIES[i], t, expected[i]) for i, t in answers if t != expected[i]]
        assert not wrong, wrong[:5]  # never a partial answer
        assert not report.failed, report.failed[:3]
        assert loaded.count() == LOADED
        assert searched.count() == 300
        ids = {d.id for d in _generated(LOADED, 10_000)}
        found = loaded.es.mget(index=loaded.alias, ids=sorted(ids), source=False)
        assert all(d["found"] for d in found["docs"]), "documents missing after the load"
        settings = es.indices.get_settings(index=loaded.alias)
        assert all(s["settings"]["index"].get("refresh_interval") in (None, "1s")
                   for s in settings.body.values()), "the bulk load left refresh off"
    finally:
        for ix in (searched, loaded):
            try:
                ix.drop()
            finally:
                ix.close()
