"""Stream patent documents out of files: single documents, concatenated weekly files, directories and zip archives.

Reading is chunked (1 MiB) and only the document being cut out is held in memory, so a 1 GB weekly file costs
about one document plus one chunk. Whatever cannot be read becomes a `RejectRecord` with a reason; nothing is
dropped silently. `split_chunks` is the pure splitting logic; the rest opens files and archives.
"""

from __future__ import annotations

import re
import struct
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from harvest.raw import RawDocument, RejectRecord
from harvest.xmlsafe import MAX_DOCUMENT_BYTES

CHUNK_BYTES = 1 << 20
DATA_SUFFIXES = frozenset({".xml", ".sgm", ".sgml", ".txt", ".dat", ".zip"})
"""Suffixes (case-insensitive) read when walking a directory or an archive; other files are reported as skipped."""

Item = RawDocument | RejectRecord

_BOM = b"\xef\xbb\xbf"
_WS = b" \t\r\n"
_XML_DECL = re.compile(rb"<\?xml\s")
_DOCTYPE_START = re.compile(rb"<!DOCTYPE\s+([A-Za-z_][\w.-]*)")
_OVERLAP = 64  # bytes kept between scans so a boundary split across two chunks is still found
_UTF16_STARTS = (b"\xff\xfe", b"\xfe\xff", b"<\x00?\x00", b"\x00<\x00?")
_UTF16_REASON = "file is UTF-16/UTF-32 encoded; patent feeds are UTF-8 (or another ASCII-compatible encoding)"
_READ_ERRORS = (OSError, EOFError, ValueError, RuntimeError, NotImplementedError, zipfile.BadZipFile, zlib.error)
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


def iter_raw_documents(
    path: Path, *, source: str = "file", name: str | None = None, max_document_bytes: int = MAX_DOCUMENT_BYTES,
) -> Iterator[Item]:
    """Every document under `path` (a file, a directory walked recursively in sorted order, or a .zip).

    `name` replaces `path` in `RawDocument.file` (e.g. the URL a file was downloaded from).
    """
    for entry in walk(Path(path), name=name):
        if isinstance(entry, RejectRecord):
            yield entry
        else:
            yield from iter_file(entry[0], name=entry[1], source=source, max_document_bytes=max_document_bytes)


def walk(path: Path, *, name: str | None = None) -> Iterator[tuple[Path, str] | RejectRecord]:
    """The files to read under `path` with their names; hidden files are ignored, non-data files reported."""
    name = name or str(path)
    if not path.is_dir():
        yield path, name
        return
    for child in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = child.relative_to(path)
        if any(part.startswith(".") for part in rel.parts):
            continue
        child_name = f"{name.rstrip('/')}/{rel.as_posix()}"
        if child.suffix.lower() in DATA_SUFFIXES:
            yield child, child_name
        else:
            yield RejectRecord(child_name, 0, 0, f"not a patent data file (suffix '{child.suffix}')", skip=True)


def iter_file(
    path: Path, *, name: str | None = None, source: str = "file", max_document_bytes: int = MAX_DOCUMENT_BYTES,
) -> Iterator[Item]:
    """The documents of one file: a zip archive (by its magic bytes) or a single/concatenated document file."""
    name = name or str(path)
    try:
        with open(path, "rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        yield RejectRecord(name, 0, 0, f"cannot open file: {exc}")
        return
    if magic in _ZIP_MAGIC:
        yield from _iter_zip(path, name, source=source, max_document_bytes=max_document_bytes)
    elif path.suffix.lower() == ".zip":
        yield RejectRecord(name, 0, 0, "not a zip archive (no zip signature at the start of the file)")
    else:
        yield from split_chunks(_file_chunks(path), name, source=source, max_document_bytes=max_document_bytes)


def _file_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK_BYTES):
            yield chunk


# --- splitting (pure) -----------------------------------------------------------------------------------------


def split_chunks(
    chunks: Iterable[bytes], file: str, *, source: str = "file", max_document_bytes: int = MAX_DOCUMENT_BYTES,
) -> Iterator[Item]:
    """Cut a stream of bytes (one file or archive member) into documents.

    A document runs from one boundary (XML declaration, or `<!DOCTYPE ROOT` in files of SGML documents) to the
    next; text before the first boundary (a file with no XML declaration, like JPO's) is a document too. A document
    over `max_document_bytes` is rejected and skipped without being held. A read error (truncated archive, bad
    CRC) rejects what is left of the stream and ends it.
    """
    splitter = _Splitter(file, source, max_document_bytes)
    it = iter(chunks)
    while True:
        try:
            chunk = next(it)
        except StopIteration:
            break
        except _READ_ERRORS as exc:
            yield splitter.fail(exc)
            return
        yield from splitter.feed(chunk)
        if splitter.done:
            return
    yield from splitter.finish()


