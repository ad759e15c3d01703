"""The shared schema comes from the Alembic migrations: an empty database upgraded to head has every table the
models declare, exactly; downgrading to base removes them; a pre-migration matching database is adopted."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

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
    """MatchStore used create_all before (the matching tables of revision 0001, no alembic_version): its tables and
    rows stay, the missing tables are added, and its profiles move to subscribers' sub_profiles."""
    from sqlalchemy import text

    metadata = load_models()
    url = database_url(tmp_path / "old.sqlite")
    engine = make_engine(url)
    upgrade(engine, "0001")
    with engine.begin() as conn:  # keep only what MatchStore's create_all made: the matching tables
        for name in [t for t in inspect(conn).get_table_names() if not t.startswith("matching_")]:
            conn.execute(text(f"DROP TABLE {name}"))
        conn.execute(text("INSERT INTO matching_profiles (name, owner, spec, watermark, created_at, updated_at) "
                          "VALUES ('batteries', '', '{\"name\": \"batteries\"}', 7, '2026-01-01', '2026-01-01')"))
    upgrade(engine)
    try:
        assert set(inspect(engine).get_table_names()) == set(metadata.tables) | {"alembic_version"}
        with engine.connect() as conn:
            assert conn.execute(text("SELECT watermark FROM matching_profiles")).scalar() == 7
            assert conn.execute(text("SELECT name, outlet_id FROM sub_profiles")).one() == ("batteries", None)
    finally:
        engine.dispose()


def test_profiles_made_in_the_web_app_keep_their_outlet(db_url: str) -> None:  # noqa: F811
    """Revision 0005 turns the web app's `owner = "outlet:<id>"` into the profile's outlet_id, and back."""
    from sqlalchemy import text

    upgrade(db_url, "0004")
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO sub_outlets (id, name, region, sender_name, contact_address, footer_note)"
                              " VALUES (3, 'West', '', '', '', '')"))
            for name, owner in (("west-own", "outlet:3"), ("shared", "ops@example.com"), ("gone", "outlet:99")):
                conn.execute(text("INSERT INTO matching_profiles (name, owner, spec, watermark, created_at, "
                                  "updated_at) VALUES (:n, :o, :s, 0, :t, :t)"),
                             {"n": name, "o": owner, "s": f'{{"name": "{name}"}}', "t": "2026-01-01 00:00:00+00"})
        upgrade(db_url)
        with engine.connect() as conn:
            rows = dict(conn.execute(text("SELECT name, outlet_id FROM sub_profiles")).all())
        assert rows == {"west-own": 3, "shared": None, "gone": None}
        downgrade(db_url, "0004")
        with engine.connect() as conn:
            owners = dict(conn.execute(text("SELECT name, owner FROM matching_profiles")).all())
        assert owners["west-own"] == "outlet:3" and owners["shared"] == ""
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
