"""`patentsift scheduler`: APScheduler 3.x runs the cycle on a cron schedule from [schedule] in the config.

Jobs persist in a SQLAlchemy job store (data_dir/scheduler.sqlite). `coalesce=True` + `max_instances=1` +
`misfire_grace_time`: after downtime that missed several runs, the cycle catches up ONCE, and never overlaps
(the cycle's own lock guards against `run-once` from cron as well). Each cycle runs in a subprocess
(`python -m patentsift.pipeline`): Scrapy's reactor starts once per process, and a crash stays contained.
"""

from __future__ import annotations

import json
import logging
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.job import Job
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger

from patentsift.config import Config, ConfigError

JOB_ID = "patentsift-cycle"
log = logging.getLogger("patentsift.scheduler")


def jobstore_url(cfg: Config) -> str:
    return f"sqlite:///{cfg.data_dir / 'scheduler.sqlite'}"


_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")


def crontab_days_by_name(expr: str) -> str:
    """Spell numeric days of week as names: cron counts 0/7 = Sunday, APScheduler 3's numbers start at Monday."""
    fields = expr.split()
    if len(fields) == 5:
        fields[4] = re.sub(r"(?<![/\d])([0-7])(?!\d)", lambda m: _DAY_NAMES[int(m.group(1))], fields[4])
    return " ".join(fields)


def cycle_trigger(cfg: Config) -> CronTrigger:
    """The [schedule] cron expression in its time zone; ConfigError names the bad setting."""
    try:
        tz = ZoneInfo(cfg.schedule.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"[schedule] timezone: unknown time zone {cfg.schedule.timezone!r}") from None
    try:
        return CronTrigger.from_crontab(crontab_days_by_name(cfg.schedule.cycle), timezone=tz)
    except ValueError as exc:
        raise ConfigError(f"[schedule] cycle: bad cron expression {cfg.schedule.cycle!r} ({exc})") from None


def run_cycle_job(config_path: str | None, data_dir: str, stages: list[str] | None = None) -> int:
    """The scheduled job: one cycle in a subprocess; returns its exit status (75: another cycle was running)."""
    cmd = [sys.executable, "-m", "patentsift.pipeline", "--data-dir", data_dir]
    if config_path:
        cmd += ["--config", config_path]
    for stage in stages or ():
        cmd += ["--stage", stage]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    tail = proc.stdout.strip().splitlines()[-1:] or [proc.stderr.strip()[-2000:]]
    try:
        outcome = json.loads(tail[0])
    except (ValueError, IndexError):
        log.error("cycle crashed (exit %s): %s; the next cycle retries what is still due", proc.returncode,
                  (tail or ["no output"])[0])
        return proc.returncode
    if outcome.get("skipped"):
        log.warning("cycle skipped: %s", outcome["skipped"])
        return proc.returncode
    for stage in outcome.get("stages", []):
        counts = ", ".join(f"{k} {v}" for k, v in stage.get("counts", {}).items())
        if stage.get("status") == "failed":
            log.error("stage %s failed: %s; the next cycle retries what is still due (details: "
                      "data_dir/cycles.jsonl, or run `patentsift run-once --stage %s`)", stage["name"],
                      stage.get("error"), stage["name"])
        else:
            log.info("stage %s: %s%s", stage["name"], stage.get("status"), f" ({counts})" if counts else "")
        for note in stage.get("notes", [])[:20]:
            log.info("  %s: %s", stage["name"], note)
    log.info("cycle finished (exit %s): %s", proc.returncode, "ok" if outcome.get("ok") else "failed")
    return proc.returncode


def _scheduler(cfg: Config, scheduler_cls: type[BaseScheduler]) -> BaseScheduler:
    return scheduler_cls(
        jobstores={"default": SQLAlchemyJobStore(url=jobstore_url(cfg))},
        job_defaults=_job_defaults(cfg), timezone=cycle_trigger(cfg).timezone,
    )


def _job_defaults(cfg: Config) -> dict[str, Any]:
    return {"coalesce": True, "max_instances": 1, "misfire_grace_time": cfg.schedule.misfire_grace_time}


@contextmanager
def job_store(cfg: Config) -> Iterator[SQLAlchemyJobStore]:
    """The persistent job store, opened without a running scheduler (no thread that could run or skip jobs)."""
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    store = SQLAlchemyJobStore(url=jobstore_url(cfg))
    store.start(_scheduler(cfg, BackgroundScheduler), "default")  # creates the table; the scheduler never starts
    try:
        yield store
    finally:
        store.shutdown()


def sync_job(cfg: Config, *, stages: list[str] | None = None) -> None:
    """Put the cycle job in the persistent store, or bring the stored one up to date with the config.

    The stored next_run_time is kept unless the schedule itself changed: that is how runs missed while the
    scheduler was down are noticed (add_job(replace_existing=True) would move it into the future instead).
    """
    trigger = cycle_trigger(cfg)
    args = [str(cfg.source.resolve()) if cfg.source else None, str(cfg.data_dir.resolve()), stages]
    spec = {"func": run_cycle_job, "trigger": trigger, "executor": "default", "args": args, "kwargs": {},
            "name": "patentsift cycle", **_job_defaults(cfg)}
    now = datetime.now(trigger.timezone)
    with job_store(cfg) as store:
        job = store.lookup_job(JOB_ID)
        if job is None:
            store.add_job(Job(store._scheduler, id=JOB_ID, next_run_time=trigger.get_next_fire_time(None, now),
                              **spec))
            return
        same = repr(job.trigger) == repr(trigger)
        job._modify(next_run_time=job.next_run_time if same else trigger.get_next_fire_time(None, now), **spec)
        store.update_job(job)


def build_scheduler(cfg: Config, scheduler_cls: type[BaseScheduler] = BackgroundScheduler, *,
                    stages: list[str] | None = None) -> BaseScheduler:
    """A scheduler on the persistent job store holding the (synced) cycle job; not started."""
    sync_job(cfg, stages=stages)
    return _scheduler(cfg, scheduler_cls)


def run_forever(cfg: Config, *, stages: list[str] | None = None) -> None:
    """Run the scheduler in the foreground until SIGTERM or SIGINT (a running cycle is let finish)."""
    scheduler = build_scheduler(cfg, BlockingScheduler, stages=stages)

    def stop(signum: int, _frame: Any) -> None:
        log.info("signal %s: stopping", signal.Signals(signum).name)
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("scheduler started: cycle %r (%s)", cfg.schedule.cycle, cfg.schedule.timezone)
    scheduler.start()  # BlockingScheduler: returns after shutdown


def main(argv: list[str] | None = None) -> int:
    """`python -m patentsift.scheduler [--config FILE] [--data-dir DIR]`: the foreground scheduler."""
    import argparse

    from patentsift.config import load_config

    parser = argparse.ArgumentParser(prog="python -m patentsift.scheduler", description=main.__doc__)
    parser.add_argument("--config", type=Path)
    parser.add_argument("--data-dir", type=Path)
    opts = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    run_forever(load_config(opts.config, data_dir=opts.data_dir))
    log.info("scheduler stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
