"""The `patentsift` command as a user runs it: a real process, real files, a real index on disk."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SAMPLE_DATA
from tests.integration.es_support import unique_prefix

GRANTS = SAMPLE_DATA / "uspto" / "grant" / "ipg230110.xml"


def run(data_dir: Path, *args: str, env: dict[str, str] | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "patentsift", "--data-dir", str(data_dir), *args]
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    full_env.pop("PATENTSIFT_CONFIG", None)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env, cwd=data_dir)


@pytest.fixture(scope="module")
def harvested(tmp_path_factory: pytest.TempPathFactory, shared_patents: Path) -> Path:
    data_dir = tmp_path_factory.mktemp("cli")
    res = run(data_dir, "harvest", "--path", str(GRANTS), "--path", str(shared_patents / "cn"))
    assert res.returncode == 0, res.stderr
    assert "3 indexed" in res.stdout and "4 indexed" in res.stdout
    return data_dir


def test_search_json_returns_real_hits_with_highlights(harvested: Path) -> None:
    res = run(harvested, "search", "ti:shield* AND pd:2023", "--json", "--facets")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["total"] == 2
    assert {h["id"] for h in out["hits"]} == {"US-11553629-B2", "US-11553630-B2"}
    assert all("<mark>" in h["highlights"]["ti"][0] for h in out["hits"])
    assert {"value": "US", "count": 2} in out["facets"]["country"]


def test_chinese_query_and_show_in_any_spelling(harvested: Path) -> None:
    res = run(harvested, "search", "ti:放射治疗", "--json")
    assert [h["id"] for h in json.loads(res.stdout)["hits"]] == ["CN-115212463-A"]
    for spelling in ("11553629", "US11553629", "US-11553629-B2", "us 11,553,629 b2"):
        shown = run(harvested, "show", spelling)
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.startswith("US-11553629-B2  Shielding member")
        assert "H05K 9/00" in shown.stdout
    assert json.loads(run(harvested, "show", "CN115212463A", "--json").stdout)["titles"]["zh"] == "一种医用放射治疗装置"


def test_a_company_listed_as_applicant_and_assignee_shows_once(harvested: Path) -> None:
    """US-11553631-B2 names "Raytheon Company" as applicant and "RAYTHEON COMPANY" as assignee: the stored record
    keeps both roles (`show`), every listing names the company once."""
    shown = run(harvested, "show", "US11553631", "--json")
    assert [(p["name"], p["role"]) for p in json.loads(shown.stdout)["applicants"]] == [
        ("Raytheon Company", "applicant"), ("RAYTHEON COMPANY", "assignee")]
    text = run(harvested, "search", "pn:US11553631")
    assert text.returncode == 0, text.stderr
    assert "Raytheon Company" in text.stdout and "RAYTHEON COMPANY" not in text.stdout
    hit = json.loads(run(harvested, "search", "pn:US11553631", "--json").stdout)["hits"][0]
    assert hit["applicants"] == ["Raytheon Company"]
    csv_out = run(harvested, "search", "pn:US11553631", "--format", "csv").stdout
    assert "Raytheon Company" in csv_out and "RAYTHEON COMPANY" not in csv_out


def test_invalid_query_says_where_without_traceback(harvested: Path) -> None:
    res = run(harvested, "search", "ti:(shield AND")
    assert res.returncode == 2
    assert "invalid query at position" in res.stderr and "^" in res.stderr
    assert "Traceback" not in res.stderr
    res = run(harvested, "search", "titel:shield")
    assert res.returncode == 2 and "titel" in res.stderr


def test_rerun_indexes_nothing_new_and_stats_count(harvested: Path) -> None:
    res = run(harvested, "harvest", "--path", str(GRANTS))
    assert res.returncode == 0
    assert "0 indexed" in res.stdout and "1 unchanged" in res.stdout
    stats = json.loads(run(harvested, "stats", "--json").stdout)
    assert stats["documents"] == 7
    assert stats["harvested_files"] >= 2


def test_missing_file_and_unknown_document_fail_clearly(harvested: Path) -> None:
    res = run(harvested, "harvest", "--path", str(harvested / "nope.xml"))
    assert res.returncode == 1 and "no such file" in res.stderr
    res = run(harvested, "show", "US99999999")
    assert res.returncode == 1 and "no document" in res.stderr


def test_demo_runs_the_main_job_end_to_end(tmp_path: Path) -> None:
    res = run(tmp_path, "demo")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "75 indexed" in res.stdout
    assert "US-08418361-B2" in res.stdout  # the phrase query's hit
    assert "explained matches stored" in res.stdout and "US-20040000007-A1" in res.stdout  # profile garments
    assert (tmp_path / "demo" / "index.sqlite").exists()


def test_same_commands_on_elasticsearch(es_url: str, tmp_path: Path) -> None:
    env = {"PATENTSIFT_ES_URL": es_url, "PATENTSIFT_ES_INDEX_PREFIX": unique_prefix("cli")}
    res = run(tmp_path, "--backend", "es", "harvest", "--path", str(GRANTS), env=env)
    assert res.returncode == 0, res.stderr
    out = json.loads(run(tmp_path, "--backend", "es", "search", "ti:shield* AND pd:2023", "--json", env=env).stdout)
    assert {h["id"] for h in out["hits"]} == {"US-11553629-B2", "US-11553630-B2"}
    shown = run(tmp_path, "--backend", "es", "show", "US11553631", env=env)
    assert shown.returncode == 0 and shown.stdout.startswith("US-11553631-B2")
    rebuilt = run(tmp_path, "--backend", "es", "index", "rebuild", env=env)
    assert rebuilt.returncode == 0, rebuilt.stderr
    stats = json.loads(run(tmp_path, "--backend", "es", "stats", "--json", env=env).stdout)
    assert stats["backend"] == "elasticsearch" and stats["documents"] == 3


def test_readme_configuration_example_loads(tmp_path: Path) -> None:
    """The configuration block in the README is valid: every setting it shows exists."""
    from patentsift.config import load_config

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Configuration", 1)[1].split("```toml", 1)[1].split("```", 1)[0]
    path = tmp_path / "patentsift.toml"
    path.write_text(block, encoding="utf-8")
    cfg = load_config(path)
    assert cfg.backend == "embedded" and cfg.elasticsearch.index_prefix == "patentsift"
    assert cfg.smtp.port == 587 and cfg.schedule.timezone == "Asia/Shanghai"
