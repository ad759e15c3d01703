"""USPTO bulk-data spider: walks yearly directory listings and fetches new weekly full-text archives.

Start URLs are listing pages such as `.../data/patent/grant/redbook/fulltext/2023/` (a table of `ipg230110.zip`
links with size and date) or their parent (year folders are followed). Archives HarvestState already holds at the
same fingerprint (listing size/date, else the ETag/Last-Modified/Content-Length of a HEAD) are not downloaded.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import scrapy
from scrapy.http import Response

from harvest.items import DownloadedFile
from harvest.spiders.base import HarvestSpider, fingerprint_from_headers, listing_fingerprint

# product -> (archive name pattern with the date digits as group 1, item source)
PRODUCTS: dict[str, tuple[re.Pattern[str], str]] = {
    "grant": (re.compile(r"^(?:ipg|pg)(\d{6})\.zip$", re.I), "uspto-grant"),
    "application": (re.compile(r"^(?:ipa|pa)(\d{6})\.zip$", re.I), "uspto-application"),
    "grant-biblio": (re.compile(r"^ipgb(\d{8})\.zip$", re.I), "uspto-grant"),
    "application-biblio": (re.compile(r"^ipab(\d{8})\.zip$", re.I), "uspto-application"),
}
DEFAULT_PRODUCTS = ("grant", "application")
_YEAR_DIR = re.compile(r"^(\d{4})/?$")


@dataclass(frozen=True)
class Archive:
    name: str
    source: str
    published: date


def classify_archive(name: str, products: tuple[str, ...] = DEFAULT_PRODUCTS) -> Archive | None:
    """`ipg230110.zip` -> Archive(source="uspto-grant", published=2023-01-10); None when not a wanted product."""
    for product in products:
        pattern, source = PRODUCTS[product]
        m = pattern.match(name)
        if not m:
            continue
        digits = m.group(1)
        if len(digits) == 6:
            yy = int(digits[:2])
            digits = f"{2000 + yy if yy < 70 else 1900 + yy}{digits[2:]}"
        try:
            return Archive(name, source, date(int(digits[:4]), int(digits[4:6]), int(digits[6:])))
        except ValueError:
            return None
    return None


class UsptoBulkSpider(HarvestSpider):
    """Spider arguments: start_urls, since/until (YYYYMMDD), products (comma list of PRODUCTS keys)."""

    name = "uspto"

    def __init__(self, *args: Any, products: str | tuple[str, ...] = DEFAULT_PRODUCTS, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        wanted = tuple(p.strip() for p in products.split(",")) if isinstance(products, str) else tuple(products)
        unknown = [p for p in wanted if p not in PRODUCTS]
        if unknown:
            raise ValueError(f"unknown USPTO products {unknown}; known: {sorted(PRODUCTS)}")
        self.products = wanted

    def parse(self, response: Response, **kwargs: Any) -> Iterator[scrapy.Request]:
        """A listing page: follow year folders below it, fetch (or HEAD) wanted archives."""
        for link in response.xpath("//a[@href]"):
            url = response.urljoin(link.attrib["href"])
            name = url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
            archive = classify_archive(name, self.products)
            if archive is None:
                year = _YEAR_DIR.match(name)
                if year and url.startswith(response.url) and url != response.url and self._year_wanted(int(year[1])):
                    yield scrapy.Request(url if url.endswith("/") else url + "/", callback=self.parse,
                                         errback=self.fetch_failed, meta={"source": self.name})
                continue
            if not self.in_range(archive.published):
                continue
            meta = {"source": archive.source}
            fingerprint = listing_fingerprint(self._row_details(link))
            if fingerprint is None:
                yield scrapy.Request(url, method="HEAD", callback=self.parse_head, errback=self.fetch_failed,
                                     meta=meta, cb_kwargs={"archive": archive})
            elif not self.already_done(url, fingerprint):
                yield self._archive_request(url, archive, fingerprint)

    def parse_head(self, response: Response, archive: Archive) -> Iterator[scrapy.Request]:
        fingerprint = fingerprint_from_headers(response.headers)
        if not self.already_done(response.url, fingerprint):
            yield self._archive_request(response.url, archive, fingerprint)

    def parse_archive(self, response: Response, archive: Archive, fingerprint: str | None) -> Iterator[DownloadedFile]:
        fp = fingerprint or fingerprint_from_headers(response.headers) or self.body_fingerprint(response)
        path = self.save(response, f"uspto/{archive.name}")
        yield DownloadedFile(url=response.url, path=str(path), fingerprint=fp, source=archive.source)

    def _archive_request(self, url: str, archive: Archive, fingerprint: str | None) -> scrapy.Request:
        return scrapy.Request(url, callback=self.parse_archive, errback=self.fetch_failed,
                              meta={"source": archive.source},
                              cb_kwargs={"archive": archive, "fingerprint": fingerprint})

    def _year_wanted(self, year: int) -> bool:
        return (self.since is None or year >= self.since.year) and (self.until is None or year <= self.until.year)

    @staticmethod
    def _row_details(link: Any) -> str:
        """The size/date text beside a link: the rest of its table row, or the text after it in a <pre> listing."""
        row = link.xpath("ancestor::tr[1]")
        if row:
            own = " ".join(link.xpath(".//text()").getall())
            return " ".join(row[0].xpath(".//text()").getall()).replace(own, " ", 1)
        return link.xpath("following-sibling::text()[1]").get() or ""
