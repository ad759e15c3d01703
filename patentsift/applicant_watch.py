"""Applicant watch, as staff check it: which applicant names stored in the index a profile's watched applicants
match (matching.applicants.matching_names over the index's ApplicantNames list, kept for a minute per index)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

from index.base import ApplicantNames, FacetValue, Index
from matching.applicants import matching_names

CACHE_SECONDS = 60.0
_lock = threading.Lock()
_cache: dict[int, tuple[int, float, list[FacetValue]]] = {}  # id(index) -> (document count, when, names)


def stored_applicants(index: Index, *, cache: bool = True) -> list[FacetValue]:
    """The index's applicant names with document counts (empty when the backend cannot list them); reread when
    the index's document count changed or after CACHE_SECONDS."""
    if not isinstance(index, ApplicantNames):
        return []
    if not cache:
        return index.applicant_names()
    count, now = index.count(), time.monotonic()
    with _lock:
        kept = _cache.get(id(index))
        if kept and kept[0] == count and now - kept[1] < CACHE_SECONDS:
            return kept[2]
    names = index.applicant_names()
    with _lock:
        _cache[id(index)] = (count, now, names)
    return names


def watch_matches(index: Index, watched: Iterable[str], *, limit: int = 50,
                  cache: bool = True) -> dict[str, list[FacetValue]]:
    """Each watched applicant (as written, distinct, blanks dropped) -> the stored names it matches with their
    document counts, most documents first, at most `limit`."""
    entries = list(dict.fromkeys(w.strip() for w in watched if w.strip()))
    if not entries:
        return {}
    counts = {v.value: v.count for v in stored_applicants(index, cache=cache)}
    hits = matching_names(entries, counts)  # one pass over every stored name; then per entry over the hits
    return {w: [FacetValue(n, counts[n]) for n in matching_names([w], hits)[:limit]] for w in entries}
