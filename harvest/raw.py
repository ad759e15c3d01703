"""What flows between splitting and parsing: one document's bytes with its place, and the reasons one is refused."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass
class RawDocument:
    """One document's bytes, cut out of a (possibly concatenated, possibly zipped) file."""

    data: bytes
    file: str  # path or URL of the file, with `!member` for a zip member
    position: int  # 1-based index within the file
    offset: int = 0  # byte offset within the (decompressed) file
    source: str = "file"  # e.g. "uspto-grant", "epo-pubserver", "file"

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


class Reject(Exception):
    """A document (or file) that cannot be turned into a PatentDocument; `reason` is for humans.

    `skip=True` marks documents that are not patent documents at all (e.g. sequence listings) rather than bad ones.
    """

    def __init__(self, reason: str, *, skip: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.skip = skip


@dataclass
class RejectRecord:
    file: str
    position: int
    offset: int
    reason: str
    skip: bool = False
