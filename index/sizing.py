"""When an index has outgrown its backend: the embedded (SQLite) index's comfortable size, measured.

`bench/scale.py --sizes 10000,100000 --backends es,embedded` on a 2-core machine: at 100k documents the embedded
index answers term queries at p95 ~220 ms and facet counts at p95 ~930 ms (Elasticsearch: 32 and 80 ms), and its
file is ~5 GB. Past that size `patentsift stats` advises the Elasticsearch backend.
"""

from __future__ import annotations

import os

EMBEDDED_COMFORTABLE_DOCUMENTS = 100_000
COMFORTABLE_ENV = "PATENTSIFT_EMBEDDED_COMFORTABLE_DOCUMENTS"  # a faster machine may raise it


def comfortable_documents() -> int:
    value = os.environ.get(COMFORTABLE_ENV, "")
    return int(value) if value.isdigit() else EMBEDDED_COMFORTABLE_DOCUMENTS


def size_advice(backend: str, documents: int) -> str | None:
    """A one-line advice when `documents` is past what `backend` serves comfortably, else None."""
    limit = comfortable_documents()
    if backend != "embedded" or documents <= limit:
        return None
    return (f"the embedded index holds {documents:,} documents, past its comfortable size "
            f"({limit:,}: searches with facets then take about a second); move to "
            "Elasticsearch: set [index] backend = \"elasticsearch\", then `patentsift index verify --repair` "
            "feeds it every harvested document from the stored files (README: \"Embedded vs Elasticsearch\")")
