"""Engines (SQLite or PostgreSQL) and the `Database` handle: one engine and one session factory per database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


def database_url(path_or_url: Path | str) -> str:
    """A filesystem path becomes a SQLite URL; anything with `://` is taken as an SQLAlchemy URL."""
    text = str(path_or_url)
    if "://" in text:
        url = make_url(text)
        if url.drivername in ("postgresql", "postgres"):  # plain postgresql:// means psycopg 3 here
            url = url.set(drivername="postgresql+psycopg")
        return url.render_as_string(hide_password=False)
    return f"sqlite:///{Path(text).expanduser().resolve()}"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys = ON")
    cur.execute("PRAGMA busy_timeout = 10000")
    cur.execute("PRAGMA journal_mode = WAL")
    cur.execute("PRAGMA synchronous = NORMAL")
    cur.close()


def make_engine(url: str) -> Engine:
    """An engine for a URL (see `database_url`): SQLite gets WAL, foreign keys and a busy timeout.

    SQLite also runs with `synchronous=NORMAL`, safe with WAL: a commit is appended to the write-ahead log without
    an fsync (the log is synced at each checkpoint), so a commit survives the process being killed, and the database
    is never corrupted; only an OS crash or power loss can roll back the last few commits (since the last checkpoint).
    For delivery that means at worst a digest sent again, with the same Message-ID (see distribution/delivery.py).
    """
    url = database_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


@dataclass
class Database:
    """The engine and the session factory of the one database all rooms share."""

    url: str
    engine: Engine
    sessions: sessionmaker[Session]

    @contextmanager
    def begin(self) -> Iterator[Session]:
        """A session in a transaction: committed when the block ends, rolled back when it raises."""
        with self.sessions.begin() as session:
            yield session

    def session(self) -> Session:
        return self.sessions()

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_url(path_or_url: Path | str) -> Database:
    """A `Database` on a path (SQLite) or URL; its schema is the shell's business (patentsift.db.migrate)."""
    url = database_url(path_or_url)
    engine = make_engine(url)
    return Database(url, engine, sessionmaker(engine, expire_on_commit=False))
