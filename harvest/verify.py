"""Index integrity: does the index hold every document the harvest state says was stored?

The harvest state records, per file (its key: a path or a URL), the ids of the documents the index accepted, and
the local file that was read. An index can still lose documents behind the state's back (an Elasticsearch index
replaced or restored from an old snapshot, rows deleted from the embedded one): `check` counts what is missing
(cheap: `patentsift stats`), `verify` lists it per file and, with `repair`, re-feeds it from the stored files. A
file no longer on disk (downloads are deleted after ingestion unless `keep_downloads`) is cleared from the state
so that the next harvest fetches it again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harvest.ingest import document_ids, refeed_file
from harvest.state import HarvestState
from index.base import Filters, Index, SearchRequest
from index.query.ast import MatchAll


def present_count(index: Index, ids: list[str]) -> int:
    """How many of `ids` the index holds (one count query, no documents loaded)."""
    if not ids:
        return 0
    return index.search(SearchRequest(MatchAll(), Filters(ids=ids), limit=0, highlight=False)).total


def present_ids(index: Index, ids: Iterable[str], chunk: int = 500) -> set[str]:
    """Those of `ids` the index holds."""
    wanted = list(ids)
    found: set[str] = set()
    for i in range(0, len(wanted), chunk):
        part = wanted[i:i + chunk]
        if present_count(index, part) == len(part):
            found.update(part)
            continue
        res = index.search(SearchRequest(MatchAll(), Filters(ids=part), limit=len(part), highlight=False))
        found.update(h.id for h in res.hits)
    return found


@dataclass
class Check:
    """The quick comparison `patentsift stats` shows."""

    stored: int  # distinct documents the harvest state records as stored
    present: int  # of those, in the index
    unrecorded_files: int  # finished files harvested before stored ids were recorded (not checked)

    @property
    def missing(self) -> int:
        return self.stored - self.present

    def warning(self) -> str | None:
        if not self.missing:
            return None
        return (f"the harvest state records {self.stored} documents stored, the index holds only {self.present} "
                f"of them ({self.missing} missing): run `patentsift index verify` (and --repair)")


def check(index: Index, state: HarvestState) -> Check:
    present = stored = 0
    for ids in state.stored_ids():
        stored += len(ids)
        present += present_count(index, ids)
    return Check(stored, present, len(state.files_without_ids()))


@dataclass
class FileGap:
    """Documents of one harvested file that the index lacks, and what was (or can be) done about them."""

    key: str  # the file as the harvest state names it (path or URL)
    missing: list[str]
    path: str | None  # the local file that was read, when it is still on disk
    action: str = ""  # what --repair did

    @property
    def on_disk(self) -> bool:
        return self.path is not None


@dataclass
class Verification:
    stored: int  # distinct documents the state records as stored
    missing: list[str]  # of those, not in the index (before any repair)
    files: list[FileGap] = field(default_factory=list)
    unrecorded: list[str] = field(default_factory=list)  # files harvested before stored ids were recorded, gone
    backfilled: list[str] = field(default_factory=list)  # such files read from disk to learn their ids
    repaired: bool = False
    restored: int = 0  # missing documents the index holds after the repair
    refetch: list[str] = field(default_factory=list)  # files cleared so the next harvest fetches them again
    still_missing: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """The index holds every stored document (after the repair, when one ran)."""
        return not (self.still_missing if self.repaired else self.missing)


def local_file(row: dict[str, Any] | None, key: str) -> str | None:
    """The file on disk that holds `key`'s documents: the path recorded at harvest time, else the key itself when it
    is a path; None when neither exists any more."""
    candidates = [row.get("path") if row else None, None if "://" in key else key]
    for c in candidates:
        if c and Path(c).is_file():
            return c
    return None


def verify(index: Index, state: HarvestState, *, repair: bool = False) -> Verification:
    """Compare the harvest state with the index, file by file; with `repair`, re-feed what is missing from the
    stored files and clear files no longer on disk (or no longer holding the documents) for a re-fetch."""
    backfilled, unrecorded = [], []
    for old in state.files_without_ids():  # states from before stored ids were recorded: learn them from disk
        path = local_file(old, old["key"])
        if path is None:
            unrecorded.append(old["key"])
            continue
        state.record_stored(old["key"], document_ids(path, key=old["key"], source=old.get("source") or "file"))
        backfilled.append(old["key"])
    stored, missing = 0, []
    for ids in state.stored_ids():
        stored += len(ids)
        if present_count(index, ids) < len(ids):
            have = present_ids(index, ids)
            missing += [i for i in ids if i not in have]
    out = Verification(stored, missing, unrecorded=unrecorded, backfilled=backfilled)
    for key, ids in sorted(state.stored_keys(missing).items()):
        out.files.append(FileGap(key, ids, local_file(state.file(key), key)))
    if not repair:
        return out
    out.repaired = True
    for gap in out.files:
        row = state.file(gap.key)
        if row is None:  # cleared earlier (e.g. by a previous --repair): the next harvest reads it again
            gap.action = "waits for the next harvest (cleared for re-fetch earlier)"
            continue
        if gap.path is None:
            state.clear_for_refetch(gap.key)
            out.refetch.append(gap.key)
            gap.action = ("the file is no longer on disk: cleared from the harvest state, the next harvest of its "
                          "source fetches it again")
            continue
        seen = refeed_file(gap.path, index, state, key=gap.key, ids=set(gap.missing),
                           source=row.get("source") or "file", fetched_at=row.get("started_at"))
        gap.action = f"re-fed {len(seen)} from the stored file" + ("" if gap.path == gap.key else f" {gap.path}")
        if len(seen) < len(gap.missing):
            state.clear_for_refetch(gap.key)
            out.refetch.append(gap.key)
            gap.action += (f"; the file no longer holds {len(gap.missing) - len(seen)} of them (changed since the "
                           "harvest): cleared from the harvest state, the next harvest reads it again")
    have = present_ids(index, missing)
    out.restored = len(have)
    out.still_missing = [i for i in missing if i not in have]
    return out
