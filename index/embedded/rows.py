"""A PatentDocument as the rows the embedded index stores (pure: no database access)."""

from __future__ import annotations

import hashlib
import json
import zlib
from dataclasses import dataclass
from typing import Any

from index.analysis import index_text
from index.fields import index_fields
from index.model import PatentDocument

FTS_COLUMNS = ("ti", "ab", "cl", "desc", "pa", "in")


@dataclass
class DocRows:
    """Everything written for one document (keyed by id; the row id is assigned by the database)."""

    id: str
    columns: dict[str, Any]  # documents-table columns except rid/seq
    fts: tuple[str, ...]  # index.analysis.index_text of each column, in FTS_COLUMNS order
    pn_keys: list[str]
    classes: list[tuple[str, str, str | None]]  # (scheme ipc|cpc, symbol, subclass)
    applicants: list[str]  # normalized names

    @property
    def text_hash(self) -> str:
        return self.columns["text_hash"]


@dataclass
class PreparedDocument:
    """A full document as its rows, built ahead (e.g. in a parse worker) for `EmbeddedIndex.upsert` (index.base.Prepared)."""

    rows: DocRows

    @property
    def id(self) -> str:
        return self.rows.id

    @property
    def partial(self) -> bool:
        return False

    def document(self) -> PatentDocument:
        """The document decoded from the stored body (what `EmbeddedIndex.get` returns once it is stored)."""
        return decode_document(self.rows.columns["body"])


def prepare_document(doc: PatentDocument) -> PreparedDocument:
    """`doc`'s rows built now (pure, picklable: run in any process); partial documents are refused, as their rows
    come from a merge with the stored record at upsert time."""
    if doc.partial:
        raise ValueError(f"{doc.id} is a partial document: its rows are built when it is merged at upsert")
    return PreparedDocument(doc_rows(doc))


def encode_document(doc: PatentDocument) -> bytes:
    return zlib.compress(doc.to_json(), 1)


def decode_document(body: bytes) -> PatentDocument:
    return PatentDocument.from_dict(json.loads(zlib.decompress(body)))


def doc_rows(doc: PatentDocument) -> DocRows:
    f = index_fields(doc)
    fts = tuple(index_text(f[col] or "") for col in FTS_COLUMNS)
    digest = hashlib.sha1("\x00".join(fts[:4]).encode()).hexdigest()
    pd = f["pd"]
    classes: set[tuple[str, str, str | None]] = set()
    for scheme in ("ipc", "cpc"):
        for c in getattr(doc, scheme):
            if c.symbol:
                classes.add((scheme, c.symbol, c.subclass_symbol))
    columns = {
        "id": doc.id,
        "cc": _upper(f["cc"]),
        "kind": _upper(f["kind"]),
        "pd": pd,
        "ad": f["ad"],
        "year": f["year"],
        "pdkey": int(pd.replace("-", "")) if pd else 0,
        "an": _upper(f["an"]),
        "lang": _upper(f["lang"]),
        "fam": _upper(f["fam"]),
        "text_hash": digest,
        "body": encode_document(doc),
    }
    return DocRows(
        id=doc.id, columns=columns, fts=fts, pn_keys=sorted({k.upper() for k in f["pn"]}),
        classes=sorted(classes, key=lambda c: (c[0], c[1])), applicants=[a for a in f["applicant_norm"] if a],
    )


def _upper(value: str | None) -> str | None:
    return value.upper() if value else None
