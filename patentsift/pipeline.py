"""One cycle of the service: harvest -> index -> match -> curate (enqueue, auto-approve) -> deliver due digests.

`run_cycle(cfg)` runs the stages in order under a lock (data_dir/cycle.lock, fcntl) so that two cycles never
overlap; each stage's counts, notes and error land in a `CycleReport`, which is also appended to
data_dir/cycles.jsonl. A failing stage is recorded and the later stages still run (they work on what is there).
`python -m patentsift.pipeline` runs one cycle (the scheduler runs each cycle that way: Scrapy's reactor starts
once per process).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from patentsift.config import Config

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


def database_target(cfg: Config) -> str:
    """The shared database (`database_url`, else data_dir/patentsift.sqlite), created folder and all."""
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    return cfg.database


def run_cycle(cfg: Config, now: datetime | None = None, *,
              stages: Sequence[str] = STAGES) -> CycleReport:
    """Run the named stages (in the canonical order) once; raises CycleAlreadyRunning when one is running."""
    unknown = set(stages) - set(STAGES)
    if unknown:
        raise ValueError(f"unknown stage(s) {sorted(unknown)}; known: {', '.join(STAGES)}")
    now = now or datetime.now(UTC)
    report = CycleReport(started_at=datetime.now(UTC))
    with cycle_lock(cfg):
        for name in STAGES:
            if name in stages:
                report.stages.append(_run_stage(name, _STAGE_FUNCS[name], cfg, now))
        report.finished_at = datetime.now(UTC)
        _append_log(cfg, report)
    return report


def _run_stage(name: str, func: Callable[[Config, datetime, StageReport], None], cfg: Config,
               now: datetime) -> StageReport:
    stage = StageReport(name)
    t = time.perf_counter()
    try:
        func(cfg, now, stage)
    except Exception:  # noqa: BLE001 - recorded in the report; later stages still run
        stage.status = "failed"
        stage.error = traceback.format_exc(limit=8)
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
def _harvest(cfg: Config, now: datetime, stage: StageReport) -> None:
    paths = [Path(p).expanduser() for p in cfg.harvest.paths]
    jobs = [(spider, list(urls)) for spider, urls in (("uspto", cfg.harvest.uspto_urls), ("ep", cfg.harvest.ep_urls))
            if urls]
    if not paths and not jobs:
        stage.status = "skipped"
        stage.notes.append("no harvest sources configured ([harvest] paths, uspto_urls, ep_urls)")
        return
    counts = {"files": 0, "documents": 0, "indexed": 0, "rejects": 0, "files_failed": 0}
    failures: list[str] = []
    if paths:
        _ingest_paths(cfg, paths, counts, failures)
    for spider, urls in jobs:
        _crawl(cfg, spider, urls, counts, failures)
    stage.counts = counts
    stage.notes.extend(failures[:20])
    if failures:
        stage.status = "failed"
        stage.error = f"{len(failures)} source(s) failed; first: {failures[0]}"


def _ingest_paths(cfg: Config, paths: list[Path], counts: dict[str, int], failures: list[str]) -> None:
    from harvest.ingest import ingest_path
    from harvest.state import HarvestState
    from patentsift.backends import open_index

    index = open_index(cfg)
    state = HarvestState(cfg.state_path)
    try:
        for p in paths:
            if not p.exists():
                failures.append(f"no such file or directory: {p}")
                continue
            r = ingest_path(p, index, state)
            counts["files"] += r.files
            counts["documents"] += r.documents
            counts["indexed"] += r.indexed
            counts["rejects"] += len(r.rejects)
    finally:
        state.close()
        index.close()


def _crawl(cfg: Config, spider: str, urls: list[str], counts: dict[str, int], failures: list[str]) -> None:
    """Crawl in a subprocess (a Twisted reactor starts once per process) for the embedded index; in-process for ES."""
    overrides: dict[str, Any] = {"USER_AGENT": cfg.harvest.user_agent} if cfg.harvest.user_agent else {}
    if cfg.harvest.keep_downloads:
        overrides["KEEP_DOWNLOADS"] = True
    if cfg.backend == "embedded":
        cmd = [sys.executable, "-m", "harvest.crawl", spider, *urls, "--index", str(cfg.index_path),
               "--state", str(cfg.state_path), "--downloads", str(cfg.downloads_dir)]
        for name, value in overrides.items():
            cmd += ["-s", f"{name}={value}"]
        cmd += [arg for name, value in _crawl_settings().items() for arg in ("-s", f"{name}={value}")]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
        lines = proc.stdout.strip().splitlines()
        if not lines:
            failures.append(f"{spider} crawl exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
            return
        summary = json.loads(lines[-1])
    else:
        from harvest.crawl import crawl_many
        from harvest.state import HarvestState
        from patentsift.backends import open_index

        index, state = open_index(cfg), HarvestState(cfg.state_path)
        try:
            summary = crawl_many([(spider, urls)], index, state, downloads_dir=cfg.downloads_dir,
                                 settings_overrides={**overrides, **_crawl_settings()})[0].to_dict()
        finally:
            state.close()
            index.close()
    counts["files"] += summary["files_fetched"]
    counts["documents"] += summary["documents"]
    counts["indexed"] += summary["indexed"]
    counts["rejects"] += summary["rejects"]
    counts["files_failed"] += summary["files_failed"]
    failures.extend(f"{spider}: {url} ({reason})" for url, reason in summary["failures"])


def _crawl_settings() -> dict[str, str]:
    """Extra Scrapy settings from $PATENTSIFT_CRAWL_SETTINGS (JSON object), e.g. shorter delays in tests."""
    raw = os.environ.get("PATENTSIFT_CRAWL_SETTINGS")
    return {k: str(v) for k, v in json.loads(raw).items()} if raw else {}


def _match(cfg: Config, now: datetime, stage: StageReport) -> None:
    from matching.engine import MatchingEngine
    from matching.store import MatchStore
    from patentsift.backends import open_index

    index = open_index(cfg)
    store = MatchStore(database_target(cfg))
    try:
        if not store.profiles():
            stage.status = "skipped"
            stage.notes.append("no interest profiles (patentsift profile add FILE.toml)")
            return
        embedder = cache = None
        try:
            from matching.embedding_cache import EmbeddingCache
            from matching.embeddings import load_embedder

            embedder = load_embedder()
            cache = EmbeddingCache(cfg.data_dir / "embedding-cache.sqlite")
        except Exception as exc:  # noqa: BLE001 - lexical/class matching still works; say so
            stage.notes.append(f"no embedding model ({exc}); matched on query, classes and applicants only")
        run = MatchingEngine(index, store, embedder, cache).run()
        stage.counts = {"documents": run.documents, "matches": sum(len(v) for v in run.stored.values()),
                        "suppressed_duplicates": sum(run.suppressed.values())}
    finally:
        store.close()
        index.close()


def _count(result: Any) -> dict[str, int]:
    """Counts from a room's report: its int fields and the length of its list fields."""
    if isinstance(result, list | tuple | set):
        return {"items": len(result)}
    out: dict[str, int] = {}
    for name, value in vars(result).items():
        if isinstance(value, int) and not isinstance(value, bool):
            out[name] = value
        elif isinstance(value, list | tuple | set | dict):
            out[name] = len(value)
    return out


