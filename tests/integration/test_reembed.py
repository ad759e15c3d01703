"""A model change re-embeds the stored vectors with one command, no re-harvest: `patentsift index reembed`.

The index remembers which model made its vectors; the matching engine never stores a second model's vectors
beside them (it says to re-embed instead), and "more like this" answers nothing until the index is moved."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from harvest.ingest import parse_path
from matching.embeddings import ENGLISH_MODEL, document_text, load_embedder
from matching.engine import MatchingEngine
from patentsift.config import Config
from patentsift.searching import similar_documents
from patentsift.wiring import System
from subscribers.profiles import Profile
from tests.conftest import SAMPLE_DATA

ROOT = Path(__file__).resolve().parents[2]


def test_reembed_moves_the_index_to_the_configured_model(tmp_path: Path) -> None:
    cfg = Config(data_dir=tmp_path / "data")
    english = load_embedder(ENGLISH_MODEL)
    with System(cfg) as system:
        docs = list(parse_path(SAMPLE_DATA / "uspto"))[:40]
        assert not system.index.upsert(docs).failed
        system.match_store.save_profile(Profile(name="garments", description="protective garments and gloves"))
        MatchingEngine(system.index, system.match_store, english).run()  # the old model's vectors
        assert system.index.vector_model() == english.model_id

    env = {**os.environ, "PATENTSIFT_CONFIG": str(tmp_path / "none.toml")}
    env.pop("PATENTSIFT_EMBEDDING_MODEL", None)
    proc = subprocess.run([sys.executable, "-m", "patentsift", "--data-dir", str(cfg.data_dir), "index", "reembed",
                           "--batch-size", "16"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"{len(docs)} document(s) embedded with" in proc.stdout

    with System(cfg) as system:
        current = system.embedder()
        assert current is not None and current.model_id != english.model_id
        assert system.index.vector_model() == current.model_id
        probe = docs[3]
        hits = system.index.knn(current.encode([document_text(probe)])[0], 1)
        assert hits[0].id == probe.id  # the stored vectors are the current model's
        assert similar_documents(system.index, probe, current, k=3)
        assert similar_documents(system.index, probe, english, k=3) == []  # never compares two models' vectors

        # the old model again: its vectors are not mixed in, and the run says what to do
        more = list(parse_path(SAMPLE_DATA / "uspto"))[40:50]
        assert not system.index.upsert(more).failed
        run = MatchingEngine(system.index, system.match_store, english).run()
        assert any("patentsift index reembed" in n for n in run.notes), run.notes
        again = system.index.knn(current.encode([document_text(probe)])[0], 1)
        assert again[0].id == probe.id and np.isclose(again[0].score, hits[0].score, atol=1e-5)
