"""Open the shared database from the configuration, its schema brought up to date by the Alembic migrations."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from patentsift.config import Config
from subscribers.db import database_url, make_engine, upgrade


@dataclass
class Database:
    """The engine and a session factory of the one database all rooms share."""

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


def open_url(path_or_url: str, migrate: bool = True) -> Database:
    url = database_url(path_or_url)
    engine = make_engine(url)
    if migrate:
        upgrade(engine)
    return Database(url, engine, sessionmaker(engine, expire_on_commit=False))


def open_database(cfg: Config, migrate: bool = True) -> Database:
    """The shared database (`cfg.database`: database_url, else data_dir/patentsift.sqlite), migrated to head."""
    return open_url(cfg.database, migrate)
