"""The embedded default index backend: one SQLite file (FTS5 + side tables + vectors), no server."""

from index.embedded.store import EmbeddedIndex

__all__ = ["EmbeddedIndex"]
