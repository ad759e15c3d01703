"""The one database every room shares: the declarative `Base`, engines (SQLite or PostgreSQL) and Alembic upgrades.

Every table of the project inherits `Base`; the schema is created and changed only by the Alembic revisions in
patentsift/migrations (see its README.md), never by `create_all`.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.engine import Connection, Dialect, make_url
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

# modules that declare tables; one that does not exist (yet) is skipped, so a room adds itself here
MODEL_MODULES = ("matching.store", "subscribers.models", "distribution.models")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """THE declarative base of every table in the project."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and always read back time-zone aware (SQLite forgets the zone otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass a time-zone aware one")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def load_models() -> MetaData:
    """Import every module that declares tables so `Base.metadata` knows them all; returns it."""
    for name in MODEL_MODULES:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:  # the package itself is missing
            found = False
        if found:
            importlib.import_module(name)
    return Base.metadata


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


@contextmanager
def _script_location() -> Iterator[Path]:
    with resources.as_file(resources.files("patentsift") / "migrations") as path:
        yield path


def alembic_config(connection: Connection) -> Any:
    """An Alembic Config for the shipped migrations, running on an open connection."""
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.attributes["connection"] = connection
    return cfg


def _run(url_or_engine: str | Engine, action: str, revision: str) -> None:
    from alembic import command

    engine = url_or_engine if isinstance(url_or_engine, Engine) else make_engine(url_or_engine)
    try:
        with _script_location() as location, engine.begin() as conn:
            cfg = alembic_config(conn)
            cfg.set_main_option("script_location", str(location))
            getattr(command, action)(cfg, revision)
    finally:
        if engine is not url_or_engine:
            engine.dispose()


def upgrade(url: str | Engine, revision: str = "head") -> None:
    """Bring the database to `revision` (default: the newest), creating it when empty."""
    _run(url, "upgrade", revision)


def downgrade(url: str | Engine, revision: str) -> None:
    """Step the schema back to `revision` ('base' drops every table the migrations created)."""
    _run(url, "downgrade", revision)


def current_revision(url: str | Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    engine = url if isinstance(url, Engine) else make_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        if engine is not url:
            engine.dispose()


def new_revision(message: str, rev_id: str, url: str | None = None) -> Path:
    """Autogenerate a revision from the models' difference to the schema at head (a scratch SQLite by default).

    Developers only: writes into patentsift/migrations/versions of the source tree; review the file after.
    """
    import tempfile

    from alembic import command

    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(url or str(Path(tmp) / "scratch.sqlite"))
        try:
            upgrade(engine)
            with _script_location() as location, engine.begin() as conn:
                cfg = alembic_config(conn)
                cfg.set_main_option("script_location", str(location))
                script = command.revision(cfg, message, autogenerate=True, rev_id=rev_id)
        finally:
            engine.dispose()
    assert script is not None and not isinstance(script, list)
    return Path(script.path)
