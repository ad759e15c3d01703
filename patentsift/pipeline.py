"""One cycle of the service: harvest -> index -> match -> curate (enqueue, auto-approve) -> deliver due digests.

`run_cycle(cfg)` runs the stages in order under a lock (data_dir/cycle.lock, fcntl) so that two cycles never
overlap; each stage's counts, notes and error land in a `CycleReport`, which is also appended to
data_dir/cycles.jsonl. A failing stage is recorded (and logged at error level) and the later stages still run (they
work on what is there); what is still due is retried by the next cycle. Everything is built through
patentsift.wiring. `python -m patentsift.pipeline` runs one cycle (the scheduler runs each cycle that way: Scrapy's
reactor starts once per process, so one process crawls once).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from patentsift.config import Config
from patentsift.wiring import System

log = logging.getLogger("patentsift.pipeline")
STAGES = ("harvest", "match", "curate", "deliver")


class CycleAlreadyRunning(RuntimeError):
    """Another cycle holds data_dir/cycle.lock."""


@dataclass
class StageReport:
    name: str
    status: str = "ok"  # ok | skipped | failed
    counts: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0


@dataclass
class CycleReport:
    started_at: datetime
    finished_at: datetime | None = None
    stages: list[StageReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(s.status != "failed" for s in self.stages)

    def stage(self, name: str) -> StageReport:
        return next(s for s in self.stages if s.name == name)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["started_at"] = self.started_at.isoformat()
        out["finished_at"] = self.finished_at.isoformat() if self.finished_at else None
        out["ok"] = self.ok
        return out

    def summary(self) -> str:
        lines = []
        for s in self.stages:
            counts = ", ".join(f"{k} {v}" for k, v in s.counts.items())
            line = f"{s.name}: {s.status}" + (f" ({counts})" if counts else "") + f" in {s.seconds:.1f}s"
            lines += [line, *(f"  note: {n}" for n in s.notes)]
            if s.error:
                lines.append(f"  error: {s.error.strip().splitlines()[-1]}")
        return "\n".join(lines)


@contextmanager
def cycle_lock(cfg: Config) -> Iterator[Path]:
    """Hold data_dir/cycle.lock for the duration (non-blocking: raise CycleAlreadyRunning when taken)."""
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    path = cfg.data_dir / "cycle.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip()
            raise CycleAlreadyRunning(f"another cycle is running (lock {path}, pid {holder or '?'})") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield path
    finally:
        os.close(fd)  # closing releases the lock


def run_cycle(cfg: Config, now: datetime | None = None, *,
              stages: Sequence[str] = STAGES) -> CycleReport:
    """Run the named stages (in the canonical order) once; raises CycleAlreadyRunning when one is running."""
    unknown = set(stages) - set(STAGES)
    if unknown:
        raise ValueError(f"unknown stage(s) {sorted(unknown)}; known: {', '.join(STAGES)}")
    now = now or datetime.now(UTC)
    report = CycleReport(started_at=datetime.now(UTC))
    with cycle_lock(cfg), System(cfg) as system:
        for name in STAGES:
            if name in stages:
                report.stages.append(_run_stage(name, _STAGE_FUNCS[name], system, now))
        report.finished_at = datetime.now(UTC)
        _append_log(cfg, report)
    return report


def _run_stage(name: str, func: Callable[[System, datetime, StageReport], None], system: System,
               now: datetime) -> StageReport:
    stage = StageReport(name)
    t = time.perf_counter()
    try:
        func(system, now, stage)
    except Exception as exc:  # noqa: BLE001 - recorded in the report; later stages still run
        stage.status = "failed"
        stage.error = f"{type(exc).__name__}: {exc}"
        log.error("stage %s failed: %s", name, stage.error, exc_info=True)
    stage.seconds = round(time.perf_counter() - t, 3)
    return stage


def _append_log(cfg: Config, report: CycleReport) -> None:
    with open(cfg.data_dir / "cycles.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps(report.to_dict(), ensure_ascii=False) + "\n")


def cycle_log(cfg: Config) -> list[dict[str, Any]]:
    """Every cycle report written to data_dir/cycles.jsonl, oldest first."""
    path = cfg.data_dir / "cycles.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# --- stages -------------------------------------------------------------------------------------------------
# Each stage builds what it needs through patentsift.wiring.System, as every other entry point does.
def _harvest(system: System, now: datetime, stage: StageReport) -> None:
    from patentsift.wiring import harvest_jobs

    jobs = harvest_jobs(system.cfg)
    if not jobs:
        stage.status = "skipped"
        stage.notes.append("no harvest sources configured ([harvest] paths, uspto_urls, ep_urls)")
        return
    outcome = system.harvest(jobs)
    stage.counts = outcome.counts()
    stage.notes.extend(outcome.failures[:20])
    if stage.counts["rejects"]:
        stage.notes.append(f"{stage.counts['rejects']} document(s) rejected, the rest stored "
                           "(patentsift stats --rejects lists them with their reasons)")
    if outcome.failures:
        stage.status = "failed"
        stage.error = f"{len(outcome.failures)} source(s) failed; first: {outcome.failures[0]}"


def _match(system: System, now: datetime, stage: StageReport) -> None:
    if not system.match_store.profiles():
        stage.status = "skipped"
        stage.notes.append("no interest profiles (patentsift profile add FILE.toml)")
        return
    engine = system.matching_engine()
    stage.notes.extend(system.notes)
    run = engine.run()
    stage.counts = {"documents": run.documents, "matches": sum(len(v) for v in run.stored.values()),
                    "suppressed_duplicates": sum(run.suppressed.values())}
    stage.notes.extend(run.notes)
    stage.notes.extend(f"profile {name} skipped: {why}" for name, why in run.failed.items())


def _curate(system: System, now: datetime, stage: StageReport) -> None:
    from distribution.curation import enqueue_new_matches

    with system.database.begin() as session:
        items = enqueue_new_matches(session, system.match_store, now)
        stage.counts = {"queued": len(items), "auto_approved": sum(1 for i in items if i.status == "approved")}


def _deliver(system: System, now: datetime, stage: StageReport) -> None:
    from distribution.delivery import DeliveryHalted, deliver

    with system.database.session() as session:  # not begin(): delivery commits its own steps
        try:
            result = deliver(session, now, index=system.index, settings=system.delivery_settings())
        except DeliveryHalted as exc:
            stage.status, stage.error = "failed", str(exc)
            return
        stage.notes.extend(skip_notes(session, now, result))
    stage.counts = {"sent": len(result.sent), "failed_permanent": len(result.failed_permanent),
                    "failed_transient": len(result.failed_transient), "skipped": len(result.skipped)}
    if result.failed_permanent or result.failed_transient:
        stage.notes.append(f"{len(result.failed_permanent)} digest(s) failed permanently (contact flagged), "
                           f"{len(result.failed_transient)} will be retried next cycle")


def skip_notes(session: Any, now: datetime, result: Any) -> list[str]:
    """One line per subscription that got no digest: skipped in the run, or not due now."""
    from subscribers.due import not_due_reasons

    lines = [f"subscription {key.split(':', 1)[0]} ({key.split(':', 1)[1]}): {reason}"
             for key, reason in result.reasons.items()]
    handled = {int(k.split(":", 1)[0]) for k in [*result.reasons, *result.sent, *result.failed_permanent,
                                                 *result.failed_transient]}
    lines += [f"subscription {sid}: {reason}" for sid, reason in not_due_reasons(session, now, handled).items()]
    return lines


_STAGE_FUNCS: dict[str, Callable[[System, datetime, StageReport], None]] = {
    "harvest": _harvest, "match": _match, "curate": _curate, "deliver": _deliver,
}


def main(argv: list[str] | None = None) -> int:
    """`python -m patentsift.pipeline [--config FILE] [--data-dir DIR] [--stage NAME ...]`: one cycle, JSON out."""
    from patentsift.config import load_config

    parser = argparse.ArgumentParser(prog="python -m patentsift.pipeline", description=main.__doc__)
    parser.add_argument("--config", type=Path)
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--stage", action="append", choices=STAGES, help="run only these stages (repeatable)")
    opts = parser.parse_args(argv)
    cfg = load_config(opts.config, data_dir=opts.data_dir)
    try:
        report = run_cycle(cfg, stages=opts.stage or STAGES)
    except CycleAlreadyRunning as exc:
        print(json.dumps({"skipped": str(exc)}))
        return 75  # EX_TEMPFAIL
    print(json.dumps(report.to_dict(), ensure_ascii=False))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
