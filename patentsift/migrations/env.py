"""Alembic environment: runs on the connection patentsift.db hands over (or on sqlalchemy.url when set)."""

from __future__ import annotations

from typing import Any, Literal

from alembic import context

from db import UTCDateTime, make_engine
from patentsift.db import load_models

config = context.config
target_metadata = load_models()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    """Write project types as plain SQLAlchemy ones, so a revision never imports project code."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _run(connection: Any) -> None:
    sqlite = connection.dialect.name == "sqlite"
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=sqlite,
                      compare_type=True, render_item=_render_item)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported: run them against a database")
run_online()
