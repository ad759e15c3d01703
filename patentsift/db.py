"""The shared database as the shell opens it: the list of model modules, the Alembic migrations, `open_database`.

Every table of the project inherits `db.Base`; the schema is created and changed only by the Alembic revisions in
patentsift/migrations (see its README.md), never by `create_all`. Migrations run once per process and database
(`open_database`), not each time a room is handed a session.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, MetaData
from sqlalchemy.engine import Connection

from db import Base, Database, make_engine, open_url
from patentsift.config import Config


def load_models() -> MetaData:
    """Import every module that declares tables, so `Base.metadata` knows them all; returns it."""
    import distribution.models  # noqa: F401
    import matching.store  # noqa: F401
    import patentsift.web.sessions  # noqa: F401
    import subscribers.models  # noqa: F401

    return Base.metadata


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


def open_url_migrated(path_or_url: Path | str, migrate: bool = True) -> Database:
    """A `Database` on a path or URL, its schema brought to head (unless `migrate` is False)."""
    db = open_url(path_or_url)
    if migrate:
        upgrade(db.engine)
    return db


def open_database(cfg: Config, migrate: bool = True) -> Database:
    """The shared database (`cfg.database`: database_url, else data_dir/patentsift.sqlite), migrated to head."""
    if not cfg.database_url:
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
    return open_url_migrated(cfg.database, migrate)
