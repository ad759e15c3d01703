"""The scheduler on its real persistent job store: missed runs after downtime catch up ONCE; SIGTERM stops it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from patentsift.config import Config, ConfigError, ScheduleConfig
from patentsift.pipeline import cycle_log
from patentsift.scheduler import JOB_ID, build_scheduler, cycle_trigger, job_store, sync_job

ROOT = Path(__file__).resolve().parents[2]


def _cfg(tmp_path: Path, cron: str = "0 * * * *") -> Config:
    return Config(data_dir=tmp_path / "data", schedule=ScheduleConfig(cycle=cron, timezone="Asia/Shanghai",
                                                                      misfire_grace_time=7200))


def _stored_next_run(cfg: Config) -> datetime:
    with job_store(cfg) as store:
        return store.lookup_job(JOB_ID).next_run_time


def _simulate_downtime(cfg: Config, hours: int) -> int:
    """Write a next_run_time `hours` in the past into the real job store; return how many runs were missed."""
    with job_store(cfg) as store:
        job = store.lookup_job(JOB_ID)
        job._modify(next_run_time=job.next_run_time - timedelta(hours=hours))
        store.update_job(job)
        return len(store.lookup_job(JOB_ID)._get_run_times(datetime.now(UTC)))


def test_missed_runs_catch_up_once_after_downtime(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    sync_job(cfg, stages=["harvest"])  # harvest with no sources: a real, quick cycle (skipped with a note)
    first = _stored_next_run(cfg)
    assert first > datetime.now(UTC)
    missed = _simulate_downtime(cfg, hours=6)
    assert missed >= 6  # several hourly runs were missed while "down"

    scheduler = build_scheduler(cfg, stages=["harvest"])  # restart: the stored past next_run_time survives
    scheduler.start()
    try:
        deadline = time.monotonic() + 60
        while not cycle_log(cfg) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(3)  # room for any further (wrong) catch-up runs
    finally:
        scheduler.shutdown(wait=True)
    runs = cycle_log(cfg)
    assert len(runs) == 1
    assert runs[0]["stages"][0]["status"] == "skipped"
    assert "no harvest sources" in runs[0]["stages"][0]["notes"][0]
    assert _stored_next_run(cfg) > datetime.now(UTC)  # back on schedule


def test_sync_keeps_stored_state_and_reschedules_on_change(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    sync_job(cfg)
    _simulate_downtime(cfg, hours=3)
    past = _stored_next_run(cfg)
    sync_job(cfg)  # a restart with the same schedule keeps the missed run visible
    assert _stored_next_run(cfg) == past
    cfg.schedule.cycle = "30 7 * * 1"
    sync_job(cfg)  # a changed schedule starts afresh
    nxt = _stored_next_run(cfg).astimezone(cycle_trigger(cfg).timezone)
    assert nxt > datetime.now(UTC) and (nxt.weekday(), nxt.hour, nxt.minute) == (0, 7, 30)


def test_bad_schedule_settings_are_named() -> None:
    with pytest.raises(ConfigError, match=r"\[schedule\] cycle"):
        cycle_trigger(Config(schedule=ScheduleConfig(cycle="61 * * * *")))
    with pytest.raises(ConfigError, match=r"\[schedule\] timezone"):
        cycle_trigger(Config(schedule=ScheduleConfig(timezone="Mars/Olympus")))


def test_foreground_scheduler_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc = subprocess.Popen([sys.executable, "-m", "patentsift.scheduler", "--data-dir", str(data)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PATENTSIFT_CONFIG": str(tmp_path / "none.toml")})
    try:
        deadline = time.monotonic() + 60
        while not (data / "scheduler.sqlite").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.5)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert "stopping" in out and "scheduler stopped" in out


def test_cron_days_of_week_count_from_sunday() -> None:
    cfg = Config(schedule=ScheduleConfig(cycle="0 6 * * 1-5", timezone="UTC"))
    start = datetime(2026, 11, 28, 12, tzinfo=UTC)  # a Saturday
    fire = cycle_trigger(cfg).get_next_fire_time(None, start)
    assert fire.weekday() == 0 and fire.hour == 6  # Monday, as in cron
    cfg.schedule.cycle = "0 6 * * 0"
    assert cycle_trigger(cfg).get_next_fire_time(None, start).weekday() == 6  # Sunday
    cfg.schedule.cycle = "*/15 6 * * */2"  # steps stay steps
    assert cycle_trigger(cfg).get_next_fire_time(None, start).minute in (0, 15, 30, 45)


def test_a_failed_stage_is_logged_at_error_level_with_what_to_do(tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from patentsift.scheduler import run_cycle_job

    config = tmp_path / "patentsift.toml"
    config.write_text(f'[harvest]\npaths = ["{tmp_path / "missing"}"]\n', encoding="utf-8")
    with caplog.at_level(logging.INFO, logger="patentsift.scheduler"):
        code = run_cycle_job(str(config), str(tmp_path / "data"), ["harvest"])
    assert code == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors and "stage harvest failed" in errors[0] and "missing" in errors[0]
    assert "next cycle retries" in errors[0]
