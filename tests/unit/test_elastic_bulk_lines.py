"""The bulk lines the Elasticsearch backend sends: orjson writes them, with the stored document as a ready JSON
fragment; what orjson refuses (a lone surrogate, an integer beyond 64 bits) still goes out, and every line
decodes to the same document that `to_dict()` describes."""

from __future__ import annotations

import dataclasses
import json
from datetime import date

import orjson

from index.elastic.backend import _doc, _index_line
from index.elastic.mapping import document_body
from index.model import Claim, PatentDocument, PublicationNumber


def _document(**changes: object) -> PatentDocument:
    doc = PatentDocument(pn=PublicationNumber("US", "11000001", "B2"), titles={"en": "Wireless charging coil"},
                         abstracts={"en": "A coil."}, claims=[Claim(1, "A coil."), Claim(2, "The coil of claim 1.", [1])],
                         description="The coil is wound on a ferrite core.", publication_date=date(2021, 5, 4))
    return dataclasses.replace(doc, **changes)


def _decode(line: bytes) -> tuple[dict, dict]:
    action, source, tail = line.split(b"\n")
    assert tail == b""
    return json.loads(action), json.loads(source.decode("utf-8", "surrogatepass"))


def test_bulk_line_holds_the_stored_document_once_and_reads_back_whole() -> None:
    doc = _document()
    action, source = _decode(_index_line("ix", doc.id, document_body(doc, "server", 7, [0.5, -0.25])))
    assert action == {"index": {"_index": "ix", "_id": doc.id}}
    assert source["desc"] == doc.description and source["seq"] == 7 and source["vec"] == [0.5, -0.25]
    assert source["doc"]["description"] == ""  # the description travels once, as `desc`
    assert _doc(source).to_dict() == doc.to_dict()


def test_what_orjson_refuses_still_goes_out_through_the_standard_library() -> None:
    doc = _document(description="half a pair \ud800 here")
    body = document_body(doc, "server", 2**70, None)  # neither a lone surrogate nor 2**70 suits orjson
    assert isinstance(body["doc"], orjson.Fragment)
    _, source = _decode(_index_line("ix", doc.id, body))
    assert source["seq"] == 2**70 and source["desc"] == doc.description
    assert _doc(source).to_dict() == doc.to_dict()
