"""`patentsift profile ...`, `match` and `feedback` as a user runs them on the shipped demo data."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import SAMPLE_DATA
from tests.integration.test_cli import run

PROFILES = SAMPLE_DATA / "profiles.toml"


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("match")
    res = run(data_dir, "harvest", "--path", str(SAMPLE_DATA / "uspto"))
    assert res.returncode == 0, res.stderr
    assert "75 indexed" in res.stdout
    return data_dir


def test_bad_profile_gets_clear_errors(demo_data: Path) -> None:
    bad = demo_data / "bad.toml"
    bad.write_text('[[profile]]\nname = "x"\nquery = "ti:(a AND"\nseeds = ["US99999999"]\n', encoding="utf-8")
    res = run(demo_data, "profile", "validate", str(bad))
    assert res.returncode != 0
    assert "query" in (res.stdout + res.stderr) and "Traceback" not in res.stderr


def test_preview_match_rerun_and_feedback(demo_data: Path) -> None:
    res = run(demo_data, "profile", "add", str(PROFILES))
    assert res.returncode == 0, res.stderr
    preview = run(demo_data, "profile", "preview", "garments", "--since", "2000-01-01")
    assert preview.returncode == 0, preview.stderr
    assert "US-20040000007-A1" in preview.stdout  # PROTECTIVE GARMENT

    first = run(demo_data, "match")
    assert first.returncode == 0, first.stderr
    assert "75 new documents" in first.stdout  # preview stored nothing: the watermark had not moved
    new = int(re.search(r"(\d+) new matches", first.stdout).group(1))
    assert new >= 3
    assert "US-20040000007-A1" in first.stdout
    assert "classes:" in first.stdout and "terms:" in first.stdout  # explanations

    again = run(demo_data, "match")
    assert again.returncode == 0 and "0 new matches" in again.stdout

    match_id = re.search(r"#(\d+) US-", first.stdout).group(1)
    fb = run(demo_data, "feedback", match_id, "irrelevant")
    assert fb.returncode == 0, fb.stderr
    unknown = run(demo_data, "feedback", "999999", "relevant")
    assert unknown.returncode != 0 and "Traceback" not in unknown.stderr
