"""Parsing for `ingest_path`, in this process or in worker processes: documents are cut out of the file here, parsed
(and, for a backend that can, prepared for writing) in the workers, and handed back in file order.

`parse_outcome` is the pure part (one document's parse, every refusal as data); `Parser` runs it in process or
over a pool with a bounded number of chunks in flight, so memory stays bounded on a 1 GB weekly file.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

from harvest.files import Item
from harvest.formats import ROOT_FORMATS, Reference, ReferencesOnly, parse_raw
from harvest.raw import RawDocument, Reject
from index.base import Prepared
from index.model import PatentDocument

logger = logging.getLogger(__name__)

AUTO = "auto"
AUTO_MIN_BYTES = 32 << 20  # "auto" starts workers for files of at least this size: the CLI on 2 cores, 20 MB of
# XML 0.8x, 40 MB 1.15x, 128 MB 1.44x the speed in process (starting the fork server and workers costs ~0.5 s)
AUTO_MAX_WORKERS = 4  # past this the main process (SQLite writes, state) is the bottleneck
CHUNK_DOCUMENTS = 32  # documents per task: enough that IPC stays small next to parsing; 2 per worker in flight
Preparer = Callable[[PatentDocument], Prepared]
Workers = int | str  # a count, or "auto"


@dataclass
class Outcome:
    """What parsing one document gave: its documents, or why it was refused (`reason`; picklable, unlike Reject)."""

    docs: list[PatentDocument | Prepared] = field(default_factory=list)
    reason: str | None = None
    skip: bool = False
    references: list[Reference] = field(default_factory=list)


def parse_outcome(raw: RawDocument, prepare: Preparer | None = None) -> Outcome:
    """`parse_raw` with every refusal caught as ingestion records it; full documents go through `prepare` if given."""
    try:
        docs = parse_raw(raw)
    except ReferencesOnly as exc:
        return Outcome(reason=exc.reason, skip=exc.skip, references=exc.references)
    except Reject as exc:
        return Outcome(reason=exc.reason, skip=exc.skip)
    except Exception as exc:  # a parser bug must not stop a weekly file: the document is rejected with the cause
        return Outcome(reason=f"parser error: {type(exc).__name__}: {exc}")
    if prepare is None:
        return Outcome(list(docs))
    return Outcome([doc if doc.partial else _prepared(doc, prepare) for doc in docs])


def _prepared(doc: PatentDocument, prepare: Preparer) -> PatentDocument | Prepared:
    try:
        return prepare(doc)
    except Exception:  # noqa: BLE001 - the upsert prepares it again and reports the failure for this document
        return doc


def parse_chunk(raws: list[RawDocument], prepare: Preparer | None) -> list[Outcome]:
    """A worker's task: the outcome of each of `raws`, in order."""
    return [parse_outcome(raw, prepare) for raw in raws]


