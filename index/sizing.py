"""When an index has outgrown its backend: the embedded (SQLite) index's comfortable size, measured.

`bench/scale.py --sizes 200000 --backends embedded` on a 2-core machine: at 200k documents every query kind of the
embedded index answers within p95 200 ms (term 122, facets 136, date 98 ms; Elasticsearch: 43, 81, 38 ms), its file
is ~11 GB and ingest runs at ~200 documents/s. Past that size `patentsift stats` advises the Elasticsearch backend.
"""

from __future__ import annotations

import os

EMBEDDED_COMFORTABLE_DOCUMENTS = 200_000
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
            f"({limit:,}: searches then slow past p95 200 ms and the file passes ~11 GB); move to "
            "Elasticsearch: set [index] backend = \"elasticsearch\", then `patentsift index verify --repair` "
            "feeds it every harvested document from the stored files (README: \"Embedded vs Elasticsearch\")")