class _Splitter:
    """Buffer holding the current document (from buf[0]) and what has been read after it."""

    def __init__(self, file: str, source: str, max_bytes: int) -> None:
        self.file, self.source, self.max_bytes = file, source, max_bytes
        self.buf = bytearray()
        self.base = 0  # offset in the stream of buf[0]
        self.scan = 0  # where the next boundary search starts in buf
        self.position = 0
        self.total = 0
        self.pattern: re.Pattern[bytes] | None = None
        self.discarding = False  # inside an oversize document: bytes are dropped until the next boundary
        self.done = False

    def feed(self, chunk: bytes) -> Iterator[Item]:
        self.total += len(chunk)
        self.buf += chunk
        if self.pattern is None:
            if len(self.buf) < 256:
                return  # wait for enough bytes to tell the layout (or for the end of the stream)
            if (reject := self._start()) is not None:
                yield reject
                return
        yield from self._cut()

    def finish(self) -> Iterator[Item]:
        if self.done:
            return
        if self.total == 0:
            yield RejectRecord(self.file, 0, 0, "empty file")
            return
        if self.pattern is None:
            if (reject := self._start()) is not None:
                yield reject
                return
            yield from self._cut()
        if not self.discarding and (item := self._emit(0, len(self.buf))) is not None:
            yield item

    def fail(self, exc: BaseException) -> RejectRecord:
        self.done = True
        if not self.discarding and self.buf.strip(_BOM + _WS):
            self.position += 1
            reason = f"incomplete document: reading stopped at byte {self.total}: {exc}"
            return RejectRecord(self.file, self.position, self.base, reason)
        return RejectRecord(self.file, 0, self.base + len(self.buf), f"read error at byte {self.total}: {exc}")

    def _start(self) -> RejectRecord | None:
        """Decide how this stream is split, from its first bytes."""
        if self.buf.startswith(_UTF16_STARTS):
            self.done = True
            return RejectRecord(self.file, 0, 0, _UTF16_REASON)
        if not self.buf.strip(_BOM + _WS):
            self.done = True
            return RejectRecord(self.file, 0, 0, "empty file (only whitespace)")
        lead = len(self.buf) - len(self.buf.lstrip(_WS))
        del self.buf[:lead]
        self.base += lead
        m = _DOCTYPE_START.match(self.buf, len(_BOM) if self.buf.startswith(_BOM) else 0)
        if m:
            self.pattern = re.compile(rb"<!DOCTYPE\s+" + re.escape(m.group(1)) + rb"[\s\[>]")
        else:
            self.pattern = _XML_DECL
        return None

    def _cut(self) -> Iterator[Item]:
        """Emit every document that ends in the buffer, then drop their bytes (once, not per document)."""
        assert self.pattern is not None
        buf = self.buf
        head = 0  # start of the current document in buf
        scan = self.scan
        while (m := self.pattern.search(buf, scan)) is not None:
            start = m.start()
            if start - 3 >= head and buf[start - 3:start] == _BOM:
                start -= 3
            scan = m.end()
            if start == head and not self.discarding:
                continue  # the current document's own declaration
            if self.discarding:
                self.discarding = False
            elif (item := self._emit(head, start)) is not None:
                yield item
            head = start
        del buf[:head]
        self.base += head
        if self.discarding:
            self._drop_all_but_overlap()
        elif len(buf) > self.max_bytes:
            self.position += 1
            yield self._oversize()
            self.discarding = True
            self._drop_all_but_overlap()
        self.scan = max(0, len(buf) - _OVERLAP)

    def _drop_all_but_overlap(self) -> None:
        drop = max(0, len(self.buf) - _OVERLAP)
        del self.buf[:drop]
        self.base += drop

    def _oversize(self) -> RejectRecord:
        reason = f"document is over the {self.max_bytes}-byte limit (skipped up to the next document)"
        return RejectRecord(self.file, self.position, self.base, reason)

    def _emit(self, head: int, end: int) -> Item | None:
        """The document buf[head:end] (offset base + head)."""
        if end - head > self.max_bytes:
            self.position += 1
            return RejectRecord(self.file, self.position, self.base + head, self._oversize().reason)
        with memoryview(self.buf) as view:
            data = bytes(view[head:end])
        if not data.strip(_BOM + _WS):
            return None
        self.position += 1
        return RawDocument(data=data, file=self.file, position=self.position, offset=self.base + head,
                           source=self.source)


