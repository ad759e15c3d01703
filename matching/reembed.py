"""Move an index's stored vectors to another embedding model without a re-harvest (`patentsift index reembed`)."""

from __future__ import annotations

from collections.abc import Callable

from index.base import Index, VectorModelTag
from matching.embeddings import Embedder, document_text
from matching.engine import Cache


def reembed(index: Index, embedder: Embedder, cache: Cache | None = None, *, batch_size: int = 256,
            progress: Callable[[int, int], None] | None = None) -> int:
    """Embed every indexed document with `embedder` and store the vectors (through `cache` when given); the index
    is tagged with the model once all are stored. Returns how many documents were embedded; `progress(done,
    total)` after each batch. Safe to interrupt and rerun: it starts again and the tag changes only at the end."""
    total, done, seq = index.count(), 0, 0
    while True:
        page = list(index.documents_since(seq, batch_size))
        if not page:
            break
        docs = [d for _, d in page]
        texts = [document_text(d) for d in docs]
        vectors = cache.embed(texts, embedder) if cache is not None else embedder.encode(texts)
        index.set_vectors({d.id: v for d, v in zip(docs, vectors, strict=True)})
        done += len(docs)
        seq = page[-1][0]
        if progress is not None:
            progress(done, total)
    if isinstance(index, VectorModelTag):
        index.set_vector_model(embedder.model_id)
    return done
