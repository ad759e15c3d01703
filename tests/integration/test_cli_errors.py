"""Failures reach the operator as one line saying what failed and what to do; the traceback only with --debug."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "patentsift" / "sample_data" / "uspto"


def _run(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATENTSIFT_CONFIG": str(home / "none.toml")}
    env.pop("PATENTSIFT_HOME", None)
    return subprocess.run([sys.executable, "-m", "patentsift", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 300 kB file system (tmpfs; needs root, as CI has)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)


def test_a_full_disk_is_one_line_with_what_to_do(tiny_disk: Path, tmp_path: Path) -> None:
    proc = _run("--data-dir", str(tiny_disk / "data"), "harvest", "--path", str(SAMPLES), home=tmp_path)
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) <= 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "disk is full" in proc.stderr and "free space" in proc.stderr


def test_an_unexpected_failure_is_one_line_and_debug_shows_the_traceback(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory", encoding="utf-8")
    args = ("--data-dir", str(blocker / "data"), "harvest", "--path", str(SAMPLES))
    plain = _run(*args, home=tmp_path)
    assert plain.returncode == 1 and "Traceback" not in plain.stderr
    assert [line for line in plain.stderr.splitlines() if line.strip()] == [
        f"error: Not a directory ({blocker / 'data'}); run again with --debug for details"]
    debug = _run("--debug", *args, home=tmp_path)
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "NotADirectoryError" in debug.stderr