# --- zip archives -----------------------------------------------------------------------------------------------


def _iter_zip(path: Path, name: str, *, source: str, max_document_bytes: int) -> Iterator[Item]:
    """Members in archive order, each streamed; a damaged archive yields what can be read, then a reject."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        yield from _iter_damaged_zip(path, name, str(exc), source=source, max_document_bytes=max_document_bytes)
        return
    with archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            member = f"{name}!{info.filename}"
            if (reject := _member_reject(member, info.filename)) is not None:
                yield reject
                continue

            def chunks(info: zipfile.ZipInfo = info) -> Iterator[bytes]:
                with archive.open(info) as fh:
                    while chunk := fh.read(CHUNK_BYTES):
                        yield chunk

            yield from split_chunks(chunks(), member, source=source, max_document_bytes=max_document_bytes)


def _member_reject(member: str, filename: str) -> RejectRecord | None:
    suffix = Path(filename).suffix.lower()
    if suffix == ".zip":
        return RejectRecord(member, 0, 0, "nested zip archives are not read")
    if suffix not in DATA_SUFFIXES:
        return RejectRecord(member, 0, 0, f"not a patent data file (suffix '{suffix}')", skip=True)
    return None


_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")


def _iter_damaged_zip(path: Path, name: str, why: str, *, source: str, max_document_bytes: int) -> Iterator[Item]:
    """Recover the members of an archive whose central directory is missing (a truncated download) by walking
    the local file headers from the start, then reject the archive with the reason."""
    recovered = 0
    with open(path, "rb") as fh:
        while True:
            offset = fh.tell()
            header = fh.read(_LOCAL_HEADER.size)
            if len(header) < _LOCAL_HEADER.size or header[:4] != b"PK\x03\x04":
                break
            _, _, flags, method, _, _, _, csize, _, name_len, extra_len = _LOCAL_HEADER.unpack(header)
            filename = fh.read(name_len).decode("utf-8" if flags & 0x800 else "cp437", "replace")
            fh.seek(extra_len, 1)
            member = f"{name}!{filename}"
            if filename.endswith("/"):
                continue
            if method not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) or (method == zipfile.ZIP_STORED and flags & 8):
                yield RejectRecord(member, 0, offset, f"cannot recover member (compression method {method})")
                break
            if (reject := _member_reject(member, filename)) is not None:
                yield reject
                if not _skip_member(fh, method, csize, flags):
                    break
                continue
            ended: list[bool] = []
            chunks = _member_chunks(fh, method, csize, ended)
            yield from split_chunks(chunks, member, source=source, max_document_bytes=max_document_bytes)
            if not ended:
                break
            recovered += 1
            if flags & 8:
                _skip_data_descriptor(fh)
    reason = f"damaged zip archive ({why}): {recovered} member(s) recovered from local headers, the rest is lost"
    yield RejectRecord(name, 0, 0, reason)


def _member_chunks(fh: BinaryIO, method: int, csize: int, ended: list[bool]) -> Iterator[bytes]:
    """Decompress one member starting at the current file position; `ended` gets True when it was complete."""
    if method == zipfile.ZIP_STORED:
        left = csize
        while left:
            data = fh.read(min(CHUNK_BYTES, left))
            if not data:
                raise EOFError("archive ends inside this member")
            left -= len(data)
            yield data
        ended.append(True)
        return
    inflater = zlib.decompressobj(-15)
    while not inflater.eof:
        data = inflater.unconsumed_tail or fh.read(1 << 16)
        if not data:
            raise EOFError("archive ends inside this member")
        out = inflater.decompress(data, CHUNK_BYTES)  # bounded output: a zip bomb is read a chunk at a time
        if out:
            yield out
    if inflater.unused_data:
        fh.seek(-len(inflater.unused_data), 1)
    ended.append(True)


def _skip_member(fh: BinaryIO, method: int, csize: int, flags: int) -> bool:
    ended: list[bool] = []
    try:
        for _ in _member_chunks(fh, method, csize, ended):
            pass
    except _READ_ERRORS:
        return False
    if flags & 8:
        _skip_data_descriptor(fh)
    return bool(ended)


def _skip_data_descriptor(fh: BinaryIO) -> None:
    """Skip crc/sizes written after a member's data (with or without their optional signature)."""
    head = fh.read(4)
    fh.seek(12 if head == b"PK\x07\x08" else 8, 1)
