"""Learning from judgements, whole explanations and applicant aliases through the real engine and store (real
documents in an EmbeddedIndex, the real embedding model, SQLite)."""

from __future__ import annotations

import dataclasses
from datetime import date
from pathlib import Path

import pytest

from distribution.ipc_titles import subclass_title
from harvest.ingest import parse_path
from index.analysis import analyze
from index.embedded import EmbeddedIndex
from index.model import PatentDocument
from matching import fusion, learned
from matching.engine import MatchingEngine
from matching.explain import describe
from patentsift.wiring import standalone_match_store
from subscribers.profiles import Profile
from tests.integration.fixture_documents import first_of_each_id

FETCHED = "2026-01-01T00:00:00+00:00"


@pytest.fixture(scope="module")
def corpus(shared_patents: Path) -> list[PatentDocument]:
    return first_of_each_id(shared_patents / "uspto-grant", keep=lambda d: bool(d.abstract() and d.ipc),
                            fetched_at=FETCHED)


def _world(tmp: Path, docs: list[PatentDocument], embedder=None):  # noqa: ANN001, ANN202
    index = EmbeddedIndex(tmp / "index.sqlite")
    assert not index.upsert(docs).failed
    store = standalone_match_store(tmp / "patentsift.sqlite")
    return index, store, MatchingEngine(index, store, embedder)


def _electric(d: PatentDocument) -> bool:
    """The judgement simulated: relevant = classified in IPC section H (electricity)."""
    return any(c.symbol.startswith("H") for c in d.ipc)


def test_a_profile_with_enough_judgements_is_ranked_by_its_classifier(tmp_path: Path, corpus, embedder) -> None:  # noqa: ANN001
    index, store, engine = _world(tmp_path, corpus, embedder)
    assert sum(map(_electric, corpus)) >= 6
    store.save_profile(Profile(name="semis", description="electronic circuits and components", threshold=0.0,
                               max_items=1000))
    report = engine.run()
    before = [m.doc.id for m in report.matches["semis"]]
    assert not any(m.explanation.learned_from for m in report.matches["semis"])
    ids = {m.doc_id: m.id for m in store.matches("semis")}
    docs = {d.id: d for d in corpus}
    judged = before[:8] + before[-4:]  # what was sent first, and a few from the bottom
    for n, doc_id in enumerate(judged):  # curators and readers: both count
        store.add_feedback(ids[doc_id], _electric(docs[doc_id]), source="curator" if n % 2 else "subscriber")
    labels = [_electric(docs[d]) for d in judged]
    assert learned.enough(labels)
    after = engine.preview("semis", since=date(1800, 1, 1))
    assert after and all(m.explanation.learned_from == len(judged) for m in after)
    assert all("classifier" in m.breakdown for m in after)
    assert abs(sum(b["weight"] for b in after[0].breakdown.values()) - 1.0) < 1e-3
    assert any("classifier learned from" in line for line in describe(after[0].explanation))
    stored = engine.run()  # a run stores the same truth about how it ranked
    assert all(m.explanation.learned_from == len(judged) for ms in stored.matches.values() for m in ms)
    # on the documents nobody judged: electrical ones first, at least as much as before
    rest_before = [d for d in before if d not in judged]
    rest_after = [m.doc.id for m in after if m.doc.id not in judged]
    assert sum(_electric(docs[d]) for d in rest_after[:10]) >= sum(_electric(docs[d]) for d in rest_before[:10])
    prob = {m.doc.id: m.breakdown["classifier"]["calibrated"] for m in after if m.doc.id not in judged}
    yes = [v for d, v in prob.items() if _electric(docs[d])]
    no = [v for d, v in prob.items() if not _electric(docs[d])]
    assert yes and no and fusion.separation(yes, no) > 0.7  # it learned what the judges meant (chance: 0.5)
    store.close()
    index.close()


def test_few_judgements_adjust_weights_but_do_not_train_a_classifier(tmp_path: Path, corpus, embedder) -> None:  # noqa: ANN001
    index, store, engine = _world(tmp_path, corpus, embedder)
    store.save_profile(Profile(name="p", description="semiconductor wafer", classes=["H01L"], threshold=0.0,
                               max_items=1000))
    engine.run()
    prior = engine.prepare(["p"])[0]
    assert prior.classifier is None and prior.background.agreement is not None
    docs = {d.id: d for d in corpus}
    for m in store.matches("p")[:4]:
        store.add_feedback(m.id, _electric(docs[m.doc_id]), source="curator")
    p = engine.prepare(["p"])[0]
    assert p.classifier is None and p.weights != prior.weights
    assert abs(sum(p.weights.values()) - 1.0) < 1e-9
    store.close()
    index.close()


def test_explanations_include_the_description_and_class_titles(tmp_path: Path, corpus) -> None:
    """A query on the description: its matches say where in the description, not only ti/ab/cl highlights."""
    with_desc = [d for d in corpus if "semiconductor" in analyze(d.description)]
    assert with_desc
    index, store, engine = _world(tmp_path, corpus)
    store.save_profile(Profile(name="d", query="desc:semiconductor", classes=["H01L"], threshold=0.01,
                               max_items=1000))
    matches = engine.run().matches["d"]
    assert {m.doc.id for m in matches} >= {d.id for d in with_desc}
    for m in matches:
        if m.doc.id in {d.id for d in with_desc}:
            assert any("<mark>semiconductor</mark>" in s.lower() for s in m.explanation.snippets["desc"])
            assert "semiconductor" in m.explanation.terms
    classed = next(m for m in matches if m.explanation.classes)
    zh = describe(classed.explanation, class_title=lambda c: subclass_title(c, "zh"))
    assert any("半导体器件" in line for line in zh if line.startswith("classes:"))
    assert any(line.startswith("description: ") for line in describe(matches[0].explanation))
    store.close()
    index.close()


def test_applicant_watch_matches_the_chinese_name_learned_from_a_family(tmp_path: Path, shared_patents: Path) -> None:
    """A US grant assigned to Samsung Display Co., Ltd. and its Chinese family member naming 三星显示有限公司 (built
    from a real CNIPA document: the fixtures hold no such pair) teach the alias; a later Chinese publication by
    三星显示有限公司 (real, no family member in the index) is then matched by a profile watching "Samsung Display",
    also by a new engine (a new process: the alias comes from the stored documents again)."""
    cns = {d.id: d for d in parse_path(shared_patents / "cn", fetched_at=FETCHED)}
    us = next(d for d in parse_path(shared_patents / "uspto-grant" / "weekly", fetched_at=FETCHED)
              if d.id == "US-08421353-B2")
    later = cns["CN-113781974-A"]
    assert [p.name for p in later.applicants] == ["三星显示有限公司"] and not later.family_id
    twin = dataclasses.replace(cns["CN-115212463-A"], family_id="F1", applicants=later.applicants)
    index, store, engine = _world(tmp_path, [dataclasses.replace(us, family_id="F1"), twin])
    store.save_profile(Profile(name="rival", applicants=["SAMSUNG DISPLAY"], threshold=0.5, max_items=10))
    first = engine.run()
    assert [m.doc.id for m in first.matches["rival"]] == [us.id]
    assert first.matches["rival"][0].explanation.duplicates == [twin.id]  # matched too: one invention, sent once
    index.upsert([later])
    found = MatchingEngine(index, store).run().matches.get("rival", [])
    assert [m.doc.id for m in found] == [later.id]
    assert found[0].explanation.applicants == ["三星显示有限公司"]
    store.close()
    index.close()
