"""Item pipeline: ingest each downloaded file into the index and record it in HarvestState.

The pipeline opens the index (through the factory named by the setting `PATENTSIFT_INDEX_FACTORY`) and the harvest
state (`PATENTSIFT_STATE_PATH`) when the spider opens, and closes them when it closes. Ingestion runs in the crawl's thread: SQLite-backed indexes and state are bound to the thread that
opened them, so downloads pause while a file is ingested (CONCURRENT_REQUESTS_PER_DOMAIN is small anyway).
Totals go to the crawl's stats under `patentsift/...`; `harvest.crawl.CrawlSummary` reads them back. Failed
fetches are recorded as rejects (file = URL, reason) under the key `fetch:URL` and cleared once the file is ingested.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scrapy.exceptions import NotConfigured
from scrapy.utils.misc import load_object

from harvest.items import DownloadedFile, FailedDownload
from harvest.raw import RejectRecord

if TYPE_CHECKING:
    from scrapy.statscollectors import StatsCollector

    from harvest.state import HarvestState
    from index.base import Index

logger = logging.getLogger(__name__)


class IngestPipeline:
    def __init__(self, index: Index, state: HarvestState, stats: StatsCollector, *, keep_downloads: bool = False,
                 batch_size: int = 500, workers: int | str = "auto") -> None:
        self.index = index
        self.state = state
        self.stats = stats
        self.keep_downloads = keep_downloads
        self.batch_size = batch_size
        self.workers = workers

    @classmethod
    def from_crawler(cls, crawler: Any) -> IngestPipeline:
        from harvest.state import HarvestState

        settings = crawler.settings
        factory, state_path = settings.get("PATENTSIFT_INDEX_FACTORY"), settings.get("PATENTSIFT_STATE_PATH")
        if not factory or not state_path:
            raise NotConfigured("PATENTSIFT_INDEX_FACTORY and PATENTSIFT_STATE_PATH must be set (see harvest.crawl)")
        index = load_object(factory)(settings)
        return cls(index, HarvestState(state_path), crawler.stats, keep_downloads=settings.getbool("KEEP_DOWNLOADS"),
                   batch_size=settings.getint("PATENTSIFT_BATCH_SIZE", 500),
                   workers=settings.get("PATENTSIFT_PARSE_WORKERS", "auto"))

    def close_spider(self, spider: Any = None) -> None:
        self.state.close()
        self.index.close()

    def process_item(self, item: Any, spider: Any = None) -> Any:
        if isinstance(item, FailedDownload):
            self._record_failure(item.url, item.reason)
        elif isinstance(item, DownloadedFile):
            self._ingest(item)
        return item

    def _ingest(self, item: DownloadedFile) -> None:
        from harvest.ingest import ingest_path

        try:
            # ingest_path records progress under the URL at this fingerprint, so a re-download resumes.
            report = ingest_path(Path(item.path), self.index, self.state, key=item.url, source=item.source,
                                 batch_size=self.batch_size, fingerprint=item.fingerprint, workers=self.workers)
        except Exception as exc:  # a broken file must not stop the crawl; it stays on disk for inspection
            logger.exception("ingesting %s failed", item.url)
            self._record_failure(item.url, f"ingestion failed: {type(exc).__name__}: {exc}")
            return
        rejects = len(report.rejects)
        if not self.state.is_done(item.url, item.fingerprint):
            self.state.mark_done(item.url, item.fingerprint, report.documents, rejects)
        self.state.forget(failure_key(item.url))  # earlier failed fetches of this file are history now
        inc = self.stats.inc_value
        inc("patentsift/files_ingested")
        inc("patentsift/documents", report.documents)
        inc("patentsift/indexed", report.indexed)
        inc("patentsift/skipped", report.skipped)
        inc("patentsift/rejects", rejects)
        inc("patentsift/bytes", report.bytes)
        logger.info("ingested %s: %d documents, %d indexed, %d rejects", item.url, report.documents,
                    report.indexed, rejects)
        if not self.keep_downloads:
            Path(item.path).unlink(missing_ok=True)

    def _record_failure(self, url: str, reason: str) -> None:
        self.state.record_reject(failure_key(url), RejectRecord(file=url, position=0, offset=0, reason=reason))
        self.stats.inc_value("patentsift/files_failed")
        failures = self.stats.get_value("patentsift/failures") or []
        self.stats.set_value("patentsift/failures", [*failures, [url, reason]])


def failure_key(url: str) -> str:
    """HarvestState key for failed fetches of `url`: apart from the file's own document rejects, cleared on success."""
    return f"fetch:{url}"
