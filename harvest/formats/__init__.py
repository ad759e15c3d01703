"""Format detection and dispatch: one parser module per office format, each a pure function of bytes.

Every format module exposes `parse(root, raw) -> PatentDocument | list[PatentDocument]` (raising
`harvest.raw.Reject`), where `root` is the element `harvest.xmlsafe.parse_xml` returned for `raw.data`. A list is
for responses that carry several documents (OPS biblio responses). A response that only lists publications (an OPS
search result or family) raises `ReferencesOnly`: skipped, with the references kept for a later full fetch.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from lxml import etree

from harvest.raw import RawDocument, Reject
from harvest.xmlsafe import doctype_name, parse_xml
from index.model import PatentDocument, Provenance

# root element local name -> format module (in harvest.formats)
ROOT_FORMATS = {
    "us-patent-grant": "uspto_ice",
    "us-patent-application": "uspto_ice",
    "patent-application-publication": "uspto_pap",
    "PATDOC": "uspto_st32",
    "ep-patent-document": "ep_pubserver",
    "world-patent-data": "epo_exchange",
    "exchange-document": "epo_exchange",
    "exchange-documents": "epo_exchange",
    "fulltext-document": "epo_exchange",  # EPO full-text format (FTM), e.g. national publications such as ES
    "fulltext-documents": "epo_exchange",
    "cn-patent-document": "cnipa",
    "PatentDocumentAndRelated": "cnipa",
    "jp-official-gazette": "jpo",
}
SKIPPED_ROOTS = {
    "sequence-cwu": "sequence listing (us-sequence-listing), not a patent document",
}


@dataclass(frozen=True)
class Reference:
    """A publication a response names without its content (DOCDB id and family), to fetch in full later."""

    id: str
    family_id: str | None = None


class ReferencesOnly(Reject):
    """A response that lists publications but holds no document: skipped (not an error), references kept."""

    def __init__(self, reason: str, references: list[Reference]) -> None:
        super().__init__(reason, skip=True)
        self.references = references


def local_name(tag: object) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def sniff_legacy(data: bytes) -> None:
    """Raise a clear Reject for legacy non-XML USPTO formats we chose not to support."""
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"HHHHHT") or re.match(rb"^(PATN|HHHHH)", head):
        raise Reject("USPTO APS Green Book fixed-field text (1976-2001) is not supported")
    if re.match(rb"^<!DOCTYPE\s+PATDOC\s+PUBLIC", head) and b"<?xml" not in head[:100]:
        raise Reject("USPTO ST.32 SGML v2.4 (2001) is SGML, not XML, and is not supported")


def parse_raw(raw: RawDocument, *, fetched_at: str | None = None) -> list[PatentDocument]:
    """Detect the format of one document, parse it, and attach provenance; raise Reject otherwise."""
    sniff_legacy(raw.data)
    root = parse_xml(raw.data)
    name = local_name(root.tag) or doctype_name(raw.data) or "?"
    if name in SKIPPED_ROOTS:
        raise Reject(SKIPPED_ROOTS[name], skip=True)
    module_name = ROOT_FORMATS.get(name)
    if module_name is None:
        raise Reject(f"unknown document type <{name}>")
    module = importlib.import_module(f"harvest.formats.{module_name}")
    parsed = module.parse(root, raw)
    docs: list[PatentDocument] = parsed if isinstance(parsed, list) else [parsed]
    if not docs:
        raise Reject(f"<{name}> holds no patent document")
    fetched = fetched_at or datetime.now(UTC).isoformat(timespec="seconds")
    for doc in docs:
        doc.provenance = Provenance(
            source=raw.source, file=raw.file, position=raw.position, offset=raw.offset,
            fetched_at=fetched, content_hash=raw.content_hash,
        )
    return docs
