"""Duplicate inventions, pure: documents that share a family, priority, application number or publication number.

An application and its grant (EP A1/B1 share the publication number; US ones share the application number), two
publications of one family, or two filings claiming one priority are one invention to a subscriber: he sees the
best-scoring one once, and never again in a later run (the store keeps the keys of what he has been sent).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import TypeVar

from index.model import PatentDocument

T = TypeVar("T")


def _norm(text: str) -> str:
    return re.sub(r"[^0-9A-Z]", "", (text or "").upper())


def invention_keys(doc: PatentDocument) -> set[str]:
    """Keys two publications of one invention share: `pub:`, `app:`, `fam:`, `pri:`."""
    keys = {f"pub:{doc.pn.country}{doc.pn.number.lstrip('0')}"}
    if doc.application_number:
        app = _norm(doc.application_number)
        if not app.startswith(doc.pn.country):  # US numbers are often given without the country code
            app = doc.pn.country + app
        keys.add(f"app:{app}")
    if doc.family_id:
        keys.add(f"fam:{_norm(doc.family_id)}")
    for p in doc.priorities:
        if p.number:
            number = _norm(p.number)
            keys.add(f"pri:{_norm(p.country)}{number}" if not number.startswith(_norm(p.country)) else f"pri:{number}")
    return keys


def group_duplicates(keys: Sequence[set[str]]) -> list[list[int]]:
    """Partition item indices into groups connected by any shared key (union-find), in first-seen order."""
    parent = list(range(len(keys)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[str, int] = {}
    for i, ks in enumerate(keys):
        for k in ks:
            if k in owner:
                a, b = find(i), find(owner[k])
                if a != b:
                    parent[max(a, b)] = min(a, b)
            else:
                owner[k] = i
    groups: dict[int, list[int]] = {}
    for i in range(len(keys)):
        groups.setdefault(find(i), []).append(i)
    return list(groups.values())


def suppress_duplicates(
    items: Sequence[T], keys: Sequence[set[str]], scores: Sequence[float], seen: Iterable[str] = (),
) -> tuple[list[tuple[T, list[T]]], list[T]]:
    """Keep the best-scoring item of each invention not already `seen`.

    Returns (kept, dropped): kept as (item, its suppressed duplicates) best score first; dropped are the items whose
    invention was already sent in an earlier run.
    """
    seen_keys = set(seen)
    kept: list[tuple[T, list[T]]] = []
    dropped: list[T] = []
    for group in group_duplicates(keys):
        if any(keys[i] & seen_keys for i in group):
            dropped.extend(items[i] for i in group)
            continue
        order = sorted(group, key=lambda i: (-scores[i], i))
        kept.append((items[order[0]], [items[i] for i in order[1:]]))
    index_of = {id(item): i for i, item in enumerate(items)}
    kept.sort(key=lambda pair: (-scores[index_of[id(pair[0])]], index_of[id(pair[0])]))
    return kept, dropped
