"""EmbeddedIndex: the default index backend, a single SQLite file (FTS5 + side tables), no server."""

from __future__ import annotations

import base64
import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import cast

import numpy as np

from index.base import (
    FACETS,
    FacetValue,
    Filters,
    Hit,
    IndexError_,
    Prepared,
    SearchRequest,
    SearchResult,
    UpsertReport,
    as_document,
    check_sort,
)
from index.embedded.compile import Compiled, compile_cached, compile_filters
from index.embedded.facets import FacetColumns
from index.embedded.highlight import AnalyzedFields, highlight
from index.embedded.rows import (
    FTS_COLUMNS,
    DocRows,
    PreparedDocument,
    decode_document,
    doc_rows,
    prepare_document,
)
from index.embedded.schema import SIDE_TABLES, connect
from index.embedded.vectors import VectorMatrix, as_vector, to_blob
from index.fields import claims_text
from index.model import PatentDocument, PublicationNumber, merge_documents
from index.query.ast import FIELD_BOOSTS, Query

BATCH_SIZE = 500
FACET_SIZE = 20
_DOC_COLUMNS = ("id", "seq", "cc", "kind", "pd", "ad", "year", "pdkey", "an", "lang", "fam", "text_hash", "body")
_UPSERT_SQL = (
    f"INSERT INTO documents({', '.join(_DOC_COLUMNS)}) VALUES ({', '.join('?' * len(_DOC_COLUMNS))}) "
    f"ON CONFLICT(id) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in _DOC_COLUMNS[1:])}"
)
_FTS_INSERT = "INSERT INTO fts(rowid, {}) VALUES (?{})".format(
    ", ".join(f'"{c}"' for c in FTS_COLUMNS), ", ?" * len(FTS_COLUMNS))
_BM25 = "bm25(fts, " + ", ".join(str(FIELD_BOOSTS[c]) for c in FTS_COLUMNS) + ")"
_FACET_SQL = {
    "ipc": "SELECT subclass, COUNT(DISTINCT doc) FROM classes WHERE scheme = 'ipc' AND subclass IS NOT NULL "
    "AND doc IN (SELECT rid FROM m) GROUP BY subclass",
    "cpc": "SELECT subclass, COUNT(DISTINCT doc) FROM classes WHERE scheme = 'cpc' AND subclass IS NOT NULL "
    "AND doc IN (SELECT rid FROM m) GROUP BY subclass",
    "applicant": "SELECT name, COUNT(*) FROM applicants WHERE doc IN (SELECT rid FROM m) GROUP BY name",
    "year": "SELECT CAST(year AS TEXT), COUNT(*) FROM m WHERE year IS NOT NULL GROUP BY year",
    "country": "SELECT cc, COUNT(*) FROM m WHERE cc IS NOT NULL GROUP BY cc",
    "kind": "SELECT kind, COUNT(*) FROM m WHERE kind IS NOT NULL GROUP BY kind",
}


