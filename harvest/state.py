"""What has been harvested: per file (URL or absolute path) its fingerprint, progress and rejects, in SQLite.

A file is *done* once every document in it was stored or rejected; a new fingerprint (ETag, size, mtime) means it
changed and is harvested again from the start. Progress is kept per stream (`file` or `file!member`) as the last
1-based position fully handled, so an interrupted run resumes after it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harvest.raw import RejectRecord

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    key TEXT PRIMARY KEY,
    fingerprint TEXT,
    status TEXT NOT NULL DEFAULT 'started',
    documents INTEGER NOT NULL DEFAULT 0,
    rejects INTEGER NOT NULL DEFAULT 0,
    started_at TEXT,
    done_at TEXT
);
CREATE TABLE IF NOT EXISTS progress (
    stream TEXT PRIMARY KEY,
    position INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS rejects (
    key TEXT NOT NULL,
    file TEXT NOT NULL,
    position INTEGER NOT NULL,
    "offset" INTEGER NOT NULL,
    reason TEXT NOT NULL,
    skip INTEGER NOT NULL DEFAULT 0,
    UNIQUE (file, position, reason)
);
CREATE INDEX IF NOT EXISTS rejects_key ON rejects (key);
CREATE TABLE IF NOT EXISTS partial_documents (
    id TEXT PRIMARY KEY
);
CREATE TABLE IF NOT EXISTS stored_documents (
    key TEXT NOT NULL,
    id TEXT NOT NULL,
    PRIMARY KEY (key, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS stored_documents_id ON stored_documents (id);
CREATE TABLE IF NOT EXISTS pending_references (
    id TEXT PRIMARY KEY,
    family_id TEXT,
    key TEXT NOT NULL,
    recorded_at TEXT NOT NULL
);
"""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class HarvestState:
    """A small SQLite record of harvested files; every call commits, so a crash loses at most one batch."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(files)")}
        for name in ("path", "source"):  # states written before `index verify` existed lack them
            if name not in columns:
                self._db.execute(f"ALTER TABLE files ADD COLUMN {name} TEXT")

    # --- files ----------------------------------------------------------------------------------------------------
    def is_done(self, key: str, fingerprint: str | None = None) -> bool:
        """True when `key` was harvested completely (with this fingerprint, when one is given)."""
        row = self._db.execute("SELECT status, fingerprint FROM files WHERE key = ?", (key,)).fetchone()
        if row is None or row[0] != "done":
            return False
        return fingerprint is None or row[1] == fingerprint

    def start(self, key: str, fingerprint: str | None = None, *, path: Path | str | None = None,
              source: str | None = None) -> int:
        """Register a harvest of `key`; a changed fingerprint forgets earlier progress, rejects and stored ids.

        `path` (the local file read) and `source` are kept for `index verify --repair`, which re-reads the file.
        Returns the position to resume after (0 for a fresh start).
        """
        row = self._db.execute("SELECT fingerprint FROM files WHERE key = ?", (key,)).fetchone()
        if row is not None and row[0] != fingerprint:
            self.forget(key)
            row = None
        local = str(path) if path is not None else None
        if row is None:
            self._db.execute(
                "INSERT INTO files (key, fingerprint, status, started_at, path, source)"
                " VALUES (?, ?, 'started', ?, ?, ?)",
                (key, fingerprint, _now(), local, source),
            )
        else:
            self._db.execute("UPDATE files SET status = 'started', done_at = NULL, path = coalesce(?, path),"
                             " source = coalesce(?, source) WHERE key = ?", (local, source, key))
        return self.resume_position(key)

    def forget(self, key: str, *, keep_documents: bool = False) -> None:
        """Drop everything recorded for `key` (and its archive members); with `keep_documents`, the ids of the
        documents it stored stay on record (they are still expected in the index: see `clear_for_refetch`)."""
        self._db.execute("BEGIN")
        try:
            self._db.execute("DELETE FROM files WHERE key = ?", (key,))
            self._db.execute("DELETE FROM progress WHERE stream = ? OR stream LIKE ? ESCAPE '\\'",
                             (key, _like_prefix(key) + "!%"))
            self._db.execute("DELETE FROM rejects WHERE key = ?", (key,))
            if not keep_documents:
                self._db.execute("DELETE FROM stored_documents WHERE key = ?", (key,))
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def clear_for_refetch(self, key: str) -> None:
        """Make the next harvest fetch and read `key` again from the start (its stored file is gone or no longer
        holds what was stored); the ids it stored stay expected until the file is harvested again."""
        self.forget(key, keep_documents=True)

    def mark_done(self, key: str, fingerprint: str | None, documents: int, rejects: int) -> None:
        self._db.execute(
            "INSERT INTO files (key, fingerprint, status, documents, rejects, started_at, done_at)"
            " VALUES (?, ?, 'done', ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET fingerprint = excluded.fingerprint,"
            " status = 'done', documents = excluded.documents, rejects = excluded.rejects, done_at = excluded.done_at",
            (key, fingerprint, documents, rejects, _now(), _now()),
        )

    def files(self) -> list[dict[str, Any]]:
        """One dict per file: key, fingerprint, status, documents, rejects, started_at, done_at, path, source."""
        cur = self._db.execute("SELECT * FROM files ORDER BY key")
        names = [c[0] for c in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def file(self, key: str) -> dict[str, Any] | None:
        """The `files` row of `key` (see `files`), None when it is not on record."""
        cur = self._db.execute("SELECT * FROM files WHERE key = ?", (key,))
        row = cur.fetchone()
        return None if row is None else dict(zip([c[0] for c in cur.description], row, strict=True))

    # --- stored documents (what the index should hold) -------------------------------------------------------------
    def record_stored(self, key: str, ids: Iterable[str]) -> None:
        """Remember that the index accepted documents `ids` read from file `key`."""
        self._many("INSERT OR IGNORE INTO stored_documents (key, id) VALUES (?, ?)", [(key, i) for i in ids])

    def stored_count(self) -> int:
        """How many distinct documents the harvest stored (a publication found in several files counts once)."""
        return self._db.execute("SELECT count(DISTINCT id) FROM stored_documents").fetchone()[0]

    def stored_ids(self) -> Iterator[list[str]]:
        """Every distinct stored document id, sorted, in lists of up to 1000."""
        cur = self._db.execute("SELECT DISTINCT id FROM stored_documents ORDER BY id")
        while rows := cur.fetchmany(1000):
            yield [r[0] for r in rows]

    def stored_keys(self, ids: Iterable[str]) -> dict[str, list[str]]:
        """For documents `ids`: file key -> those of them it stored (a document may come from several files)."""
        out: dict[str, list[str]] = {}
        wanted = list(ids)
        for i in range(0, len(wanted), 500):
            part = wanted[i:i + 500]
            sql = (f"SELECT key, id FROM stored_documents WHERE id IN ({','.join('?' * len(part))})"
                   " ORDER BY key, id")
            for key, doc_id in self._db.execute(sql, part):
                out.setdefault(key, []).append(doc_id)
        return out

    def files_without_ids(self) -> list[dict[str, Any]]:
        """Finished files that stored documents before stored ids were recorded (older harvest states)."""
        cur = self._db.execute(
            "SELECT * FROM files f WHERE status = 'done' AND documents > 0"
            " AND NOT EXISTS (SELECT 1 FROM stored_documents s WHERE s.key = f.key) ORDER BY key")
        names = [c[0] for c in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    # --- progress -------------------------------------------------------------------------------------------------
    def resume_position(self, key: str) -> int:
        """The last position of stream `key` (a file, or `file!member`) that was fully stored; 0 when none."""
        row = self._db.execute("SELECT position FROM progress WHERE stream = ?", (key,)).fetchone()
        return row[0] if row else 0

    def mark_progress(self, key: str, position: int) -> None:
        self._db.execute(
            "INSERT INTO progress (stream, position) VALUES (?, ?)"
            " ON CONFLICT (stream) DO UPDATE SET position = max(position, excluded.position)",
            (key, position),
        )

    # --- rejects --------------------------------------------------------------------------------------------------
    def record_reject(self, key: str, reject: RejectRecord) -> None:
        """Remember a refused document of file `key`; recording the same one twice keeps one."""
        self._db.execute(
            'INSERT OR IGNORE INTO rejects (key, file, position, "offset", reason, skip) VALUES (?, ?, ?, ?, ?, ?)',
            (key, reject.file, reject.position, reject.offset, reject.reason, int(reject.skip)),
        )

    def rejects(self, key: str | None = None) -> list[RejectRecord]:
        sql = 'SELECT file, position, "offset", reason, skip FROM rejects'
        cur = self._db.execute(sql + " WHERE key = ? ORDER BY rowid", (key,)) if key else self._db.execute(
            sql + " ORDER BY rowid"
        )
        return [RejectRecord(f, p, o, r, bool(s)) for f, p, o, r, s in cur.fetchall()]

    # --- partial documents ----------------------------------------------------------------------------------------
    def set_partial(self, ids: Iterable[str], partial: bool) -> None:
        """Remember which stored documents are partial (only some parts), so a full one is merged into them."""
        rows = [(i,) for i in ids]
        sql = "INSERT OR IGNORE INTO partial_documents (id) VALUES (?)" if partial else (
            "DELETE FROM partial_documents WHERE id = ?"
        )
        self._many(sql, rows)

    def partial_ids(self, ids: Iterable[str]) -> set[str]:
        """Those of `ids` stored as partial documents."""
        wanted = list(ids)
        found: set[str] = set()
        for i in range(0, len(wanted), 500):
            part = wanted[i:i + 500]
            sql = f"SELECT id FROM partial_documents WHERE id IN ({','.join('?' * len(part))})"
            found.update(row[0] for row in self._db.execute(sql, part))
        return found

    # --- references (publications a search result or family names, not yet harvested in full) --------------------
    def record_references(self, key: str, refs: Iterable[tuple[str, str | None]]) -> None:
        """Remember (id, family id) pairs that file `key` named without content, for a later full fetch."""
        now = _now()
        self._many(
            "INSERT OR IGNORE INTO pending_references (id, family_id, key, recorded_at) VALUES (?, ?, ?, ?)",
            [(i, fam, key, now) for i, fam in refs],
        )

    def resolve_references(self, ids: Iterable[str]) -> None:
        """Forget references whose full document is now stored."""
        self._many("DELETE FROM pending_references WHERE id = ?", [(i,) for i in ids])

    def pending_references(self) -> list[tuple[str, str | None]]:
        """(id, family id) of every publication named but not yet stored in full, oldest first."""
        return self._db.execute("SELECT id, family_id FROM pending_references ORDER BY rowid").fetchall()

    def _many(self, sql: str, rows: list[Any]) -> None:
        """executemany in one transaction: the connection autocommits, and a commit per row (a WAL sync each)
        made a weekly file's bookkeeping cost more than its SQLite index writes."""
        if not rows:
            return
        self._db.execute("BEGIN")
        try:
            self._db.executemany(sql, rows)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> HarvestState:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
