"""Run the office spiders in-process with Scrapy's CrawlerProcess and summarise what they harvested.

Scrapy runs on a Twisted reactor, and a reactor can be started only ONCE per process: call `crawl` (or
`crawl_many`, which runs several spiders in that one start) at most once per process. Anything that needs several
crawls (tests, the scheduler) runs each in its own process (the `patentsift` command, or
`python -m harvest.crawl uspto URL ... --index DIR --state FILE --downloads DIR` for a bare embedded index).

Behaviour lives in settings, the Scrapy way: the crawl's settings carry the import path of an index factory
(`PATENTSIFT_INDEX_FACTORY`, a callable taking the crawler's settings and returning an `Index`) and the harvest
state's path, never live objects; the item pipeline opens both when the spider opens and closes them at its end.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from scrapy.crawler import CrawlerProcess
from scrapy.settings import Settings

from harvest.spiders.ep_pubserver import EpPublicationServerSpider
from harvest.spiders.uspto_bulk import UsptoBulkSpider

SPIDERS: dict[str, type] = {"uspto": UsptoBulkSpider, "ep": EpPublicationServerSpider}


@dataclass
class CrawlSummary:
    spider: str
    files_fetched: int = 0  # downloaded and ingested
    files_skipped: int = 0  # already harvested at the same fingerprint: not downloaded
    files_failed: int = 0  # download or ingestion failures (recorded as rejects in HarvestState)
    disallowed: int = 0  # not fetched because robots.txt disallows them
    documents: int = 0
    indexed: int = 0
    skipped: int = 0
    rejects: int = 0
    bytes_downloaded: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (url, reason)
    finish_reason: str = ""

    @property
    def failed(self) -> bool:
        return self.files_failed > 0

    @classmethod
    def from_stats(cls, spider: str, stats: dict[str, Any]) -> CrawlSummary:
        def n(key: str) -> int:
            return int(stats.get(f"patentsift/{key}", 0) or 0)

        return cls(
            spider=spider, files_fetched=n("files_ingested"), files_skipped=n("files_skipped"),
            files_failed=n("files_failed"), disallowed=n("disallowed"), documents=n("documents"),
            indexed=n("indexed"), skipped=n("skipped"), rejects=n("rejects"),
            bytes_downloaded=n("bytes_downloaded"),
            failures=[(u, r) for u, r in stats.get("patentsift/failures") or []],
            finish_reason=str(stats.get("finish_reason", "")),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        text = (f"{self.spider}: {self.files_fetched} files fetched, {self.files_skipped} already harvested, "
                f"{self.files_failed} failed; {self.documents} documents, {self.indexed} indexed, "
                f"{self.rejects} rejects")
        if self.disallowed:
            text += f"; {self.disallowed} disallowed by robots.txt"
        return text + "".join(f"\n  failed: {url} ({reason})" for url, reason in self.failures)


def build_settings(downloads_dir: Path | str, overrides: dict[str, Any] | None = None) -> Settings:
    """harvest.settings, then the downloads dir, then the caller's overrides."""
    settings = Settings()
    settings.setmodule("harvest.settings", priority="project")
    settings.set("PATENTSIFT_DOWNLOADS_DIR", str(downloads_dir), priority="project")
    for name, value in (overrides or {}).items():
        settings.set(name, value, priority="cmdline")
    return settings


def crawl_many(jobs: Sequence[tuple[str, list[str]]], *, index_factory: str, state_path: Path | str,
               downloads_dir: Path | str, settings_overrides: dict[str, Any] | None = None,
               spider_args: dict[str, Any] | None = None) -> list[CrawlSummary]:
    """Run several spiders, e.g. [("uspto", [...]), ("ep", [...])], in one CrawlerProcess (one reactor start).

    `index_factory`: import path of a callable `(settings) -> Index` (see module doc); `settings_overrides` may
    carry whatever that factory reads."""
    for spider, _ in jobs:
        if spider not in SPIDERS:
            raise ValueError(f"unknown spider {spider!r}; known: {sorted(SPIDERS)}")
    _check_reactor_unused()
    settings = build_settings(downloads_dir, {**(settings_overrides or {}), "PATENTSIFT_INDEX_FACTORY": index_factory,
                                              "PATENTSIFT_STATE_PATH": str(state_path)})
    process = CrawlerProcess(settings)
    crawlers = []
    for spider, urls in jobs:
        crawler = process.create_crawler(SPIDERS[spider])
        process.crawl(crawler, start_urls=list(urls), **(spider_args or {}))
        crawlers.append((spider, crawler))
    process.start()
    return [CrawlSummary.from_stats(spider, crawler.stats.get_stats()) for spider, crawler in crawlers]


def crawl(spider: str, start_urls: list[str], *, index_factory: str, state_path: Path | str,
          downloads_dir: Path | str, settings_overrides: dict[str, Any] | None = None,
          spider_args: dict[str, Any] | None = None) -> CrawlSummary:
    """Crawl `start_urls` with spider "uspto" or "ep"; once per process (see module doc)."""
    return crawl_many([(spider, start_urls)], index_factory=index_factory, state_path=state_path,
                      downloads_dir=downloads_dir, settings_overrides=settings_overrides, spider_args=spider_args)[0]


def embedded_index_at(settings: Any) -> Any:
    """Index factory for a bare embedded index at the setting `PATENTSIFT_INDEX_PATH` (`python -m harvest.crawl`)."""
    from index.embedded import EmbeddedIndex

    return EmbeddedIndex(settings.get("PATENTSIFT_INDEX_PATH"))


def _check_reactor_unused() -> None:
    if "twisted.internet.reactor" not in sys.modules:
        return
    from twisted.internet import reactor

    if getattr(reactor, "_startedBefore", False):
        raise RuntimeError("Scrapy's Twisted reactor already ran in this process and cannot be restarted: run one "
                           "crawl (or crawl_many) per process, e.g. `python -m harvest.crawl ...` in a subprocess")


def _pairs(values: list[str], flag: str) -> dict[str, str]:
    out = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"{flag} expects NAME=VALUE, got {item!r}")
        out[name] = value
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harvest.crawl", description=__doc__.split("\n\n")[0])
    parser.add_argument("spider", choices=sorted(SPIDERS))
    parser.add_argument("urls", nargs="+", help="listing URLs to start from")
    parser.add_argument("--index", required=True, type=Path, help="embedded index path")
    parser.add_argument("--state", required=True, type=Path, help="harvest state (SQLite) path")
    parser.add_argument("--downloads", required=True, type=Path, help="downloads directory")
    parser.add_argument("-s", dest="settings", action="append", default=[], metavar="NAME=VALUE",
                        help="override a Scrapy setting")
    parser.add_argument("-a", dest="args", action="append", default=[], metavar="NAME=VALUE",
                        help="spider argument (since, until, products)")
    opts = parser.parse_args(argv)

    overrides = {**_pairs(opts.settings, "-s"), "PATENTSIFT_INDEX_PATH": str(opts.index)}
    summary = crawl(opts.spider, opts.urls, index_factory=f"{__name__}.embedded_index_at", state_path=opts.state,
                    downloads_dir=opts.downloads, settings_overrides=overrides, spider_args=_pairs(opts.args, "-a"))
    print(json.dumps(summary.to_dict()))
    return 1 if summary.failed else 0


if __name__ == "__main__":
    sys.exit(main())
