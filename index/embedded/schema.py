"""The embedded index's SQLite schema and connection setup."""

from __future__ import annotations

import sqlite3
from pathlib import Path

SCHEMA_VERSION = "1"

# The FTS5 columns hold text prepared by index.analysis.index_text (older rows: the analyzed tokens joined by
# spaces): the `ascii` tokenizer keeps every non-ASCII character and the listed ASCII punctuation inside tokens
# and splits on the other ASCII characters, which gives exactly index.analysis.analyze's tokens.
_FTS_TOKENIZE = "ascii tokenchars '_''.:,;'"
FTS_HASHSIZE = 8 << 20
"""Bytes of new FTS terms held in memory before FTS5 writes a segment (its default, 1 MiB, made a weekly file
write and merge several times more segments)."""

DDL = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    rid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    seq INTEGER NOT NULL,
    cc TEXT, kind TEXT, pd TEXT, ad TEXT, year INTEGER,
    pdkey INTEGER NOT NULL DEFAULT 0,  -- publication date as YYYYMMDD (0 when unknown), for ordering
    an TEXT, lang TEXT, fam TEXT,
    text_hash TEXT,
    body BLOB NOT NULL  -- zlib-compressed JSON of PatentDocument.to_dict()
);
CREATE INDEX IF NOT EXISTS documents_seq ON documents(seq);
CREATE INDEX IF NOT EXISTS documents_pd ON documents(pd);
CREATE INDEX IF NOT EXISTS documents_ad ON documents(ad);
CREATE INDEX IF NOT EXISTS documents_cc ON documents(cc, kind);
-- newest first, then id: the order of unscored results; it also covers the columns the facet cache reads
-- (created when missing, also in files written before it)
CREATE INDEX IF NOT EXISTS documents_pdkey ON documents(pdkey DESC, id, year, cc, kind);
-- a narrow copy of the columns a query condition reads, found by row id: checking the conditions of many
-- matches does not read the wide rows (created when missing, also in files written before it)
CREATE INDEX IF NOT EXISTS documents_match ON documents(rid, pd, ad, cc, kind, an, lang, fam);
CREATE TABLE IF NOT EXISTS keys (key TEXT NOT NULL, doc INTEGER NOT NULL, PRIMARY KEY (key, doc)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS keys_doc ON keys(doc);
CREATE TABLE IF NOT EXISTS classes (
    scheme TEXT NOT NULL, symbol TEXT NOT NULL, doc INTEGER NOT NULL, subclass TEXT,
    PRIMARY KEY (scheme, symbol, doc)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS classes_doc ON classes(doc);
CREATE TABLE IF NOT EXISTS applicants (name TEXT NOT NULL, doc INTEGER NOT NULL, PRIMARY KEY (name, doc))
    WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS applicants_doc ON applicants(doc);
CREATE TABLE IF NOT EXISTS vectors (doc INTEGER PRIMARY KEY, vec BLOB NOT NULL);  -- float32, little-endian
CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(ti, ab, cl, "desc", pa, "in", tokenize="{_FTS_TOKENIZE}");
"""

SIDE_TABLES = ("keys", "classes", "applicants")


def connect(path: Path, timeout: float = 10.0) -> sqlite3.Connection:
    """Open (creating when absent) the database at `path`: WAL mode, schema in place, version checked.

    Raises sqlite3 errors; the caller turns them into IndexError_ with advice.
    """
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA temp_store=MEMORY")
        conn.executescript(DDL)
        conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
        if conn.execute("SELECT 1 FROM fts_config WHERE k = 'hashsize'").fetchone() is None:
            conn.execute("INSERT INTO fts(fts, rank) VALUES ('hashsize', ?)", (FTS_HASHSIZE,))
        version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
        if version != SCHEMA_VERSION:
            raise sqlite3.DatabaseError(
                f"index schema version {version} is not the supported version {SCHEMA_VERSION}; rebuild the index"
            )
    except BaseException:
        conn.close()
        raise
    return conn