def _curate(cfg: Config, now: datetime, stage: StageReport) -> None:
    from distribution.curation import enqueue_new_matches
    from matching.store import MatchStore
    from patentsift.db import open_database

    with open_database(cfg) as db, MatchStore(database_target(cfg)) as store, db.begin() as session:
        items = enqueue_new_matches(session, store, now)
        stage.counts = {"queued": len(items), "auto_approved": sum(1 for i in items if i.status == "approved")}


def _deliver(cfg: Config, now: datetime, stage: StageReport) -> None:
    from distribution.delivery import SmtpSettings, deliver_due
    from patentsift.backends import open_index
    from patentsift.config import load_secret_key
    from patentsift.db import open_database

    settings = SmtpSettings.from_config(cfg.smtp)
    index = open_index(cfg)
    try:
        with open_database(cfg) as db, db.begin() as session:
            result = deliver_due(session, now, index=index, settings=settings, secret=load_secret_key(cfg),
                                     concurrency=cfg.smtp.concurrency)
    finally:
        index.close()
    stage.counts = _count(result)
    if result.failed_permanent or result.failed_transient:
        stage.notes.append(f"{len(result.failed_permanent)} digest(s) failed permanently, "
                           f"{len(result.failed_transient)} will be retried next cycle")


_STAGE_FUNCS: dict[str, Callable[[Config, datetime, StageReport], None]] = {
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
