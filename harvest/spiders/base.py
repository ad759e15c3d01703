"""What both office spiders share: arguments, the done-check against HarvestState, saving bodies, failures."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import AsyncIterator, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import scrapy
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

from harvest.items import FailedDownload

_WS = re.compile(r"\s+")


def parse_date_arg(value: str | date | None) -> date | None:
    """Spider arguments `since`/`until`: YYYYMMDD or YYYY-MM-DD."""
    if value is None or isinstance(value, date):
        return value
    digits = value.replace("-", "").strip()
    if not re.fullmatch(r"\d{8}", digits):
        raise ValueError(f"bad date {value!r}: use YYYYMMDD or YYYY-MM-DD")
    return date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))


def fingerprint_from_headers(headers: Any) -> str | None:
    """A version identifier from HTTP validators: the ETag, else Last-Modified + Content-Length."""

    def header(name: str) -> str:
        value = headers.get(name)
        return value.decode("latin-1").strip() if isinstance(value, bytes) else (value or "").strip()

    etag = header("ETag")
    if etag:
        return f"etag:{etag}"
    modified, length = header("Last-Modified"), header("Content-Length")
    if modified:
        return f"modified:{modified}|length:{length}"
    return None


def listing_fingerprint(details: str) -> str | None:
    """A version identifier from a listing row's size/date text (None when the row shows none)."""
    text = _WS.sub(" ", details).strip()
    return f"listing:{text}" if re.search(r"\d", text) else None


class HarvestSpider(scrapy.Spider):
    """Base for office spiders: `start_urls` (list or comma-separated), optional `since`/`until` dates."""

    def __init__(self, start_urls: list[str] | str | None = None, since: str | date | None = None,
                 until: str | date | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(start_urls, str):
            start_urls = [u for u in start_urls.split(",") if u]
        self.start_urls = list(start_urls or getattr(self, "start_urls", []))
        self.since = parse_date_arg(since)
        self.until = parse_date_arg(until)

    def start_requests(self) -> Iterator[scrapy.Request]:
        """Start listings, with the errback so an unreachable listing is reported too (Scrapy < 2.13 entry)."""
        for url in self.start_urls:
            yield scrapy.Request(url, callback=self.parse, errback=self.fetch_failed, dont_filter=True,
                                 meta={"source": self.name})

    async def start(self) -> AsyncIterator[scrapy.Request]:
        """Scrapy >= 2.13 entry point: the same requests as `start_requests`."""
        for request in self.start_requests():
            yield request

    def in_range(self, day: date | None) -> bool:
        if day is None:
            return True
        return (self.since is None or day >= self.since) and (self.until is None or day <= self.until)

    @property
    def downloads_dir(self) -> Path:
        return Path(self.settings.get("PATENTSIFT_DOWNLOADS_DIR") or "downloads")

    def already_done(self, url: str, fingerprint: str | None) -> bool:
        """True when HarvestState has this URL ingested (at this fingerprint); counts the skip."""
        state = self._harvest_state()
        if state is None or not state.is_done(url, fingerprint):
            return False
        self.crawler.stats.inc_value("patentsift/files_skipped")
        self.logger.debug("already harvested, skipping %s", url)
        return True

    def _harvest_state(self) -> Any:
        """The harvest state at the setting PATENTSIFT_STATE_PATH (read here; the item pipeline writes it)."""
        if getattr(self, "_state", None) is None:
            path = self.settings.get("PATENTSIFT_STATE_PATH")
            if not path:
                return None
            from harvest.state import HarvestState

            self._state = HarvestState(path)
        return self._state

    def closed(self, reason: str) -> None:
        state = getattr(self, "_state", None)
        if state is not None:
            state.close()
            del self._state

    def save(self, response: Response, relative: str) -> Path:
        """Write the body under the downloads dir (atomically: no half files for the next run to trip on)."""
        target = self.downloads_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".part")
        tmp.write_bytes(response.body)
        os.replace(tmp, target)
        self.crawler.stats.inc_value("patentsift/bytes_downloaded", len(response.body))
        return target

    @staticmethod
    def body_fingerprint(response: Response) -> str:
        return "sha256:" + hashlib.sha256(response.body).hexdigest()

    def fetch_failed(self, failure: Failure) -> Iterator[FailedDownload]:
        """Errback: a file that could not be fetched becomes a FailedDownload item (the pipeline records it)."""
        request = failure.request  # type: ignore[attr-defined]
        if failure.check(IgnoreRequest) and not failure.check(HttpError):
            # robots.txt disallow (or another middleware's deliberate drop): obeyed, not an error.
            self.crawler.stats.inc_value("patentsift/disallowed")
            self.logger.info("not fetched (%s): %s", failure.value or "ignored", request.url)
            return
        if failure.check(HttpError):
            reason = f"HTTP {failure.value.response.status}"
        else:
            reason = f"{failure.type.__name__}: {failure.getErrorMessage()}"
        self.logger.warning("download failed: %s (%s)", request.url, reason)
        yield FailedDownload(url=request.url, reason=f"download failed: {reason}",
                             source=request.meta.get("source", self.name))
