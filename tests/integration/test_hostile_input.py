"""Hostile and broken input next to good documents: every bad file is refused with a reason, every good one is
indexed, no local file leaks into the index, and memory stays bounded on a weekly file of half a gigabyte."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import psutil
import pytest

from harvest.files import iter_raw_documents
from harvest.formats import parse_raw
from harvest.ingest import ingest_path
from harvest.raw import RawDocument
from harvest.state import HarvestState
from tests.integration.test_ingest import new_index

SECRET = "PATENTSIFT-SECRET-7f3a9c-do-not-index"
GOOD_WEEKLY = "uspto-grant/weekly/ipg230110.first3.xml"
GRANT_V47 = "uspto-grant/single/US11646472B2-20230509.xml"


def _with_doctype(data: bytes, doctype: bytes) -> bytes:
    return re.sub(rb"<!DOCTYPE[^\[>]*(\[.*?\])?\s*>", lambda _: doctype, data, count=1, flags=re.S)


def _in_title(data: bytes, text: bytes) -> bytes:
    return re.sub(rb"(<invention-title[^>]*>)", lambda m: m.group(1) + text, data, count=1)


def _hostile_tree(shared: Path, root: Path) -> tuple[Path, dict[str, str]]:
    """A download folder mixing good files with attacks and damage; returns it with file name -> expected reason."""
    secret_dir = root / "private"
    secret_dir.mkdir()
    secret = secret_dir / "passwd.txt"
    secret.write_text(SECRET + "\n")
    (secret_dir / "evil.dtd").write_text(f'<!ENTITY leak "{SECRET}">\n<!ENTITY % all "<!ENTITY x \'{SECRET}\'>">\n')
    feed = root / "feed"
    feed.mkdir()
    grant = (shared / GRANT_V47).read_bytes()

    (feed / "good_weekly.xml").write_bytes((shared / GOOD_WEEKLY).read_bytes())
    (feed / "good_grant.xml").write_bytes(grant)
    # The DTD a document names is never read, even when it is a local file full of secrets.
    design = (shared / "uspto-grant/single/USD0701016-20140318.xml").read_bytes()
    (feed / "good_external_dtd.xml").write_bytes(
        _in_title(_with_doctype(design, f'<!DOCTYPE us-patent-grant SYSTEM "file://{secret_dir}/evil.dtd">'.encode()),
                  b"&leak;")
    )
    lols = "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
    (feed / "bomb.xml").write_bytes(
        f'<?xml version="1.0"?><!DOCTYPE us-patent-grant [<!ENTITY lol0 "lol">{lols}]>'
        f"<us-patent-grant>&lol9;</us-patent-grant>".encode()
    )
    (feed / "xxe.xml").write_bytes(_in_title(_with_doctype(
        grant, f'<!DOCTYPE us-patent-grant [<!ENTITY xxe SYSTEM "file://{secret}">]>'.encode()), b"&xxe;"))
    (feed / "xxe_parameter.xml").write_bytes(_with_doctype(
        grant, f'<!DOCTYPE us-patent-grant [<!ENTITY % p SYSTEM "file://{secret_dir}/evil.dtd"> %p;]>'.encode()))
    latin1 = (shared / "uspto-grant/single/US10000000B2-20180619.xml").read_bytes()
    (feed / "latin1.xml").write_bytes(_in_title(latin1, "Caf\u00e9 ".encode("latin-1")))
    single = (shared / "uspto-grant/single/US08930553-20150106.xml").read_text(encoding="utf-8")
    (feed / "utf16.xml").write_bytes(single.replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16"))
    (feed / "empty.xml").write_bytes(b"")
    half = (shared / "uspto-grant/single/US07272630B2-20070918.xml").read_bytes()
    (feed / "truncated_doc.xml").write_bytes(half[: len(half) // 2])
    whole = root / "whole.zip"
    with zipfile.ZipFile(whole, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(shared / "uspto-grant/weekly/ipgb20221025.xml", "a_ipgb20221025.xml")
        zf.write(shared / "uspto-grant/weekly/ipg130416.xml", "b_ipg130416.xml")
    data = whole.read_bytes()
    (feed / "truncated.zip").write_bytes(data[: int(len(data) * 0.6)])
    with zipfile.ZipFile(feed / "zipbomb.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("bomb.xml", b"<?xml version='1.0'?><a>" + b"A" * (150 << 20))
    return feed, {
        "bomb.xml": "entity-expansion bomb",
        "xxe.xml": "possible XXE",
        "xxe_parameter.xml": "parameter entity",
        "latin1.xml": "not valid UTF-8",
        "utf16.xml": "UTF-16",
        "empty.xml": "empty file",
        "truncated_doc.xml": "truncated: the file ends inside a document",
        "truncated.zip": "damaged zip archive",
        "zipbomb.zip!bomb.xml": "byte limit",
    }


def test_bad_files_are_refused_with_reasons_and_good_ones_indexed(shared_patents: Path, tmp_path: Path) -> None:
    feed, expected = _hostile_tree(shared_patents, tmp_path)
    good_ids = {"US-D0701016-S1", "US-11646472-B2"}
    for source in (GOOD_WEEKLY, "uspto-grant/weekly/ipgb20221025.xml"):
        good_ids |= {d.id for raw in iter_raw_documents(shared_patents / source) for d in parse_raw(raw)}
    index = new_index(tmp_path)
    with HarvestState(tmp_path / "state.db") as state:
        report = ingest_path(feed, index, state, key="feed")
        recorded = state.rejects()

    reasons: dict[str, list[str]] = {}
    for rec in report.rejects:
        reasons.setdefault(rec.file.removeprefix("feed/"), []).append(rec.reason)
    for name, phrase in expected.items():
        assert any(phrase in r for r in reasons.get(name, [])), (name, reasons.get(name))
    assert set(reasons) <= set(expected) | {"truncated.zip!b_ipg130416.xml"}
    assert any("incomplete document" in r for r in reasons["truncated.zip!b_ipg130416.xml"])
    assert len(recorded) == len(report.rejects) + report.skipped

    stored = {doc_id: index.get(doc_id) for doc_id in good_ids}
    assert all(stored.values()), [i for i, d in stored.items() if d is None]
    truncated_zip_ok = [d for d in stored.values() if d.provenance.file.startswith("feed/truncated.zip!")]
    assert len(truncated_zip_ok) >= 10  # the complete member before the damage
    assert index.get("US-D0701016-S1").title()  # the document whose DTD was hostile was read without it

    text = json.dumps([d.to_dict() for d in stored.values()], ensure_ascii=False)
    text += report.summary(max_rejects=100) + repr(recorded)
    assert SECRET not in text
    for path in tmp_path.rglob("*"):
        if path.is_file() and "private" not in path.parts:
            assert SECRET.encode() not in path.read_bytes(), path


_PUB_NUMBER = re.compile(rb"(<publication-reference>\s*<document-id>\s*<country>US</country>\s*<doc-number>)[^<]+")


def _distinct_grants(shared: Path) -> list[bytes]:
    grants = []
    for raw in iter_raw_documents(shared / "uspto-grant/weekly/ipg130416.xml"):
        if isinstance(raw, RawDocument) and b"<us-patent-grant" in raw.data:
            grants.append(raw.data)
    return grants


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_half_gigabyte_weekly_file_streams_in_bounded_memory(shared_patents: Path, tmp_path: Path) -> None:
    grants = _distinct_grants(shared_patents)
    path = tmp_path / "ipg-huge.xml"
    written = count = 0
    with open(path, "wb") as fh:
        while written < 500 << 20:
            number = f"{20_000_000 + count:08d}".encode()
            doc = _PUB_NUMBER.sub(rb"\g<1>" + number, grants[count % len(grants)], count=1)
            fh.write(doc)
            written += len(doc)
            count += 1
    proc = psutil.Process()
    baseline = peak = proc.memory_info().rss
    seen = 0
    sample_ids = set()
    for item in iter_raw_documents(path):
        assert isinstance(item, RawDocument)
        seen += 1
        if seen % 97 == 0:
            [doc] = parse_raw(item)
            assert doc.pn.number == f"{20_000_000 + seen - 1:08d}"
            sample_ids.add(doc.id)
        if seen % 50 == 0:
            peak = max(peak, proc.memory_info().rss)
    assert seen == count and len(sample_ids) == count // 97
    print(f"{written >> 20} MiB, {count} documents: RSS grew by {(peak - baseline) >> 20} MiB")
    assert peak - baseline < 200 << 20, f"RSS grew by {(peak - baseline) >> 20} MiB"
