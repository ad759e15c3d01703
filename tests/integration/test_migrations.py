"""The shared schema comes from the Alembic migrations: an empty database upgraded to head has every table the
models declare, exactly; downgrading to base removes them; a pre-migration matching database is adopted."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from db import database_url, make_engine
from patentsift.config import load_config
from patentsift.db import (
    _script_location,
    current_revision,
    downgrade,
    load_models,
    open_database,
    upgrade,
)
from tests.integration.pg_support import db_url, pg_server, pg_url  # noqa: F401 - fixtures


def _head() -> str:
    from alembic.config import Config as AlembicConfig

    with _script_location() as location:
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(location))
        heads = ScriptDirectory.from_config(cfg).get_heads()
    assert len(heads) == 1, f"the migrations have {len(heads)} heads {heads}: chain the newest revisions"
    return heads[0]


def test_upgrade_creates_exactly_the_models_tables_and_downgrade_removes_them(db_url: str) -> None:  # noqa: F811
    metadata = load_models()
    upgrade(db_url)
    assert current_revision(db_url) == _head()
    engine = make_engine(db_url)
    try:
        tables = set(inspect(engine).get_table_names())
        assert tables == set(metadata.tables) | {"alembic_version"}
        assert {"matching_profiles", "sub_outlets", "sub_subscriptions", "sub_consent_events"} <= tables
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
        assert diff == [], f"models and migrations differ (add a revision, see patentsift/migrations/README.md): {diff}"
    finally:
        engine.dispose()
    upgrade(db_url)  # at head already: nothing to do
    downgrade(db_url, "base")
    engine = make_engine(db_url)
    try:
        assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    finally:
        engine.dispose()
    assert current_revision(db_url) is None
    upgrade(db_url)
    assert current_revision(db_url) == _head()


def test_sqlite_connections_use_wal_and_foreign_keys(tmp_path: Path) -> None:
    engine = make_engine(str(tmp_path / "deep" / "x.sqlite"))  # a path; parents are created
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10000
    finally:
        engine.dispose()


def test_database_url_spellings(tmp_path: Path) -> None:
    assert database_url(tmp_path / "a.sqlite") == f"sqlite:///{tmp_path / 'a.sqlite'}"
    assert database_url("postgresql://u:p%40ss@db:5432/ps") == "postgresql+psycopg://u:p%40ss@db:5432/ps"
    assert database_url("sqlite:///rel.sqlite") == "sqlite:///rel.sqlite"


def test_a_database_made_before_migrations_is_adopted(tmp_path: Path) -> None:
    """MatchStore used create_all before: its tables and rows stay, the missing tables are added."""
    from matching.store import ProfileRow

    metadata = load_models()
    url = database_url(tmp_path / "old.sqlite")
    engine = make_engine(url)
    legacy = [t for name, t in metadata.tables.items() if name.startswith("matching_")]
    metadata.create_all(engine, tables=legacy)
    with Session(engine) as s, s.begin():
        s.add(ProfileRow(name="batteries", spec={"name": "batteries"}, watermark=7))
    upgrade(engine)
    try:
        assert set(inspect(engine).get_table_names()) == set(metadata.tables) | {"alembic_version"}
        with engine.connect() as conn:
            assert conn.execute(select(ProfileRow.__table__.c.watermark)).scalar() == 7
    finally:
        engine.dispose()


def test_open_database_from_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATENTSIFT_CONFIG", str(tmp_path / "patentsift.toml"))
    monkeypatch.delenv("PATENTSIFT_DATABASE_URL", raising=False)
    (tmp_path / "patentsift.toml").write_text(f'data_dir = "{tmp_path / "home"}"\n')
    with open_database(load_config()) as db:
        assert db.url == database_url(tmp_path / "home" / "patentsift.sqlite")
        assert (tmp_path / "home" / "patentsift.sqlite").exists()
        assert current_revision(db.engine) == _head()
    other = tmp_path / "elsewhere.sqlite"
    monkeypatch.setenv("PATENTSIFT_DATABASE_URL", f"sqlite:///{other}")
    with open_database(load_config()) as db:
        assert db.url == f"sqlite:///{other}" and other.exists()
