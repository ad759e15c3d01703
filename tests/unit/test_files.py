"""Splitting real patent files into documents: weekly concatenations, zips, directories, damaged input."""

from __future__ import annotations

import collections
import io
import zipfile
from pathlib import Path

import pytest

from harvest.files import iter_file, iter_raw_documents, split_chunks
from harvest.raw import RawDocument, RejectRecord

WEEKLY = "uspto-grant/weekly/ipg130416.xml"  # 25 grants + 2 sequence listings, CRLF
SMALL_WEEKLY = "uspto-grant/weekly/ipg230110.first3.xml"
SGML = "uspto-grant/legacy/grants_2001_sgml_v24.first2.sgm"
BOM_FILE = "cn/CN104223352A-20141224.xml"
JPO_FILE = "jp/JP2021041306A.xml"


def docs(items: list) -> list[RawDocument]:
    return [i for i in items if isinstance(i, RawDocument)]


def rejects(items: list) -> list[RejectRecord]:
    return [i for i in items if isinstance(i, RejectRecord)]


def chunked(data: bytes, size: int):
    for i in range(0, len(data), size):
        yield data[i:i + size]


def test_every_file_splits_into_its_index_rows(shared_patents: Path, patent_index: list[dict[str, str]]) -> None:
    expected = collections.defaultdict(dict)
    for row in patent_index:
        expected[row["file"]][int(row["index"])] = int(row["bytes"])
    for rel, sizes in expected.items():
        items = list(iter_raw_documents(shared_patents / rel))
        assert not rejects(items), rel
        found = docs(items)
        assert [d.position for d in found] == sorted(sizes), rel
        raw = (shared_patents / rel).read_bytes()
        for d in found:
            assert raw[d.offset:d.offset + len(d.data)] == d.data
            assert d.file == str(shared_patents / rel)
        if len(sizes) > 1:  # documents cut out of a concatenation have the sizes INDEX.csv lists
            assert [len(d.data) for d in found] == [sizes[p] for p in sorted(sizes)], rel


def test_weekly_documents_each_start_with_the_xml_declaration_and_keep_crlf(shared_patents: Path) -> None:
    found = docs(list(iter_raw_documents(shared_patents / WEEKLY)))
    assert len(found) == 27
    assert all(d.data.startswith(b"<?xml") for d in found)
    assert all(b"\r\n" in d.data for d in found)
    assert sum(b"<sequence-cwu" in d.data for d in found) == 2


@pytest.mark.parametrize("size", [5, 61, 4096])
def test_boundaries_split_across_chunks_are_found(shared_patents: Path, size: int) -> None:
    data = (shared_patents / SMALL_WEEKLY).read_bytes()
    whole = docs(list(split_chunks([data], "f")))
    pieces = docs(list(split_chunks(chunked(data, size), "f")))
    assert [(d.position, d.offset, d.data) for d in pieces] == [(d.position, d.offset, d.data) for d in whole]
    assert len(whole) == 3


def test_sgml_file_splits_on_its_doctype(shared_patents: Path) -> None:
    found = docs(list(iter_raw_documents(shared_patents / SGML)))
    assert len(found) == 2
    assert all(d.data.startswith(b"<!DOCTYPE PATDOC") for d in found)


def test_file_without_xml_declaration_is_one_document(shared_patents: Path) -> None:
    raw = (shared_patents / JPO_FILE).read_bytes()
    assert not raw.lstrip().startswith(b"<?xml")
    found = docs(list(iter_raw_documents(shared_patents / JPO_FILE)))
    assert len(found) == 1 and found[0].data == raw


def test_concatenated_files_with_byte_order_marks(shared_patents: Path, tmp_path: Path) -> None:
    one = (shared_patents / BOM_FILE).read_bytes()
    assert one.startswith(b"\xef\xbb\xbf")
    two = (shared_patents / SMALL_WEEKLY).read_bytes()
    path = tmp_path / "mixed.xml"
    path.write_bytes(one + b"\n" + one + two)
    found = docs(list(iter_raw_documents(path)))
    assert len(found) == 5
    assert found[1].offset == len(one) + 1 and found[1].data == one
    assert found[0].data.rstrip() == one.rstrip()


def test_empty_and_blank_files_are_rejected(tmp_path: Path) -> None:
    (tmp_path / "empty.xml").write_bytes(b"")
    (tmp_path / "blank.xml").write_bytes(b"\r\n  \n")
    items = list(iter_raw_documents(tmp_path))
    assert [(Path(r.file).name, r.reason) for r in rejects(items)] == [
        ("blank.xml", "empty file (only whitespace)"), ("empty.xml", "empty file"),
    ]
    assert not docs(items)


def test_oversize_document_is_rejected_and_the_rest_go_on(shared_patents: Path) -> None:
    data = (shared_patents / WEEKLY).read_bytes()
    whole = docs(list(split_chunks([data], "w")))
    cap = 60_000
    big = [d.position for d in whole if len(d.data) > cap]
    assert big and len(big) < len(whole)
    items = list(split_chunks(chunked(data, 8192), "w", max_document_bytes=cap))
    assert [r.position for r in rejects(items)] == big
    assert all("limit" in r.reason for r in rejects(items))
    assert [(d.position, d.data) for d in docs(items)] == [(d.position, d.data) for d in whole if len(d.data) <= cap]


