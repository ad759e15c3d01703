"""Offline ingestion: files -> documents -> index, in batches, resumable, with every refusal on record.

Used by the CLI for local files and by the Scrapy pipelines for downloaded ones (`key` = the URL).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from harvest.files import Item, iter_file, iter_raw_documents, walk
from harvest.formats import parse_raw
from harvest.parallel import AUTO, Outcome, Parser, Workers
from harvest.raw import RawDocument, Reject, RejectRecord
from harvest.state import HarvestState
from index.base import Index, Prepared, PreparedUpsert, as_document
from index.model import PatentDocument, merge_documents

Progress = Callable[[int], None]


@dataclass
class IngestReport:
    files: int = 0  # files read in this run
    documents: int = 0  # patent documents parsed
    indexed: int = 0  # documents the index accepted
    skipped: int = 0  # not patent documents (sequence listings, non-data files): on record, not errors
    references: int = 0  # publications named by skipped search results/families, kept for a later full fetch
    rejects: list[RejectRecord] = field(default_factory=list)  # documents refused, with file/position/reason
    bytes: int = 0  # bytes of documents read (decompressed)
    unchanged: int = 0  # files already harvested with the same fingerprint: not read again
    resumed: int = 0  # documents passed over because an interrupted run had stored them

    def merge(self, other: IngestReport) -> None:
        for name in ("files", "documents", "indexed", "skipped", "references", "bytes", "unchanged", "resumed"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.rejects.extend(other.rejects)

    def summary(self, max_rejects: int = 0) -> str:
        """A line of counts for people; with `max_rejects`, the first rejects follow with their place and reason
        (off by default: callers that list the rejects themselves would print each twice)."""
        head = (
            f"{self.files} file(s) read, {self.unchanged} unchanged; {self.documents} document(s) parsed, "
            f"{self.indexed} indexed, {self.skipped} skipped, {len(self.rejects)} rejected; "
            f"{self.bytes / 1e6:.1f} MB"
        )
        if self.resumed:
            head += f"; {self.resumed} already stored by an interrupted run"
        if self.references:
            head += f"; {self.references} publication reference(s) kept for a later full fetch"
        lines = [head]
        for rec in self.rejects[:max_rejects]:
            lines.append(f"  rejected {rec.file} #{rec.position} @{rec.offset}: {rec.reason}")
        if max_rejects and len(self.rejects) > max_rejects:
            lines.append(f"  ... and {len(self.rejects) - max_rejects} more")
        return "\n".join(lines)


def parse_path(path: Path, *, fetched_at: str | None = None) -> Iterator[PatentDocument]:
    """Every document a file, zip or directory holds, parsed; rejects are skipped (ingest_path records them)."""
    for item in iter_raw_documents(path):
        if isinstance(item, RawDocument):
            try:
                yield from parse_raw(item, fetched_at=fetched_at)
            except Reject:
                continue


def file_fingerprint(path: Path) -> str:
    """Size and modification time: a file that changes on disk is harvested again."""
    st = path.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


def ingest_path(
    path: Path | str,
    index: Index,
    state: HarvestState | None = None,
    *,
    key: str | None = None,
    source: str = "file",
    batch_size: int = 500,
    progress: Progress | None = None,
    fingerprint: str | None = None,
    workers: Workers = AUTO,
) -> IngestReport:
    """Split, parse and index everything under `path` (file, directory or zip); see `IngestReport`.

    `key` names the file in provenance and state (default: its absolute path; the URL for downloads);
    `fingerprint` (e.g. an ETag) replaces size+mtime for a single file. With a `state`, files already done are
    passed over and an interrupted file resumes after the last stored batch. `workers`: parse worker processes
    ("auto": one per core for files of 32 MB or more on 2+ cores; 0 or 1: in this process); see harvest.parallel.
    """
    path = Path(path)
    root = key or str(path.resolve())
    report = IngestReport()
    partials: set[str] = set()
    prepare = index.preparer() if isinstance(index, PreparedUpsert) else None
    with Parser(workers, prepare) as parser:
        for entry in walk(path, name=root):
            if isinstance(entry, RejectRecord):
                _record(report, state, entry.file, entry)
                continue
            file_path, file_key = entry
            fp = fingerprint if fingerprint and file_path == path else file_fingerprint(file_path)
            batch = _Batch(index, state, report, file_key, batch_size, partials)
            _ingest_file(file_path, file_key, fp, batch, source, progress, parser)
    return report


def refeed_file(path: Path | str, index: Index, state: HarvestState | None, *, key: str, ids: set[str],
                source: str = "file", fetched_at: str | None = None, batch_size: int = 500) -> set[str]:
    """Read the stored file of `key` again and index those of its documents whose id is in `ids` (documents the
    index lost: `index verify --repair`); partial documents merge as in a harvest, nothing else is re-written
    (no progress, no done mark). Returns the ids of `ids` the file still holds."""
    report = IngestReport()
    batch = _Batch(index, state, report, key, batch_size, set())
    seen: set[str] = set()
    for item in iter_file(Path(path), name=key, source=source):
        if not isinstance(item, RawDocument):
            continue
        try:
            docs = parse_raw(item, fetched_at=fetched_at)
        except Exception:  # noqa: BLE001 - refused at harvest time too: on record there
            continue
        for doc in docs:
            if doc.id in ids:
                seen.add(doc.id)
                batch.add(doc, item)
        if len(batch.docs) >= batch.size:
            batch.flush()
    batch.flush()
    return seen


def document_ids(path: Path | str, *, key: str, source: str = "file") -> set[str]:
    """The ids of every document a stored file holds (parsed as a harvest parses them; refusals left out)."""
    out: set[str] = set()
    for item in iter_file(Path(path), name=key, source=source):
        if isinstance(item, RawDocument):
            try:
                out.update(d.id for d in parse_raw(item))
            except Exception:  # noqa: BLE001 - refused at harvest time too
                continue
    return out


def _ingest_file(path: Path, key: str, fp: str, batch: _Batch, source: str, progress: Progress | None,
                 parser: Parser) -> None:
    state, report = batch.state, batch.report
    if state is not None:
        if state.is_done(key, fp):
            report.unchanged += 1
            return
        state.start(key, fp, path=path.resolve(), source=source)
    report.files += 1
    resume: dict[str, int] = {}  # stream -> position an interrupted run stored up to (read at its first item)

    def wanted(item: Item) -> bool:
        if state is not None and item.file not in resume:
            resume[item.file] = state.resume_position(item.file)
        return not 0 < item.position <= resume.get(item.file, 0)

    positioned = 0  # documents seen (stored, refused or skipped), for the state's count
    for item, outcome in parser.outcomes(iter_file(path, name=key, source=source), wanted, path.stat().st_size):
        stream = item.file
        positioned += item.position > 0
        if isinstance(item, RawDocument):
            report.bytes += len(item.data)
        if 0 < item.position <= resume.get(stream, 0):
            report.resumed += isinstance(item, RawDocument)
        elif isinstance(item, RejectRecord):
            _record(report, state, key, item)
        elif outcome is not None:
            for doc in _outcome(item, outcome, report, state, key):
                batch.add(doc, item)
        if item.position:
            batch.handled(stream, item.position)
        if progress is not None:
            progress(report.bytes)
    batch.flush()
    if state is not None:
        rejected = {(r.file, r.position) for r in state.rejects(key) if r.position}
        errors = sum(1 for r in state.rejects(key) if not r.skip)
        state.mark_done(key, fp, documents=positioned - len(rejected), rejects=errors)


def _outcome(raw: RawDocument, outcome: Outcome, report: IngestReport, state: HarvestState | None, key: str
             ) -> list[PatentDocument | Prepared]:
    """The documents of one parse, counted; a refusal goes on record (references kept for a later fetch)."""
    if outcome.reason is None:
        report.documents += len(outcome.docs)
        return outcome.docs
    if outcome.references:
        report.references += len(outcome.references)
        if state is not None:
            state.record_references(key, ((r.id, r.family_id) for r in outcome.references))
    _record(report, state, key, RejectRecord(raw.file, raw.position, raw.offset, outcome.reason, outcome.skip))
    return []


def _record(report: IngestReport, state: HarvestState | None, key: str, rec: RejectRecord) -> None:
    if rec.skip:
        report.skipped += 1
    else:
        report.rejects.append(rec)
    if state is not None:
        state.record_reject(key, rec)


class _Batch:
    """Documents waiting for one `index.upsert`; progress is written only after they are stored."""

    def __init__(
        self, index: Index, state: HarvestState | None, report: IngestReport, key: str, size: int, partials: set[str],
    ) -> None:
        self.index, self.state, self.report, self.key, self.size = index, state, report, key, max(1, size)
        self.docs: dict[str, PatentDocument | Prepared] = {}  # prepared only when the index takes them
        self.where: dict[str, RawDocument] = {}
        self.positions: dict[str, int] = {}  # stream -> last position handled (stored, rejected or skipped)
        self.partials = partials  # ids stored as partial documents in this run

    def add(self, doc: PatentDocument | Prepared, raw: RawDocument) -> None:
        prior = self.docs.get(doc.id)
        if prior is not None and (doc.partial or prior.partial):
            doc = merge_documents(as_document(prior), as_document(doc))
        self.docs[doc.id] = doc
        self.where[doc.id] = raw

    def _merge_with_stored(self) -> None:
        """Partial documents fill the stored record; a full one fills a stored partial one (parts fetched first)."""
        full = [i for i, d in self.docs.items() if not d.partial]
        known = self.partials & set(full)
        if self.state is not None:
            known |= self.state.partial_ids(full)
        for doc_id, doc in list(self.docs.items()):
            if doc.partial or doc_id in known:
                stored = self.index.get(doc_id)
                if stored is not None and (doc.partial or stored.partial):
                    self.docs[doc_id] = merge_documents(stored, as_document(doc))

    def _note_partials(self, indexed: list[str]) -> None:
        stored = [i for i in indexed if i in self.docs]
        partial = {i for i in stored if self.docs[i].partial}
        self.partials |= partial
        self.partials -= set(stored) - partial
        if self.state is not None:
            self.state.set_partial(partial, True)
            self.state.set_partial(set(stored) - partial, False)
            self.state.resolve_references(set(stored) - partial)

    def handled(self, stream: str, position: int) -> None:
        self.positions[stream] = position
        if len(self.docs) >= self.size:
            self.flush()

    def flush(self) -> None:
        if self.docs:
            self._merge_with_stored()
            docs = list(self.docs.values())
            if isinstance(self.index, PreparedUpsert):
                result = self.index.upsert(docs)
            else:
                result = self.index.upsert([as_document(d) for d in docs])
            self._note_partials(result.indexed)
            if self.state is not None:
                self.state.record_stored(self.key, result.indexed)
            self.report.indexed += len(result.indexed)
            for doc_id, reason in result.failed:
                raw = self.where.get(doc_id)
                rec = RejectRecord(
                    raw.file if raw else self.key, raw.position if raw else 0, raw.offset if raw else 0,
                    f"index refused {doc_id}: {reason}",
                )
                _record(self.report, self.state, self.key, rec)
        if self.state is not None:
            for stream, position in self.positions.items():
                self.state.mark_progress(stream, position)
        self.docs.clear()
        self.where.clear()
        self.positions.clear()
