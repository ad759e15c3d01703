"""The real fixture documents as the project's parsers read them, each publication once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from harvest.ingest import parse_path
from index.model import PatentDocument

FETCHED = "2026-01-01T00:00:00+00:00"


def first_of_each_id(path: Path, keep: Callable[[PatentDocument], bool] = lambda d: True,
                     fetched_at: str = FETCHED) -> list[PatentDocument]:
    """Every document under `path` that `keep` accepts, the first occurrence of each id, in file order."""
    docs: dict[str, PatentDocument] = {}
    for d in parse_path(path, fetched_at=fetched_at):
        if keep(d):
            docs.setdefault(d.id, d)
    return list(docs.values())
