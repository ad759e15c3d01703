"""The one place that builds the running service from its configuration.

The CLI, the cycle pipeline (`run-once`, the scheduler), the web app, the demo and the test fixtures all build what
they need through `System`: the index, the shared database, the match store, the matching engine (embedder, cache,
lexical-only fallback), the delivery settings (SMTP and retry policy) and harvesting (the jobs a configuration
and a command line name, and the one way they run). No two entry points can build a thing differently.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from index.base import Index
from patentsift.config import Config, load_secret_key

if TYPE_CHECKING:
    from db import Database
    from distribution.delivery import DeliverySettings
    from harvest.crawl import CrawlSummary
    from harvest.ingest import IngestReport
    from harvest.state import HarvestState
    from matching.embedding_cache import EmbeddingCache
    from matching.embeddings import Embedder
    from matching.engine import EngineOptions, MatchingEngine
    from matching.store import MatchStore

CRAWL_INDEX_FACTORY = f"{__name__}.index_for_crawl"  # Scrapy settings carry this import path, not an index
CRAWL_CONFIG_SETTING = "PATENTSIFT_CONFIG"  # ... and the configuration (plain data) it opens the index from


def open_index(cfg: Config) -> Index:
    """Open the index the configuration names: the embedded default or Elasticsearch."""
    if cfg.backend == "elasticsearch":
        from index.elastic import ElasticIndex

        es = cfg.elasticsearch
        return ElasticIndex(
            es.hosts, index_prefix=es.index_prefix, api_key=es.api_key,
            basic_auth=(es.username, es.password or "") if es.username else None,
            ca_certs=es.ca_certs, verify_certs=es.verify_certs, request_timeout=es.request_timeout,
            analyzers=es.analyzers, shards=es.shards, replicas=es.replicas, bulk_threads=es.bulk_threads,
            bulk_relax_replicas=es.bulk_relax_replicas,
        )
    from index.embedded import EmbeddedIndex

    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    return EmbeddedIndex(cfg.index_path)


def index_for_crawl(settings: Any) -> Index:
    """Index factory named in crawl settings (harvest.crawl): the index of the configuration they carry."""
    return open_index(settings.get(CRAWL_CONFIG_SETTING))


def delivery_settings(cfg: Config) -> DeliverySettings:
    """SMTP server, sender identity, links, retry policy and concurrency: the only builder of delivery settings."""
    from distribution.delivery import DeliverySettings, RetryPolicy, SmtpSettings

    s = cfg.smtp
    smtp = SmtpSettings(host=s.host, port=s.port, security=s.security, username=s.username, password=s.password,
                        from_address=s.from_address, reply_to=s.reply_to, unsubscribe_mailto=s.unsubscribe_mailto,
                        base_url=s.base_url, timeout=s.timeout)
    policy = RetryPolicy(max_attempts=s.max_attempts, base_delay=s.backoff_base, max_delay=s.backoff_max)
    return DeliverySettings(smtp=smtp, policy=policy, concurrency=s.concurrency, secret=load_secret_key(cfg))


# --- harvesting ------------------------------------------------------------------------------------------------
@dataclass
class HarvestJobs:
    """What one harvest fetches: files or folders on disk, and listing URLs per spider."""

    paths: list[Path] = field(default_factory=list)
    crawls: list[tuple[str, list[str]]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.paths or self.crawls)


def harvest_jobs(cfg: Config, *, paths: Sequence[Path] = (), uspto: Sequence[str] = (),
                 ep: Sequence[str] = ()) -> HarvestJobs:
    """The sources named on a command line, else every source of `[harvest]` (paths, uspto_urls, ep_urls)."""
    if paths or uspto or ep:
        jobs = HarvestJobs(list(paths), [(n, list(u)) for n, u in (("uspto", uspto), ("ep", ep)) if u])
    else:
        h = cfg.harvest
        jobs = HarvestJobs([Path(p).expanduser() for p in h.paths],
                           [(n, list(u)) for n, u in (("uspto", h.uspto_urls), ("ep", h.ep_urls)) if u])
    return jobs


def crawl_settings(cfg: Config) -> dict[str, Any]:
    """Scrapy settings from the configuration, then $PATENTSIFT_CRAWL_SETTINGS (a JSON object; tests shorten
    delays with it), for every crawl whatever the backend."""
    out: dict[str, Any] = {CRAWL_CONFIG_SETTING: cfg}
    if cfg.harvest.user_agent:
        out["USER_AGENT"] = cfg.harvest.user_agent
    if cfg.harvest.keep_downloads:
        out["KEEP_DOWNLOADS"] = True
    out["PATENTSIFT_PARSE_WORKERS"] = cfg.harvest.parse_workers
    raw = os.environ.get("PATENTSIFT_CRAWL_SETTINGS")
    if raw:
        out.update(json.loads(raw))
    return out


@dataclass
class HarvestOutcome:
    """What one harvest did, per source, with the totals the CLI and the pipeline report."""

    path_reports: list[tuple[Path, IngestReport]] = field(default_factory=list)
    crawl_summaries: list[CrawlSummary] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # sources that could not be harvested, one line each

    def counts(self) -> dict[str, int]:
        c = {"files": 0, "documents": 0, "indexed": 0, "skipped": 0, "rejects": 0, "files_failed": 0}
        for _, r in self.path_reports:
            c["files"] += r.files
            c["documents"] += r.documents
            c["indexed"] += r.indexed
            c["skipped"] += r.skipped
            c["rejects"] += len(r.rejects)
        for s in self.crawl_summaries:
            c["files"] += s.files_fetched
            c["documents"] += s.documents
            c["indexed"] += s.indexed
            c["skipped"] += s.skipped
            c["rejects"] += s.rejects
            c["files_failed"] += s.files_failed
        return c


# --- the system -------------------------------------------------------------------------------------------------
class System:
    """Everything the service is made of, built lazily from one `Config` and closed together."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self._index: Index | None = None
        self._database: Database | None = None
        self._store: MatchStore | None = None
        self._embedder: Embedder | None = None
        self._embedder_loaded = False
        self._caches: dict[int, EmbeddingCache] = {}
        self.notes: list[str] = []  # what was degraded while building (e.g. no embedding model)

    def __enter__(self) -> System:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._index is not None:
            self._index.close()
            self._index = None
        if self._database is not None:
            self._database.close()
            self._database = None
        for cache in self._caches.values():
            try:
                cache.close()
            except Exception:  # noqa: BLE001 - a connection of another (finished) thread
                pass
        self._caches.clear()
        self._store = None

    @property
    def index(self) -> Index:
        if self._index is None:
            self._index = open_index(self.cfg)
        return self._index

    @property
    def database(self) -> Database:
        """The shared database, migrated to head once (the first time it is asked for)."""
        if self._database is None:
            from patentsift.db import open_database

            self._database = open_database(self.cfg)
        return self._database

    @property
    def match_store(self) -> MatchStore:
        if self._store is None:
            from matching.store import MatchStore

            self._store = MatchStore(self.database.sessions)
        return self._store

    @property
    def secret(self) -> str:
        return load_secret_key(self.cfg)

    def delivery_settings(self) -> DeliverySettings:
        return delivery_settings(self.cfg)

    def harvest_state(self) -> HarvestState:
        from harvest.state import HarvestState

        self.cfg.data_dir.mkdir(parents=True, exist_ok=True)
        return HarvestState(self.cfg.state_path)

    # --- matching -----------------------------------------------------------------------------------------------
    def embedder(self) -> Embedder | None:
        """The embedding model, loaded once; None (with a note) when it cannot be loaded: matching then runs on
        the query, classes and applicants only."""
        if not self._embedder_loaded:
            self._embedder_loaded = True
            try:
                from matching.embeddings import load_embedder

                self._embedder = load_embedder()
            except Exception as exc:  # noqa: BLE001 - lexical matching still works; say so
                self.notes.append(f"no embedding model ({exc}); matched on query, classes and applicants only")
        return self._embedder

    def matching_engine(self, *, dense: bool = True, options: EngineOptions | None = None) -> MatchingEngine:
        """The matching engine on this system's index and store; `dense=False`: lexical, classes, applicants."""
        from matching.engine import MatchingEngine

        embedder = self.embedder() if dense else None
        cache = self.embedding_cache() if embedder is not None else None
        return MatchingEngine(self.index, self.match_store, embedder, cache, options)

    def embedding_cache(self) -> EmbeddingCache:
        """The content-hash cache of embeddings (data_dir/embedding-cache.sqlite), keyed by model: opened once per
        thread (its SQLite connection belongs to the thread that opened it) and closed with the system."""
        from matching.embedding_cache import EmbeddingCache

        thread = threading.get_ident()
        if thread not in self._caches:
            self.cfg.data_dir.mkdir(parents=True, exist_ok=True)
            self._caches[thread] = EmbeddingCache(self.cfg.data_dir / "embedding-cache.sqlite")
        return self._caches[thread]

    # --- harvesting ---------------------------------------------------------------------------------------------
    def harvest(self, jobs: HarvestJobs, *,
                on_path: Callable[[Path], Callable[[int], None] | None] | None = None,
                on_report: Callable[[Path, IngestReport], None] | None = None) -> HarvestOutcome:
        """Run a harvest: files on disk are ingested, listings crawled by the Scrapy spiders (once per process:
        Twisted's reactor cannot restart). `on_path(path)` may return a progress callback (bytes done)."""
        from harvest.crawl import crawl_many
        from harvest.ingest import ingest_path

        outcome = HarvestOutcome()
        if jobs.paths:
            state = self.harvest_state()
            try:
                for p in jobs.paths:
                    if not p.exists():
                        outcome.failures.append(f"no such file or directory: {p}")
                        continue
                    report = ingest_path(p, self.index, state, progress=on_path(p) if on_path else None,
                                         workers=self.cfg.harvest.parse_workers)
                    outcome.path_reports.append((p, report))
                    if on_report is not None:
                        on_report(p, report)
            finally:
                state.close()
        if jobs.crawls:
            self.cfg.data_dir.mkdir(parents=True, exist_ok=True)
            if self._index is not None:  # the spiders' pipeline opens its own (from the factory)
                self._index.close()
                self._index = None
            summaries = crawl_many(jobs.crawls, index_factory=CRAWL_INDEX_FACTORY, state_path=self.cfg.state_path,
                                   downloads_dir=self.cfg.downloads_dir, settings_overrides=crawl_settings(self.cfg))
            outcome.crawl_summaries.extend(summaries)
            outcome.failures.extend(f"{s.spider}: {url} ({reason})" for s in summaries for url, reason in s.failures)
        return outcome


def standalone_match_store(path_or_url: Path | str) -> _StandaloneStore:
    """A match store on a database of its own (migrated), closed with it: for tools, benches and tests that need
    only the store. Services use `System.match_store`."""
    from patentsift.db import open_url_migrated

    return _StandaloneStore(open_url_migrated(path_or_url))


class _StandaloneStore:
    """A MatchStore (by delegation) that owns its database handle."""

    def __init__(self, database: Database) -> None:
        from matching.store import MatchStore

        self.database = database
        self.store = MatchStore(database.sessions)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def close(self) -> None:
        self.database.close()

    def __enter__(self) -> MatchStore:
        return self.store

    def __exit__(self, *exc: object) -> None:
        self.close()
