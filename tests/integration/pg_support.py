"""Pytest support for tests on a real PostgreSQL server: a throw-away cluster (scripts/postgres) per session.

PATENTSIFT_PG_URL uses a running server instead. Without server binaries the tests skip, or fail when
PATENTSIFT_REQUIRE_PG=1 (as in CI).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "postgres"


def _unavailable(msg: str) -> None:
    if os.environ.get("PATENTSIFT_REQUIRE_PG") == "1":
        pytest.fail(msg)
    pytest.skip(msg)


def _have_binaries() -> bool:
    return bool(shutil.which("pg_ctl") and shutil.which("initdb")) or bool(glob.glob("/usr/lib/postgresql/*/bin/initdb"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """The URL of the server's `postgres` database (superuser, trust auth on 127.0.0.1)."""
    if os.environ.get("PATENTSIFT_PG_URL"):
        yield os.environ["PATENTSIFT_PG_URL"]
        return
    if not _have_binaries():
        _unavailable("no PostgreSQL server binaries (apt-get install -y postgresql)")
    run_dir = Path(tempfile.mkdtemp(prefix="patentsift-pg-", dir="/tmp")) / "cluster"
    run_dir.parent.chmod(0o711)  # the server may run as `nobody` (when we are root): let it reach its directory
    env = {**os.environ, "PATENTSIFT_PG_PORT": str(_free_port()), "PATENTSIFT_PG_RUN_DIR": str(run_dir)}
    proc = subprocess.run([str(SCRIPT), "start"], env=env, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        shutil.rmtree(run_dir.parent, ignore_errors=True)
        pytest.fail(f"scripts/postgres start failed: {proc.stderr[-2000:]}")
    try:
        yield proc.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run([str(SCRIPT), "stop"], env=env, capture_output=True, timeout=60)
        shutil.rmtree(run_dir.parent, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A fresh, empty database on the server for one test (dropped after)."""
    name = f"pstest_{uuid.uuid4().hex[:12]}"
    admin = create_engine(pg_server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(pg_server).set(database=name).render_as_string(hide_password=False)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: a SQLite file, then (second run of the test) a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'patentsift.sqlite'}"
    return request.getfixturevalue("pg_url")
