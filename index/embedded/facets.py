"""Facet counts from compact in-memory columns (numpy), loaded from the embedded index's tables.

The store keeps one FacetColumns per state of the file (PRAGMA data_version and its own write counter, like
the vector matrix) and counts any set of matching row ids with bincount instead of GROUP BY queries joined to
the matches; the counts and the order (count desc, then value) are those of the SQL it replaces.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

import numpy as np

from index.base import FacetValue

# Each facet is read as (value, the document rows that have it) groups, so that the rows come back as one
# string per group rather than one Python tuple per row. Single-valued facets: one value (or NULL) per row.
_SINGLE = {
    "year": "SELECT CAST(year AS TEXT), group_concat(rid) FROM documents WHERE year IS NOT NULL GROUP BY year",
    "country": "SELECT cc, group_concat(rid) FROM documents WHERE cc IS NOT NULL GROUP BY cc",
    "kind": "SELECT kind, group_concat(rid) FROM documents WHERE kind IS NOT NULL GROUP BY kind",
}
# Multi-valued facets, grouped in the table's key order (no sort); several groups may share a value (the
# subclass of several symbols), and a (row, value) pair counts once.
_PAIRS = {
    "ipc": "SELECT subclass, group_concat(doc) FROM classes WHERE scheme = 'ipc' AND subclass IS NOT NULL "
    "GROUP BY symbol",
    "cpc": "SELECT subclass, group_concat(doc) FROM classes WHERE scheme = 'cpc' AND subclass IS NOT NULL "
    "GROUP BY symbol",
    "applicant": "SELECT name, group_concat(doc) FROM applicants GROUP BY name",
}


def _ints(text: str | None) -> np.ndarray:
    return np.fromstring(text, dtype=np.int64, sep=",") if text else np.zeros(0, dtype=np.int64)


def _grouped(conn: sqlite3.Connection, sql: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The distinct values in SQLite's BINARY order (code point order), and (row id, value code) pairs."""
    groups = conn.execute(sql).fetchall()
    values = sorted({str(v) for v, _ in groups})
    code = {v: i for i, v in enumerate(values)}
    rids = _ints(",".join(d for _, d in groups))
    codes = np.repeat(np.array([code[str(v)] for v, _ in groups], dtype=np.int64),
                      [d.count(",") + 1 for _, d in groups])
    return values, rids, codes


class FacetColumns:
    """Every document row's facet values: the sorted row ids, a code per row for single-valued facets and
    (position, code) pairs for multi-valued ones."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.rids = np.sort(_ints(conn.execute("SELECT group_concat(rid) FROM documents").fetchone()[0]))
        self.single: dict[str, tuple[list[str], np.ndarray]] = {}
        for name, sql in _SINGLE.items():
            values, rids, codes = _grouped(conn, sql)
            per_row = np.full(len(self.rids), -1, dtype=np.int64)
            per_row[self._positions(rids)[0]] = codes
            self.single[name] = (values, per_row)
        self.pairs: dict[str, tuple[list[str], np.ndarray, np.ndarray]] = {}
        for name, sql in _PAIRS.items():
            values, rids, codes = _grouped(conn, sql)
            pos, known = self._positions(rids)
            width = max(len(values), 1)
            key = np.sort(pos[known] * width + codes[known])
            key = key[np.concatenate(([True], key[1:] != key[:-1]))] if len(key) else key  # each pair once
            self.pairs[name] = (values, key // width, key % width)

    def _positions(self, rids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions of `rids` in self.rids and which of them are there (a side row without its document)."""
        pos = np.minimum(np.searchsorted(self.rids, rids), max(len(self.rids) - 1, 0))
        known = self.rids[pos] == rids if len(self.rids) else np.zeros(len(rids), dtype=bool)
        return pos, known

    def positions(self, rids: np.ndarray) -> np.ndarray | None:
        """Positions of `rids` (sorted) in this snapshot; None when one of them is unknown to it."""
        if not len(rids):
            return np.zeros(0, dtype=np.int64)
        pos = np.searchsorted(self.rids, rids)
        if pos[-1] >= len(self.rids) or not np.array_equal(self.rids[np.minimum(pos, len(self.rids) - 1)], rids):
            return None
        return pos

    def counts(self, positions: np.ndarray | None, names: Iterable[str], size: int) -> dict[str, list[FacetValue]]:
        """The `size` most frequent values of each facet among the rows at `positions` (None: every row)."""
        mask = None
        if positions is not None:
            mask = np.zeros(len(self.rids), dtype=bool)
            mask[positions] = True
        out: dict[str, list[FacetValue]] = {}
        for name in names:
            if name in self.single:
                values, codes = self.single[name]
                codes = codes if mask is None else codes[mask]
                codes = codes[codes >= 0]
            else:
                values, pos, codes = self.pairs[name]
                codes = codes if mask is None else codes[mask[pos]]
            counts = np.bincount(codes, minlength=len(values))
            present = np.flatnonzero(counts)
            best = present[np.lexsort((present, -counts[present]))][:size]  # count desc, then value
            out[name] = [FacetValue(values[i], int(counts[i])) for i in best]
        return out