def parse_workers(value: Workers | None) -> int | None:
    """A workers setting read: None for "auto" (decided per file), else a count >= 0; ValueError otherwise."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", AUTO)):
        return None
    try:
        count = int(value)
    except ValueError:
        raise ValueError(f"parse workers must be 'auto' or a whole number >= 0, not {value!r}") from None
    if count < 0:
        raise ValueError(f"parse workers must be 'auto' or a whole number >= 0, not {value!r}")
    return count


def workers_for(setting: int | None, size: int, cpus: int | None) -> int:
    """Worker processes for a file of `size` bytes: an explicit count (0 or 1: parse in this process), or for
    "auto" (None) one per core up to AUTO_MAX_WORKERS on a machine of 2+ cores and a file of AUTO_MIN_BYTES+."""
    if setting is None:
        cores = cpus or 1
        return min(cores, AUTO_MAX_WORKERS) if cores >= 2 and size >= AUTO_MIN_BYTES else 0
    return setting if setting >= 2 else 0


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _worker_start() -> None:
    """Workers leave Ctrl-C to the main process, which stops them when it stops the pool."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class Parser:
    """Parses the documents of one ingestion, in this process or over a lazily started pool kept for the run.

    A chunk whose worker fails (a crashed process, an unpicklable result) is parsed again in this process, and a
    broken pool is given up for the rest of the run: no document is lost to a worker.
    """

    def __init__(self, workers: Workers | None = AUTO, prepare: Preparer | None = None,
                 chunk: int | None = None) -> None:
        self.setting = parse_workers(workers)
        self.prepare = prepare
        self.chunk = max(1, chunk or CHUNK_DOCUMENTS)
        self.pool: ProcessPoolExecutor | None = None
        self.size = 0  # workers of the pool once started
        self.broken = False

    def workers(self, size: int) -> int:
        """The worker processes a file of `size` bytes is parsed with (0: in this process)."""
        return 0 if self.broken else workers_for(self.setting, size, _cpus())

    def outcomes(self, items: Iterable[Item], wanted: Callable[[Item], bool], size: int
                 ) -> Iterator[tuple[Item, Outcome | None]]:
        """Each of `items` in order with the outcome of its parse; None for rejects and for documents `wanted`
        passes over (resumed ones). `wanted` is called on every item in order, ahead of the results."""
        n = self.workers(size)
        if n == 0:
            for item in items:
                yield item, parse_outcome(item) if wanted(item) and isinstance(item, RawDocument) else None
            return
        pool = self._pool(n)
        pending: deque[tuple[list[tuple[Item, bool]], Future[list[Outcome]] | None]] = deque()
        window = 2 * self.size + 1
        chunk: list[tuple[Item, bool]] = []  # items, parsed or not (resumed ones too: memory stays bounded)
        try:
            for item in items:
                chunk.append((item, wanted(item) and isinstance(item, RawDocument)))
                if len(chunk) >= self.chunk:
                    pending.append((chunk, self._submit(pool, chunk)))
                    chunk = []
                    while len(pending) > window:
                        yield from self._results(*pending.popleft())
            if chunk:
                pending.append((chunk, self._submit(pool, chunk)))
            while pending:
                yield from self._results(*pending.popleft())
        finally:
            for _, future in pending:
                if future is not None:
                    future.cancel()

    def _submit(self, pool: ProcessPoolExecutor, chunk: list[tuple[Item, bool]]) -> Future[list[Outcome]] | None:
        raws = [item for item, want in chunk if want and isinstance(item, RawDocument)]
        if not raws or self.broken:
            return None
        try:
            return pool.submit(parse_chunk, raws, self.prepare)
        except (BrokenProcessPool, RuntimeError) as exc:
            self._give_up(exc)
            return None

    def _results(self, chunk: list[tuple[Item, bool]], future: Future[list[Outcome]] | None
                 ) -> Iterator[tuple[Item, Outcome | None]]:
        outcomes: list[Outcome] | None = None
        if future is not None:
            try:
                outcomes = future.result()
            except BrokenProcessPool as exc:
                self._give_up(exc)
            except Exception as exc:  # noqa: BLE001 - e.g. a result that did not pickle: parsed again here
                logger.warning("a parse worker failed (%s: %s); its documents are parsed in process",
                               type(exc).__name__, exc)
        done = iter(outcomes) if outcomes is not None else None
        for item, want in chunk:
            if not want:
                yield item, None
            elif done is not None:
                yield item, next(done)
            else:
                yield item, parse_outcome(item, self.prepare) if isinstance(item, RawDocument) else None

    def _give_up(self, exc: BaseException) -> None:
        if not self.broken:
            logger.warning("parse workers stopped (%s: %s); the rest is parsed in process", type(exc).__name__, exc)
        self.broken = True

    def _pool(self, n: int) -> ProcessPoolExecutor:
        if self.pool is None:
            self.pool = ProcessPoolExecutor(n, mp_context=_context(self.prepare), initializer=_worker_start)
            self.size = n
        return self.pool

    def close(self) -> None:
        """Stop the workers (queued chunks are dropped; a chunk being parsed is waited for)."""
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None

    def __enter__(self) -> Parser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _context(prepare: Preparer | None) -> multiprocessing.context.BaseContext:
    """forkserver where there is one (the process may run threads: Scrapy, the scheduler, the web server, and
    forking them is unsafe), with the parsers loaded once in the server; spawn elsewhere."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    # __main__ too (as the default preload does): each worker would import it again otherwise
    modules = ["__main__", __name__, *sorted({f"harvest.formats.{m}" for m in ROOT_FORMATS.values()})]
    if prepare is not None:
        modules.append(prepare.__module__)
    ctx.set_forkserver_preload(modules)  # used when the server starts (once per process)
    return ctx