def test_utf16_file_is_rejected_with_the_reason(shared_patents: Path, tmp_path: Path) -> None:
    text = (shared_patents / JPO_FILE).read_text(encoding="utf-8")
    path = tmp_path / "utf16.xml"
    path.write_bytes('<?xml version="1.0" encoding="UTF-16"?>\n'.encode("utf-16") + text.encode("utf-16-le"))
    [reject] = list(iter_raw_documents(path))
    assert isinstance(reject, RejectRecord) and "UTF-16" in reject.reason


def test_directory_is_walked_recursively_in_order(shared_patents: Path, tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "a.xml").write_bytes((shared_patents / JPO_FILE).read_bytes())
    (tmp_path / "b" / "c.XML").write_bytes((shared_patents / SMALL_WEEKLY).read_bytes())
    (tmp_path / "b" / "notes.csv").write_text("a,b\n")
    (tmp_path / ".partial.xml").write_text("<x")
    items = list(iter_raw_documents(tmp_path, name="https://example.test/feed"))
    assert [(i.file, i.position) for i in items] == [
        ("https://example.test/feed/a.xml", 1),
        ("https://example.test/feed/b/c.XML", 1), ("https://example.test/feed/b/c.XML", 2),
        ("https://example.test/feed/b/c.XML", 3),
        ("https://example.test/feed/b/notes.csv", 0),
    ]
    assert items[-1].skip and "not a patent data file" in items[-1].reason


def _zip(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_zip_members_are_streamed_with_their_names(shared_patents: Path, tmp_path: Path) -> None:
    weekly = (shared_patents / WEEKLY).read_bytes()
    path = _zip(tmp_path / "ipg130416.zip", {"ipg130416.xml": weekly, "ipg130416.tif": b"II*\x00"})
    items = list(iter_file(path))
    found = docs(items)
    assert len(found) == 27 and found[0].file == f"{path}!ipg130416.xml"
    assert [(d.offset, d.data) for d in found] == [(d.offset, d.data) for d in docs(list(split_chunks([weekly], "x")))]
    [skip] = rejects(items)
    assert skip.skip and skip.file.endswith("!ipg130416.tif")


def test_truncated_zip_yields_the_members_before_the_damage(shared_patents: Path, tmp_path: Path) -> None:
    first = (shared_patents / SMALL_WEEKLY).read_bytes()
    second = (shared_patents / WEEKLY).read_bytes()
    whole = _zip(tmp_path / "whole.zip", {"a.xml": first, "b.xml": second}).read_bytes()
    cut = tmp_path / "cut.zip"
    cut.write_bytes(whole[: len(whole) // 2])
    items = list(iter_file(cut))
    assert [d.file for d in docs(items)] == [f"{cut}!a.xml"] * 3 + [f"{cut}!b.xml"] * len(docs(items)[3:])
    assert 0 < len(docs(items)) - 3 < 27  # some of b.xml was readable, the rest is lost
    reasons = [r.reason for r in rejects(items)]
    assert any("incomplete document" in r and "ends inside" in r for r in reasons)
    assert "damaged zip archive" in reasons[-1] and "1 member(s) recovered" in reasons[-1]


def test_zip_with_a_corrupt_member_goes_on_with_the_next(shared_patents: Path, tmp_path: Path) -> None:
    data = (shared_patents / SMALL_WEEKLY).read_bytes()
    path = _zip(tmp_path / "bad.zip", {"a.xml": data, "b.xml": data}, zipfile.ZIP_STORED)
    raw = bytearray(path.read_bytes())
    at = raw.index(b"<?xml") + 2000  # inside member a.xml: its CRC no longer matches
    raw[at] ^= 0xFF
    path.write_bytes(bytes(raw))
    items = list(iter_file(path))
    bad = [r for r in rejects(items) if r.file.endswith("!a.xml")]
    assert bad and "CRC" in bad[-1].reason
    assert len([d for d in docs(items) if d.file.endswith("!b.xml")]) == 3


class _Unseekable(io.RawIOBase):
    """A write-only stream: zipfile then writes sizes in data descriptors after each member."""

    def __init__(self, sink: io.BufferedWriter) -> None:
        self.sink = sink

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # noqa: ANN001
        return self.sink.write(data)


def test_truncated_streamed_zip_with_data_descriptors(shared_patents: Path, tmp_path: Path) -> None:
    data = (shared_patents / SMALL_WEEKLY).read_bytes()
    path = tmp_path / "streamed.zip"
    with open(path, "wb") as fh, zipfile.ZipFile(_Unseekable(fh), "w", zipfile.ZIP_DEFLATED) as zf:
        for name in ("a.xml", "b.xml", "c.xml"):
            with zf.open(name, "w") as member:
                member.write(data)
    assert len(docs(list(iter_file(path)))) == 9
    raw = path.read_bytes()
    path.write_bytes(raw[: raw.rindex(b"PK\x03\x04") + 40])  # cut inside the third member's header/data
    items = list(iter_file(path))
    assert [d.file.rsplit("!", 1)[1] for d in docs(items)] == ["a.xml"] * 3 + ["b.xml"] * 3
    assert "2 member(s) recovered" in rejects(items)[-1].reason


def test_file_named_zip_that_is_not_one(tmp_path: Path) -> None:
    path = tmp_path / "download.zip"
    path.write_bytes(b"<html>502 Bad Gateway</html>")
    [reject] = list(iter_raw_documents(path))
    assert "not a zip archive" in reject.reason
