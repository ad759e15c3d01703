"""European Publication Server spider: publication dates -> patents of each date -> each document's XML.

Start URLs are EPS REST listings (`https://data.epo.org/publication-server/rest/v1.2/publication-dates`, or one
date's `.../publication-dates/20230104/patents`). Each patent link (`EP4114164NWA1`) is fetched straight from
`{rest}/patents/{number}/document.xml` (no extra request for the formats page). Published EP documents do not
change, so one HarvestState has marked done is never fetched again.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from typing import Any

import scrapy
from scrapy.http import Response

from harvest.items import DownloadedFile
from harvest.spiders.base import HarvestSpider, fingerprint_from_headers

SOURCE = "epo-pubserver"
_DATE_LISTING = re.compile(r"^(?P<rest>.*)/publication-dates/(?P<date>\d{8})/patents/?$")
_PATENT = re.compile(r"^(?P<rest>.*?)(?:/publication-dates/(?P<date>\d{8}))?/patents/(?P<number>EP\d+[A-Z]{2}[A-Z]\d?)"
                     r"(?:/document\.xml)?/?$")


def document_url(link: str) -> tuple[str, str, str | None] | None:
    """A patent link -> (raw XML URL, patent number, publication date if the link carries it)."""
    m = _PATENT.match(link.split("?", 1)[0])
    if not m:
        return None
    return f"{m['rest']}/patents/{m['number']}/document.xml", m["number"], m["date"]


def _day(yyyymmdd: str) -> date | None:
    try:
        return date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
    except ValueError:
        return None


class EpPublicationServerSpider(HarvestSpider):
    """Spider arguments: start_urls, since/until (YYYYMMDD) to bound the publication dates followed."""

    name = "ep"

    def parse(self, response: Response, **kwargs: Any) -> Iterator[scrapy.Request]:
        """A dates listing or a patents listing: follow dates in range, fetch documents not yet harvested."""
        page_date = kwargs.get("date") or self._date_of(response.url)
        for href in response.xpath("//a/@href").getall():
            url = response.urljoin(href)
            listing = _DATE_LISTING.match(url.split("?", 1)[0])
            if listing:
                if url != response.url and self.in_range(_day(listing["date"])):
                    yield scrapy.Request(url, callback=self.parse, errback=self.fetch_failed,
                                         meta={"source": SOURCE}, cb_kwargs={"date": listing["date"]})
                continue
            found = document_url(url)
            if found is None:
                continue
            doc_url, number, link_date = found
            published = link_date or page_date
            if published and not self.in_range(_day(published)):
                continue
            if self.already_done(doc_url, None):
                continue
            yield scrapy.Request(doc_url, callback=self.parse_document, errback=self.fetch_failed,
                                 meta={"source": SOURCE},
                                 cb_kwargs={"number": number, "published": published or "undated"})

    def parse_document(self, response: Response, number: str, published: str) -> Iterator[DownloadedFile]:
        fingerprint = fingerprint_from_headers(response.headers) or self.body_fingerprint(response)
        path = self.save(response, f"ep/{published}/{number}.xml")
        yield DownloadedFile(url=response.url, path=str(path), fingerprint=fingerprint, source=SOURCE)

    @staticmethod
    def _date_of(url: str) -> str | None:
        m = _DATE_LISTING.match(url.split("?", 1)[0])
        return m["date"] if m else None