class EmbeddedIndex:
    """A persistent full-text + structured + vector index in one SQLite file (WAL mode), safe across threads."""

    def __init__(self, path: Path | str, *, timeout: float = 10.0) -> None:
        """Open or create the index file at `path` (a directory gets `index.sqlite` inside it); `timeout` is
        how long a write waits for another process's write lock."""
        self.path = Path(path)
        if self.path.is_dir():
            self.path = self.path / "index.sqlite"
        self._lock = threading.RLock()
        self._writes = 0  # bumped on every write by this object; with PRAGMA data_version it keys the caches
        self._vectors: tuple[tuple[int, int], VectorMatrix] | None = None
        self._facet_cache: tuple[tuple[int, int], FacetColumns] | None = None
        with self._guard("open"):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn: sqlite3.Connection | None = connect(self.path, timeout)

    # --- plumbing ---------------------------------------------------------------------------------------------
    @contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        """Turn SQLite failures into IndexError_ with what the user can do about them."""
        try:
            with self._lock:
                yield
        except sqlite3.OperationalError as exc:
            msg = str(exc)
            if "locked" in msg or "busy" in msg:
                raise IndexError_(f"embedded index {self.path} is locked by another process ({what}): "
                                  "wait for it to finish or stop it, then retry") from exc
            if "fts5" in msg and "no such module" in msg:
                raise IndexError_("this Python's SQLite lacks FTS5, which the embedded index needs") from exc
            raise IndexError_(f"embedded index {self.path} failed ({what}): {msg}") from exc
        except sqlite3.DatabaseError as exc:
            raise IndexError_(f"embedded index {self.path} is unreadable or corrupt ({what}): {exc}; move the "
                              "file aside and rebuild the index from the harvested documents") from exc
        except OSError as exc:
            raise IndexError_(f"embedded index {self.path} cannot be opened or written ({what}): {exc}") from exc

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise IndexError_(f"embedded index {self.path} is closed")
        return self._conn

    @contextmanager
    def _write(self, what: str) -> Iterator[sqlite3.Connection]:
        with self._guard(what):
            conn = self.conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            finally:
                self._writes += 1

    @contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """One read transaction, so that several statements see one state of the index (call under _guard)."""
        conn = self.conn
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> EmbeddedIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writes -------------------------------------------------------------------------------------------
    def upsert(self, documents: Iterable[PatentDocument | Prepared]) -> UpsertReport:
        """Insert or replace by id, one transaction per batch; partial documents merge into the stored one.
        Documents may come prepared (`preparer()`): their rows are stored as they are."""
        report = UpsertReport()
        it = iter(documents)
        while batch := list(islice(it, BATCH_SIZE)):
            report.merge(self._upsert_batch(batch))
        return report

    def preparer(self) -> Callable[[PatentDocument], PreparedDocument]:
        """The function that builds a full document's rows ahead, in any process (index.base.PreparedUpsert)."""
        return prepare_document

    def _upsert_batch(self, batch: list[PatentDocument | Prepared]) -> UpsertReport:
        report = UpsertReport()
        docs: dict[str, PatentDocument | Prepared] = {}
        for doc in batch:  # a later copy of the same id replaces (or, when partial, completes) an earlier one
            prev = docs.get(doc.id)
            if prev is not None and (doc.partial or prev.partial):
                docs[doc.id] = merge_documents(as_document(prev), as_document(doc))
            else:
                docs[doc.id] = doc
        prepared: dict[str, DocRows] = {}
        for doc in docs.values():  # analysis happens outside the write lock (partials need the stored doc)
            if isinstance(doc, PreparedDocument):
                prepared[doc.id] = doc.rows
            elif not doc.partial:
                self._prepare(as_document(doc), prepared, report)
        with self._write("upsert") as conn:
            old = {row[0]: (row[1], row[2]) for row in conn.execute(
                "SELECT id, rid, text_hash FROM documents WHERE id IN (SELECT value FROM json_each(?))",
                (json.dumps(list(docs)),))}
            for doc_id, item in docs.items():
                if item.partial:
                    doc = as_document(item)
                    if doc_id in old:
                        body = conn.execute("SELECT body FROM documents WHERE id = ?", (doc_id,)).fetchone()[0]
                        doc = merge_documents(decode_document(body), doc)
                    self._prepare(doc, prepared, report)
            rows = [prepared[i] for i in docs if i in prepared]
            if not rows:
                return report
            seq = self._next_seq(conn, len(rows))
            conn.executemany(_UPSERT_SQL, [
                tuple(seq + i if c == "seq" else r.columns[c] for c in _DOC_COLUMNS) for i, r in enumerate(rows)
            ])
            rid_of = dict(conn.execute("SELECT id, rid FROM documents WHERE id IN (SELECT value FROM json_each(?))",
                                       (json.dumps([r.id for r in rows]),)).fetchall())
            replaced = [(old[r.id][0],) for r in rows if r.id in old]
            self._delete_side_rows(conn, replaced, vectors=False)
            stale = [(old[r.id][0],) for r in rows if r.id in old and old[r.id][1] != r.text_hash]
            conn.executemany("DELETE FROM vectors WHERE doc = ?", stale)  # text changed: its vector is stale
            conn.executemany(_FTS_INSERT, [(rid_of[r.id], *r.fts) for r in rows])
            conn.executemany("INSERT INTO keys(key, doc) VALUES (?, ?)",
                             [(k, rid_of[r.id]) for r in rows for k in r.pn_keys])
            conn.executemany("INSERT INTO classes(scheme, symbol, doc, subclass) VALUES (?, ?, ?, ?)",
                             [(s, sym, rid_of[r.id], sub) for r in rows for s, sym, sub in r.classes])
            conn.executemany("INSERT OR IGNORE INTO applicants(name, doc) VALUES (?, ?)",
                             [(a, rid_of[r.id]) for r in rows for a in r.applicants])
        report.indexed.extend(r.id for r in rows)
        return report

    @staticmethod
    def _prepare(doc: PatentDocument, prepared: dict[str, DocRows], report: UpsertReport) -> None:
        try:
            prepared[doc.id] = doc_rows(doc)
        except Exception as exc:  # one bad document must not sink the batch: it is reported instead
            report.failed.append((doc.id, f"{type(exc).__name__}: {exc}"))

    @staticmethod
    def _next_seq(conn: sqlite3.Connection, n: int) -> int:
        """Reserve n sequence numbers (never reused, even after deletes); returns the first."""
        row = conn.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()
        last = int(row[0]) if row else 0
        conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('seq', ?)", (str(last + n),))
        return last + 1

    @staticmethod
    def _delete_side_rows(conn: sqlite3.Connection, rids: list[tuple[int]], vectors: bool) -> None:
        conn.executemany("DELETE FROM fts WHERE rowid = ?", rids)
        for table in SIDE_TABLES + (("vectors",) if vectors else ()):
            conn.executemany(f"DELETE FROM {table} WHERE doc = ?", rids)

    def delete(self, ids: Iterable[str]) -> int:
        wanted = json.dumps(list(ids))
        with self._write("delete") as conn:
            rids = conn.execute("SELECT rid FROM documents WHERE id IN (SELECT value FROM json_each(?))",
                                (wanted,)).fetchall()
            self._delete_side_rows(conn, rids, vectors=True)
            conn.executemany("DELETE FROM documents WHERE rid = ?", rids)
        return len(rids)

    def set_vectors(self, vectors: dict[str, Sequence[float]]) -> None:
        """Store one vector per document id; all share one dimension, fixed by the first vectors stored."""
        if not vectors:
            return
        arrays = {doc_id: as_vector(v) for doc_id, v in vectors.items()}
        dims = {a.size for a in arrays.values()}
        with self._write("set_vectors") as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'vector_dim'").fetchone()
            dim = int(row[0]) if row else None
            if len(dims) > 1 or (dim is not None and dims != {dim}):
                raise IndexError_(f"vector dimension {sorted(dims)} does not match the index's dimension {dim}: "
                                  "one embedding model per index (rebuild the vectors to change models)")
            rid_of = dict(conn.execute("SELECT id, rid FROM documents WHERE id IN (SELECT value FROM json_each(?))",
                                       (json.dumps(list(arrays)),)).fetchall())
            missing = sorted(set(arrays) - set(rid_of))
            if missing:
                raise KeyError(f"vectors for documents not in the index: {', '.join(missing[:10])}")
            conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('vector_dim', ?)", (str(dims.pop()),))
            conn.executemany("INSERT OR REPLACE INTO vectors(doc, vec) VALUES (?, ?)",
                             [(rid_of[i], to_blob(a)) for i, a in arrays.items()])

    def vector_model(self) -> str | None:
        """The embedding model the stored vectors came from (index.base.VectorModelTag), None when untagged."""
        with self._guard("vector_model"):
            row = self.conn.execute("SELECT value FROM meta WHERE key = 'vector_model'").fetchone()
        return str(row[0]) if row else None

    def set_vector_model(self, model_id: str | None) -> None:
        with self._write("set_vector_model") as conn:
            if model_id is None:
                conn.execute("DELETE FROM meta WHERE key = 'vector_model'")
            else:
                conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('vector_model', ?)", (model_id,))

    def vectors(self, ids: Sequence[str]) -> dict[str, list[float]]:
        """The stored vector of each of `ids` that has one (index.base.StoredVectors)."""
        if not ids:
            return {}
        with self._guard("vectors"):
            rows = self.conn.execute(
                "SELECT d.id, v.vec FROM documents d JOIN vectors v ON v.doc = d.rid "
                "WHERE d.id IN (SELECT value FROM json_each(?))", (json.dumps(list(ids)),)).fetchall()
        return {i: np.frombuffer(blob, dtype="<f4").astype(np.float32).tolist() for i, blob in rows}

    def without_vectors(self, filters: Filters | None = None, limit: int = 1000) -> tuple[int, list[str]]:
        """How many documents matching `filters` have no stored vector, and up to `limit` of their ids."""
        fwhere, fparams = compile_filters(filters)
        sql = f"FROM documents d WHERE {fwhere} AND NOT EXISTS (SELECT 1 FROM vectors v WHERE v.doc = d.rid)"
        with self._guard("without_vectors"):
            total = int(self.conn.execute(f"SELECT COUNT(*) {sql}", fparams).fetchone()[0])
            ids = [str(r) for (r,) in self.conn.execute(f"SELECT d.id {sql} ORDER BY d.rid LIMIT ?",
                                                         [*fparams, max(0, limit)])]
        return total, ids

    # --- reads --------------------------------------------------------------------------------------------
    def count(self) -> int:
        with self._guard("count"):
            return int(self.conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0])

    def applicant_names(self) -> list[FacetValue]:
        """Every distinct (normalized) applicant name with its document count, most documents first."""
        with self._guard("applicant_names"):
            rows = self.conn.execute("SELECT name, COUNT(*) FROM applicants GROUP BY name ORDER BY 2 DESC, 1")
            return [FacetValue(str(v), int(c)) for v, c in rows]

    def get(self, doc_id: str) -> PatentDocument | None:
        with self._guard("get"):
            row = self.conn.execute("SELECT body FROM documents WHERE id = ?", (doc_id,)).fetchone()
            if row is None:
                try:
                    docdb = PublicationNumber.parse(doc_id).docdb
                except ValueError:
                    return None
                row = self.conn.execute("SELECT body FROM documents WHERE id = ?", (docdb,)).fetchone()
        return decode_document(row[0]) if row else None

    def documents_since(self, seq: int, limit: int = 1000) -> Iterator[tuple[int, PatentDocument]]:
        """Every document upserted after `seq`, oldest first, read `limit` at a time."""
        after, page = seq, max(1, limit)
        while True:
            with self._guard("documents_since"):
                rows = self.conn.execute("SELECT seq, body FROM documents WHERE seq > ? ORDER BY seq LIMIT ?",
                                         (after, page)).fetchall()
            for s, body in rows:
                yield s, decode_document(body)
            if len(rows) < page:
                return
            after = rows[-1][0]

    def last_seq(self) -> int:
        """The highest sequence number handed out so far (0 for a new index)."""
        with self._guard("last_seq"):
            row = self.conn.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()
        return int(row[0]) if row else 0

    def search(self, request: SearchRequest) -> SearchResult:
        check_sort(request.sort)
        compiled = compile_cached(request.query)
        fwhere, fparams = compile_filters(request.filters)
        for name in request.facets:
            if name not in FACETS:
                raise ValueError(f"unknown facet {name!r} (known: {', '.join(FACETS)})")
        where = f"{compiled.where} AND {fwhere}"
        params = [*compiled.params, *fparams]
        match_all = compiled.where == "1" and fwhere == "1"
        m_cte = (f"m AS (SELECT d.rid, d.id, d.pdkey, {_ADKEY} AS adkey, d.year, d.cc, d.kind FROM documents d "
                 f"WHERE {where})")
        with self._guard("search"), self._snapshot() as conn:
            rids: np.ndarray | None = None  # the matching row ids (sorted), where known
            if compiled.score_expr and request.sort == "relevance":
                # one FTS5 pass scores every match; the page is cut from those scores (no join, no full sort)
                rids, k1 = self._scored_matches(conn, compiled, where, params, fwhere)
                total = len(rids)
                rows, next_cursor = self._top_page(conn, rids, k1, request) if total else ([], None)
            else:
                total = int(conn.execute(f"WITH {m_cte} SELECT COUNT(*) FROM m", params).fetchone()[0])
                if not total:
                    rows, next_cursor = [], None
                elif match_all and request.sort != "ad" and not request.search_after:
                    rows, next_cursor = self._newest_page(conn, request)
                else:
                    rows, next_cursor = self._page(conn, m_cte, params, compiled, request)
            facets = self._facets(conn, m_cte, params, rids, match_all, request.facets) if request.facets else {}
            bodies = dict(conn.execute(
                "SELECT rid, body FROM documents WHERE rid IN (SELECT value FROM json_each(?))",
                (json.dumps([r for r, _ in rows]),)).fetchall()) if rows else {}
        hits = []
        for rid, score in rows:
            doc = decode_document(bodies[rid])
            marks = highlight(_highlight_texts(doc), compiled.matches) if request.highlight else {}
            hits.append(Hit(id=doc.id, score=score, document=doc, highlights=marks))
        return SearchResult(total=total, hits=hits, facets=facets, next_cursor=next_cursor)

    @staticmethod
    def _scored_matches(conn: sqlite3.Connection, compiled: Compiled, where: str, params: list[object],
                        fwhere: str) -> tuple[np.ndarray, np.ndarray]:
        """The matching row ids (sorted) and their sort key k1: the BM25 value of the query's text clauses
        (negative; lower is better), 0.0 for a match that none of them matches."""
        if compiled.text_only and fwhere == "1":
            # `where` holds exactly where the score expression matches: the scored rows are the matches
            s_rids, s_k1 = _scores(conn.execute(f"SELECT rowid, {_BM25} FROM fts WHERE fts MATCH ?",
                                                (compiled.score_expr,)).fetchall())
            return s_rids, s_k1
        # the query's own conditions read only documents_match's columns (filters may read others: their plan
        # is SQLite's choice)
        table = "documents d INDEXED BY documents_match" if fwhere == "1" else "documents d"
        found = [r for (r,) in conn.execute(f"SELECT d.rid FROM {table} WHERE {where}", params)]
        rids = np.sort(np.fromiter(found, dtype=np.int64, count=len(found)))
        k1 = np.zeros(len(rids))
        if not len(rids):
            return rids, k1
        # BM25 only for the matches (its statistics are index-wide, whichever rows are scored); `+rowid` keeps
        # the row ids from being handed to FTS5 as one lookup each
        s_rids, s_k1 = _scores(conn.execute(
            f"SELECT rowid, {_BM25} FROM fts WHERE fts MATCH ? AND +rowid IN (SELECT value FROM json_each(?))",
            (compiled.score_expr, json.dumps(rids.tolist()))).fetchall())
        if len(s_rids):
            pos = np.minimum(np.searchsorted(s_rids, rids), len(s_rids) - 1)
            hit = s_rids[pos] == rids
            k1[hit] = s_k1[pos[hit]]
        return rids, k1

    @staticmethod
    def _top_page(conn: sqlite3.Connection, rids: np.ndarray, k1: np.ndarray, request: SearchRequest
                  ) -> tuple[list[tuple[int, float]], str | None]:
        """_page's relevance order (k1, -pdkey, id) over scored matches: only the rows that can reach the page
        (the best k1 values, ties included) have their date and id read."""

        def keys(sel: np.ndarray) -> list[tuple[float, int, str, int]]:
            found = dict(((rid, (doc_id, pdkey)) for rid, doc_id, pdkey in conn.execute(
                "SELECT rid, id, pdkey FROM documents WHERE rid IN (SELECT value FROM json_each(?))",
                (json.dumps(rids[sel].tolist()),))))
            return [(float(k1[i]), -found[r][1], found[r][0], r)
                    for i, r in zip(sel.tolist(), rids[sel].tolist(), strict=True) if r in found]

        offset, limit = max(0, request.offset), max(0, request.limit)
        sel = np.arange(len(rids))
        extra: list[tuple[float, int, str, int]] = []
        if request.search_after:
            after = cast(tuple[float, int, str], tuple(_decode_cursor(request.search_after)))
            extra = [k for k in keys(np.flatnonzero(k1 == after[0])) if k[:3] > after]
            sel = np.flatnonzero(k1 > after[0])
        want = offset + limit + 1
        if len(sel) > want:  # everything at most the want-th best k1 (ties included)
            cut = np.partition(k1[sel], want - 1)[want - 1]
            sel = sel[k1[sel] <= cut]
        ranked = sorted(keys(sel) + extra)[offset:offset + limit + 1]
        more = len(ranked) > limit
        ranked = ranked[:limit]
        cursor = _encode_cursor(ranked[-1][0], ranked[-1][1], ranked[-1][2]) if more and ranked else None
        return [(rid, -k if k else 0.0) for k, _, _, rid in ranked], cursor

    @staticmethod
    def _newest_page(conn: sqlite3.Connection, request: SearchRequest) -> tuple[list[tuple[int, float]], str | None]:
        """_page for every document unscored (newest publication first, then id), read in the pdkey index's
        order."""
        limit = max(0, request.limit)
        rows = conn.execute("SELECT rid, id, pdkey FROM documents INDEXED BY documents_pdkey "
                            "ORDER BY pdkey DESC, id LIMIT ? OFFSET ?",
                            (limit + 1, max(0, request.offset))).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        cursor = _encode_cursor(0.0, -rows[-1][2], rows[-1][1]) if more and rows else None
        return [(rid, 0.0) for rid, _, _ in rows], cursor

    def _facets(self, conn: sqlite3.Connection, m_cte: str, params: list[object], rids: np.ndarray | None,
                match_all: bool, names: Sequence[str]) -> dict[str, list[FacetValue]]:
        """Facet counts over the matches, from the cached facet columns (SQL GROUP BY when they do not cover
        the matches)."""
        columns = self._facet_columns(conn)
        if match_all:
            return columns.counts(None, names, FACET_SIZE)
        if rids is None:
            found = [r for (r,) in conn.execute(f"WITH {m_cte} SELECT rid FROM m", params)]
            rids = np.sort(np.fromiter(found, dtype=np.int64, count=len(found)))
        positions = columns.positions(rids)
        if positions is None:
            return {name: self._facet(conn, m_cte, params, name) for name in names}
        return columns.counts(positions, names, FACET_SIZE)

    def _facet_columns(self, conn: sqlite3.Connection) -> FacetColumns:
        """Every document's facet values, cached until this or another connection writes."""
        version = (int(conn.execute("PRAGMA data_version").fetchone()[0]), self._writes)
        if self._facet_cache is None or self._facet_cache[0] != version:
            self._facet_cache = (version, FacetColumns(conn))
        return self._facet_cache[1]

    def _page(self, conn: sqlite3.Connection, m_cte: str, params: list[object], compiled: Compiled,
              request: SearchRequest) -> tuple[list[tuple[int, float]], str | None]:
        """One page of (rid, score), ordered by score desc, publication date desc, id (request.sort "pd"/"ad":
        that date desc (unknown last), score desc, id); and the next cursor."""
        score_expr = compiled.score_expr
        datekey = "adkey" if request.sort == "ad" else "pdkey"
        if score_expr:
            ctes = (f"{m_cte}, s AS MATERIALIZED (SELECT rowid AS rid, {_BM25} AS b FROM fts WHERE fts MATCH ?), "
                    f"r AS (SELECT m.rid, m.id, COALESCE(s.b, 0.0) AS k1, -m.{datekey} AS k2 "
                    "FROM m LEFT JOIN s ON s.rid = m.rid)")
            qparams: list[object] = [*params, score_expr]
        else:
            ctes = f"{m_cte}, r AS (SELECT rid, id, 0.0 AS k1, -{datekey} AS k2 FROM m)"
            qparams = list(params)
        order = "k1, k2, id" if request.sort == "relevance" else "k2, k1, id"  # a date sort: date, score, id
        sql = f"WITH {ctes} SELECT rid, id, k1, k2 FROM r"
        if request.search_after:
            sql += f" WHERE ({order}) > (?, ?, ?)"
            k1, k2, doc_id = _decode_cursor(request.search_after)
            qparams.extend([k1, k2, doc_id] if request.sort == "relevance" else [k2, k1, doc_id])
        sql += f" ORDER BY {order} LIMIT ? OFFSET ?"
        limit = max(0, request.limit)
        qparams.extend([limit + 1, max(0, request.offset)])
        rows = conn.execute(sql, qparams).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        cursor = _encode_cursor(rows[-1][2], rows[-1][3], rows[-1][1]) if more and rows else None
        return [(rid, -k1 if k1 else 0.0) for rid, _, k1, _ in rows], cursor

    def lexical_scores(self, queries: Sequence[Query], filters: Filters | None = None, limit: int = 10,
                       max_seq: int | None = None) -> list[dict[str, float]]:
        """For each query, its `limit` best documents with a positive BM25 score among those matching the query,
        `filters` and (when given) upserted at or before `max_seq`: id -> the score `search` gives them.

        Built for many queries over a window of new documents (matching): no document is loaded, and BM25 is
        summed per query from one FTS5 search per distinct phrase (FTS5's bm25 is a sum over the query's
        phrases, each with index-wide statistics) restricted to the window's row ids, so the cost follows the
        window and the distinct phrases, not the index size times the number of queries.
        """
        compiled = [compile_cached(q) for q in queries]
        fwhere, fparams = compile_filters(filters)
        if max_seq is not None:
            fwhere, fparams = f"{fwhere} AND d.seq <= ?", [*fparams, int(max_seq)]
        with self._guard("lexical_scores"), self._snapshot() as conn:
            window = conn.execute(f"SELECT d.rid, d.id, d.pdkey FROM documents d WHERE {fwhere} ORDER BY d.rid",
                                  fparams).fetchall()
            if not window:
                return [{} for _ in queries]
            rids = np.fromiter((r for r, _, _ in window), dtype=np.int64, count=len(window))
            phrases: dict[str, tuple[np.ndarray, np.ndarray]] = {}
            for c in compiled:
                for m in c.matches:
                    if m.fts not in phrases:
                        phrases[m.fts] = self._phrase_scores(conn, m.fts, rids)
            out = []
            for c in compiled:
                acc = np.zeros(len(window))
                for fts in dict.fromkeys(m.fts for m in c.matches):  # score_expr's phrases, in its order
                    pos, scores = phrases[fts]
                    acc[pos] += scores
                cand = np.flatnonzero(acc > 0)
                if len(cand) and not c.text_only:  # the boolean structure beyond the phrases, on candidates
                    ok = {r for (r,) in conn.execute(
                        f"SELECT d.rid FROM documents d WHERE d.rid IN (SELECT value FROM json_each(?)) AND {c.where}",
                        [json.dumps(rids[cand].tolist()), *c.params])}
                    cand = cand[np.isin(rids[cand], np.fromiter(ok, dtype=np.int64, count=len(ok)))]
                out.append(_top(cand, acc, window, limit))
        return out

    def highlight_many(self, requests: Sequence[tuple[Query, Sequence[PatentDocument]]]
                       ) -> list[dict[str, dict[str, list[str]]]]:
        """For each (query, documents): id -> the highlights `search` gives, for those of the documents that the
        query matches and that have a highlight. Each distinct document is analyzed once for every query."""
        compiled = [compile_cached(q) for q, _ in requests]
        wanted: dict[str, tuple[PatentDocument, list[int]]] = {}
        for k, (c, (_, docs)) in enumerate(zip(compiled, requests, strict=True)):
            for doc in self._matching(c, docs):
                wanted.setdefault(doc.id, (doc, []))[1].append(k)
        out: list[dict[str, dict[str, list[str]]]] = [{} for _ in requests]
        for doc_id, (doc, ks) in wanted.items():
            fields = AnalyzedFields(_highlight_texts(doc))
            for k in ks:
                if marks := fields.highlight(compiled[k].matches):
                    out[k][doc_id] = marks
        return out

    def _matching(self, compiled: Compiled, docs: Sequence[PatentDocument]) -> Sequence[PatentDocument]:
        """The documents the query matches. An OR of text clauses highlights nothing where it does not match,
        so only other queries need the index to say."""
        if compiled.text_only or not docs:
            return docs
        with self._guard("highlight_many"):
            ok = {i for (i,) in self.conn.execute(
                f"SELECT d.id FROM documents d WHERE d.id IN (SELECT value FROM json_each(?)) AND {compiled.where}",
                [json.dumps([d.id for d in docs]), *compiled.params])}
        return [d for d in docs if d.id in ok]

    @staticmethod
    def _phrase_scores(conn: sqlite3.Connection, fts: str, rids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One phrase's BM25 contribution for the window's rows: (positions in `rids`, positive scores)."""
        rows = conn.execute(f"SELECT rowid, -{_BM25} FROM fts WHERE fts MATCH ? AND rowid BETWEEN ? AND ?",
                            (fts, int(rids[0]), int(rids[-1]))).fetchall()
        if not rows:
            return np.zeros(0, np.int64), np.zeros(0)
        hit = np.fromiter((r for r, _ in rows), dtype=np.int64, count=len(rows))
        pos = np.minimum(np.searchsorted(rids, hit), len(rids) - 1)
        keep = rids[pos] == hit
        scores = np.fromiter((s for _, s in rows), dtype=np.float64, count=len(rows))
        return pos[keep], scores[keep]

    @staticmethod
    def _facet(conn: sqlite3.Connection, m_cte: str, params: list[object], name: str) -> list[FacetValue]:
        if name not in FACETS:
            raise ValueError(f"unknown facet {name!r} (known: {', '.join(FACETS)})")
        sql = f"WITH {m_cte} {_FACET_SQL[name]} ORDER BY 2 DESC, 1 LIMIT {FACET_SIZE}"
        return [FacetValue(str(v), int(c)) for v, c in conn.execute(sql, params)]

    def knn(self, vector: Sequence[float], k: int, filters: Filters | None = None) -> list[Hit]:
        """Nearest documents by cosine similarity (brute force over all stored vectors), best first."""
        with self._guard("knn"):
            matrix = self._vector_matrix()
            if matrix is None:
                return []
            query = as_vector(vector, matrix.matrix.shape[1])
            allowed = None
            fwhere, fparams = compile_filters(filters)
            if fwhere != "1":
                allowed = {r for (r,) in self.conn.execute(f"SELECT d.rid FROM documents d WHERE {fwhere}", fparams)}
            best = matrix.top_k(query, k, allowed)
            bodies = dict(self.conn.execute(
                "SELECT rid, body FROM documents WHERE rid IN (SELECT value FROM json_each(?))",
                (json.dumps([r for r, _ in best]),)).fetchall())
        hits = []
        for rid, score in best:
            if rid in bodies:
                doc = decode_document(bodies[rid])
                hits.append(Hit(id=doc.id, score=score, document=doc))
        return hits

    def _vector_matrix(self) -> VectorMatrix | None:
        """The stored vectors as a normalized matrix, cached until this or another connection writes."""
        version = (int(self.conn.execute("PRAGMA data_version").fetchone()[0]), self._writes)
        if self._vectors is not None and self._vectors[0] == version:
            return self._vectors[1]
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'vector_dim'").fetchone()
        if row is None:
            return None
        rows = self.conn.execute("SELECT doc, vec FROM vectors ORDER BY doc").fetchall()
        matrix = VectorMatrix.from_blobs(rows, int(row[0]))
        self._vectors = (version, matrix)
        return matrix


def _scores(rows: list[tuple[int, float]]) -> tuple[np.ndarray, np.ndarray]:
    """(rowid, bm25) rows as arrays sorted by row id."""
    rids = np.fromiter((r for r, _ in rows), dtype=np.int64, count=len(rows))
    values = np.fromiter((b for _, b in rows), dtype=np.float64, count=len(rows))
    order = np.argsort(rids, kind="stable")
    return rids[order], values[order]


def _top(cand: np.ndarray, scores: np.ndarray, window: list[tuple[int, str, int]], limit: int) -> dict[str, float]:
    """The `limit` best candidates as id -> score, in search order (score desc, publication date desc, id)."""
    if limit <= 0 or not len(cand):
        return {}
    if len(cand) > limit:  # everything scoring at least the limit-th best (ties included), then exact order
        cut = np.partition(scores[cand], len(cand) - limit)[len(cand) - limit]
        cand = cand[scores[cand] >= cut]
    best = sorted(cand.tolist(), key=lambda i: (-scores[i], -window[i][2], window[i][1]))[:limit]
    return {window[i][1]: float(scores[i]) for i in best}


def _highlight_texts(doc: PatentDocument) -> dict[str, str]:
    return {"ti": "\n".join(v for v in doc.titles.values() if v),
            "ab": "\n".join(v for v in doc.abstracts.values() if v),
            "cl": claims_text(doc)}


# the filing date as YYYYMMDD (0 when unknown), like the pdkey column
_ADKEY = "CAST(REPLACE(COALESCE(d.ad, ''), '-', '') AS INTEGER)"


def _encode_cursor(k1: float, k2: int, doc_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([k1, k2, doc_id]).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> list[object]:
    try:
        k1, k2, doc_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return [float(k1), int(k2), str(doc_id)]
    except (ValueError, TypeError) as exc:
        raise ValueError(f"invalid search_after cursor {cursor!r}") from exc

