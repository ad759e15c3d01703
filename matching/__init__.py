"""Matching interest profiles against new patent documents: BM25 plus dense embeddings.

Importing this package loads no model: `load_embedder` does, on first call.
"""

from matching.embedding_cache import EmbeddingCache
from matching.embeddings import DEFAULT_MODEL, Embedder, document_text, load_embedder

__all__ = ["DEFAULT_MODEL", "Embedder", "EmbeddingCache", "document_text", "load_embedder"]
