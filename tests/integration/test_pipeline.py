"""run_cycle end to end on real documents: harvest (files on disk, the local office site) -> match -> curate."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from distribution.models import ReviewItem
from harvest.testserver import build_fixture_site, serve_fixtures
from patentsift.config import Config
from patentsift.db import open_database
from patentsift.pipeline import CycleAlreadyRunning, cycle_lock, cycle_log, run_cycle
from patentsift.wiring import standalone_match_store
from subscribers import service
from subscribers.profiles import Profile

ROOT = Path(__file__).resolve().parents[2]
FILES = ["uspto-grant/weekly/ipg230110.first3.xml", "uspto-grant/weekly/pg020507.ten.xml", "cn", "jp"]
SECRET = "pipeline-test-secret-key-0123456789abcdef"


def _cfg(tmp_path: Path, shared: Path) -> Config:
    cfg = Config(data_dir=tmp_path / "data")
    cfg.harvest.paths = [str(shared / f) for f in FILES]
    return cfg


def test_cycle_harvests_matches_and_queues_for_curation(tmp_path: Path, shared_patents: Path) -> None:
    cfg = _cfg(tmp_path, shared_patents)
    with standalone_match_store(cfg.database) as store:
        store.save_profile(Profile(name="everything", description="method apparatus device composition",
                                   query="method OR device OR apparatus OR 方法 OR 装置", threshold=0.05))
    with open_database(cfg) as db, db.begin() as s:
        outlet = service.create_outlet(s, "North")
        org = service.create_organization(s, outlet.id, "Acme")
        contact = service.add_contact(s, org.id, "a@acme.example")
        sub, token = service.subscribe(s, SECRET, contact.id, ["everything"], auto_approve_above=0.0)
        service.confirm(s, SECRET, token)
    report = run_cycle(cfg, stages=("harvest", "match", "curate"))
    assert report.ok, report.summary()
    harvest = report.stage("harvest").counts
    assert harvest["indexed"] >= 15 and harvest["rejects"] == 0
    match = report.stage("match").counts
    assert match["documents"] == harvest["indexed"] and match["matches"] > 0
    curate = report.stage("curate").counts
    assert curate["queued"] == match["matches"] == curate["auto_approved"]
    with open_database(cfg) as db, db.begin() as s:
        items = s.scalars(select(ReviewItem)).all()
    assert len(items) == curate["queued"] and {i.decided_by for i in items} == {"auto"}

    again = run_cycle(cfg, stages=("harvest", "match", "curate"))  # nothing new: files unchanged
    assert again.stage("harvest").counts["indexed"] == 0
    assert again.stage("match").counts["matches"] == 0 and again.stage("curate").counts["queued"] == 0
    assert len(cycle_log(cfg)) == 2


def test_failing_stage_is_recorded_and_later_stages_run(tmp_path: Path, shared_patents: Path) -> None:
    cfg = _cfg(tmp_path, shared_patents)
    cfg.harvest.paths = [str(shared_patents / "jp"), str(tmp_path / "missing")]
    report = run_cycle(cfg, stages=("harvest", "match"))
    h = report.stage("harvest")
    assert h.status == "failed" and "missing" in (h.error or "") and h.counts["indexed"] == 2
    assert report.stage("match").status == "skipped" and not report.ok


def test_unconfigured_harvest_is_skipped_with_a_note(tmp_path: Path) -> None:
    report = run_cycle(Config(data_dir=tmp_path), stages=("harvest",))
    assert report.stage("harvest").status == "skipped" and report.ok


def test_harvest_from_the_office_site(tmp_path: Path, shared_patents: Path) -> None:
    """`patentsift run-once` as cron runs it, twice: the second crawl fetches nothing new."""
    import json
    import os

    build_fixture_site([shared_patents / FILES[0]], tmp_path / "site")
    env = {**os.environ, "PATENTSIFT_CRAWL_SETTINGS": '{"AUTOTHROTTLE_START_DELAY": 0.01, "DOWNLOAD_DELAY": 0}',
           "PATENTSIFT_CONFIG": str(tmp_path / "patentsift.toml")}
    with serve_fixtures(tmp_path / "site") as url:
        (tmp_path / "patentsift.toml").write_text(
            f'data_dir = "{tmp_path / "data"}"\n[harvest]\nuspto_urls = ["{url}/data/patent/grant/redbook/fulltext/"]\n',
            encoding="utf-8")
        runs = [subprocess.run([sys.executable, "-m", "patentsift", "run-once", "--stage", "harvest", "--json"],
                               cwd=ROOT, env=env, capture_output=True, text=True, timeout=300) for _ in range(2)]
    for proc in runs:
        assert proc.returncode == 0, proc.stderr[-3000:]
    first, second = (json.loads(p.stdout) for p in runs)
    assert first["ok"] and first["stages"][0]["counts"]["indexed"] == 3
    assert second["ok"] and second["stages"][0]["counts"]["files"] == 0


def test_lock_prevents_overlap(tmp_path: Path) -> None:
    cfg = Config(data_dir=tmp_path)
    with cycle_lock(cfg), pytest.raises(CycleAlreadyRunning):
        run_cycle(cfg, stages=("harvest",))
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from patentsift.config import Config;"
        "from patentsift.pipeline import cycle_lock\n"
        f"with cycle_lock(Config(data_dir=Path({str(tmp_path)!r}))):\n print('held', flush=True); time.sleep(30)")],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(CycleAlreadyRunning, match=f"pid {holder.pid}"):
            run_cycle(cfg, stages=("harvest",))
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    assert run_cycle(cfg, stages=("harvest",)).ok  # released when the holder died
    assert len(cycle_log(cfg)) == 1
