"""What the harvest spiders yield: a file fetched and written to disk, or a fetch that failed."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class DownloadedFile:
    """One fetched file (a weekly archive or a single document) ready for ingestion."""

    url: str
    path: str  # local file the body was written to
    fingerprint: str  # what identifies this version of the file (listing size/date, ETag, ...)
    source: str  # "uspto-grant", "uspto-application", "epo-pubserver", ...


@dataclass
class FailedDownload:
    """A file that could not be fetched (HTTP error after retries, dropped connection, timeout)."""

    url: str
    reason: str
    source: str
