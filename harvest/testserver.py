"""A local stand-in for the office bulk-data sites: serves a fixture folder the way the offices do.

`build_fixture_site(src_files, site_dir)` lays real weekly files out like the USPTO bulk-data site (each zipped as
`data/patent/{grant,application}/redbook/fulltext/YYYY/ipgYYMMDD.zip`) and real EP publication-server documents
like EPS REST v1.2 (`publication-server/rest/v1.2/publication-dates[/DATE/patents[/EP...]]` listings and
`.../patents/EPnnnnnnnNWkk/document.xml`). `serve_fixtures(site_dir)` serves it on 127.0.0.1 with HEAD, ETag,
Last-Modified and Content-Length, Apache-style listings for folders without an `index.html`, a request log, and
injectable faults (HTTP errors N times, dropped connections). Used by the spider tests and the CLI demo.
"""

from __future__ import annotations

import email.utils
import hashlib
import html
import re
import shutil
import threading
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

USPTO_ROOT = "data/patent"
EPS_ROOT = "publication-server/rest/v1.2"
_USPTO_NAME = re.compile(r"^(ipgb|ipab|ipg|ipa|pg|pa)(\d{8}|\d{6})")
_USPTO_PRODUCTS = {"ipg": "grant", "pg": "grant", "ipgb": "grant", "ipa": "application", "pa": "application",
                   "ipab": "application"}
_EP_ROOT = re.compile(rb"<ep-patent-document\b[^>]*>", re.S)
_FIXED_ZIP_TIME = (2020, 1, 1, 0, 0, 0)


@dataclass
class SitePage:
    """One file placed on the fixture site: its URL path and the source file it came from."""

    kind: str  # "uspto-grant", "uspto-application", "epo-pubserver"
    path: str  # URL path, e.g. /data/patent/grant/redbook/fulltext/2023/ipg230110.zip
    src: Path


def uspto_archive_name(src_name: str) -> tuple[str, str, int] | None:
    """`ipg230110.first3.xml` -> ("grant", "ipg230110", 2023): the USPTO product, archive stem and year."""
    m = _USPTO_NAME.match(src_name)
    if not m:
        return None
    prefix, digits = m.groups()
    year = int(digits[:4]) if len(digits) == 8 else (2000 + int(digits[:2]) if int(digits[:2]) < 70 else 1900 + int(digits[:2]))
    return _USPTO_PRODUCTS[prefix], prefix + digits, year


def ep_publication(data: bytes) -> tuple[str, str] | None:
    """(publication date YYYYMMDD, EPS patent number `EP4114164NWA1`) from an ep-patent-document's root tag."""
    m = _EP_ROOT.search(data[:8192])
    if not m:
        return None
    attrs = dict(re.findall(rb'([\w-]+)="([^"]*)"', m.group(0)))
    try:
        number, kind, date = (attrs[k].decode() for k in (b"doc-number", b"kind", b"date-publ"))
    except KeyError:
        return None
    return date, f"EP{number}NW{kind}"


def build_fixture_site(src_files: Iterable[Path | str], site_dir: Path | str) -> list[SitePage]:
    """Lay real files out like the office sites; return what was placed. Unknown files raise ValueError."""
    site = Path(site_dir)
    site.mkdir(parents=True, exist_ok=True)
    pages: list[SitePage] = []
    ep_dates: dict[str, list[str]] = {}
    for src in map(Path, src_files):
        uspto = uspto_archive_name(src.name)
        if uspto:
            product, stem, year = uspto
            rel = f"{USPTO_ROOT}/{product}/redbook/fulltext/{year}/{stem}.zip"
            target = site / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
                info = zipfile.ZipInfo(f"{stem}.xml", date_time=_FIXED_ZIP_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, src.read_bytes())
            pages.append(SitePage(f"uspto-{product}", "/" + rel, src))
            continue
        ep = ep_publication(src.read_bytes())
        if ep:
            date, number = ep
            rel = f"{EPS_ROOT}/patents/{number}/document.xml"
            (site / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, site / rel)
            ep_dates.setdefault(date, []).append(number)
            pages.append(SitePage("epo-pubserver", "/" + rel, src))
            continue
        raise ValueError(f"{src}: neither a USPTO weekly file name nor an ep-patent-document")
    if ep_dates:
        _write_eps_listings(site, ep_dates)
    if not (site / "robots.txt").exists():
        (site / "robots.txt").write_text("User-agent: *\nDisallow:\n")
    return pages


def _html_page(title: str, links: list[tuple[str, str]]) -> str:
    items = "\n".join(f'<a href="{html.escape(href)}">{html.escape(text)}</a><br/>' for href, text in links)
    return f"<html><head><title>{html.escape(title)}</title></head><body>\n{items}\n</body></html>\n"


def _write_eps_listings(site: Path, ep_dates: dict[str, list[str]]) -> None:
    """EPS REST v1.2 HTML listings: publication dates -> patents of a date -> formats of a patent."""
    base = f"/{EPS_ROOT}"
    dates_dir = site / EPS_ROOT / "publication-dates"
    existing = {p.name: p for p in dates_dir.iterdir() if p.is_dir()} if dates_dir.exists() else {}
    all_dates = sorted(set(existing) | set(ep_dates))
    dates_dir.mkdir(parents=True, exist_ok=True)
    (dates_dir / "index.html").write_text(_html_page("publication dates", [
        (f"{base}/publication-dates/{d}/patents", f"{d[:4]}/{d[4:6]}/{d[6:]}") for d in all_dates]))
    for date, numbers in ep_dates.items():
        patents_dir = dates_dir / date / "patents"
        patents_dir.mkdir(parents=True, exist_ok=True)
        known = sorted({p.name for p in patents_dir.iterdir() if p.is_dir()} | set(numbers))
        (patents_dir / "index.html").write_text(_html_page(f"patents published {date}", [
            (f"{base}/publication-dates/{date}/patents/{n}", n) for n in known]))
        for n in numbers:
            (patents_dir / n).mkdir(exist_ok=True)
            (patents_dir / n / "index.html").write_text(_html_page(n, [
                (f"{base}/patents/{n}/document.xml", "XML")]))


@dataclass
class Fault:
    status: int | None  # HTTP status to answer with, or None to drop the connection mid-body
    remaining: int | None  # None: forever


@dataclass
class LoggedRequest:
    method: str
    path: str
    user_agent: str
    status: int  # 0 when the connection was dropped


@dataclass
class ServerControl:
    """Shared with the server threads: the request log and the faults to inject, changeable while serving."""

    listing_details: bool = True  # show size/date columns in generated listings
    requests: list[LoggedRequest] = field(default_factory=list)
    _faults: dict[tuple[str, str], Fault] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, path: str, times: int | None = 1, *, status: int = 503, method: str = "GET") -> None:
        """Answer `status` to the next `times` requests for `path` (None: every time)."""
        with self._lock:
            self._faults[(method, path)] = Fault(status, times)

    def drop(self, path: str, times: int | None = 1, *, method: str = "GET") -> None:
        """Send headers and half the body for `path`, then close the connection, `times` times."""
        with self._lock:
            self._faults[(method, path)] = Fault(None, times)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def clear_log(self) -> None:
        with self._lock:
            self.requests.clear()

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            fault = self._faults.get((method, path))
            if fault is None:
                return None
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    del self._faults[(method, path)]
            return fault

    def log(self, entry: LoggedRequest) -> None:
        with self._lock:
            self.requests.append(entry)

    def paths(self, method: str = "GET", suffix: str = "") -> list[str]:
        """Paths requested with `method` (and ending in `suffix`), in order."""
        with self._lock:
            return [r.path for r in self.requests if r.method == method and r.path.endswith(suffix)]


def _etag(path: Path) -> str:
    st = path.stat()
    digest = hashlib.sha1(f"{path.name}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:16]
    return f'"{digest}"'


def _listing(url_path: str, folder: Path, details: bool) -> str:
    """An Apache/USPTO-style directory listing: a table of links with size and modification date."""
    rows = []
    for child in sorted(folder.iterdir()):
        if child.name.startswith("."):
            continue
        name = child.name + ("/" if child.is_dir() else "")
        cells = ""
        if details:
            st = child.stat()
            size = "-" if child.is_dir() else str(st.st_size)
            modified = datetime.fromtimestamp(st.st_mtime, UTC).strftime("%Y-%m-%d %H:%M")
            cells = f'<td align="right">{size}</td><td>{modified}</td>'
        rows.append(f'<tr><td><a href="{html.escape(name)}">{html.escape(name)}</a></td>{cells}</tr>')
    title = f"Index of {html.escape(url_path)}"
    return (f"<html><head><title>{title}</title></head><body><h1>{title}</h1>\n<table>\n"
            f"<tr><th>Name</th><th>Size</th><th>Last modified</th></tr>\n" + "\n".join(rows) + "\n</table></body></html>\n")


def _make_handler(root: Path, control: ServerControl) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "patentsift-fixture/0.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet by default
            return

        def do_HEAD(self) -> None:
            self._serve(head=True)

        def do_GET(self) -> None:
            self._serve(head=False)

        def _serve(self, *, head: bool) -> None:
            url_path = unquote(urlsplit(self.path).path)
            agent = self.headers.get("User-Agent", "")
            fault = control.take_fault(self.command, url_path)
            if fault and fault.status is not None:
                self._send_error(fault.status, url_path, agent, head)
                return
            target = (root / url_path.lstrip("/")).resolve()
            if root not in target.parents and target != root:
                self._send_error(404, url_path, agent, head)
                return
            if target.is_dir():
                if (target / "index.html").is_file():
                    target = target / "index.html"
                elif not url_path.endswith("/"):
                    control.log(LoggedRequest(self.command, url_path, agent, 301))
                    self.send_response(301)
                    self.send_header("Location", url_path + "/")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                else:
                    body = _listing(url_path, target, control.listing_details).encode()
                    self._send_body(200, body, "text/html; charset=utf-8", url_path, agent, head)
                    return
            if not target.is_file():
                self._send_error(404, url_path, agent, head)
                return
            body = target.read_bytes()
            ctype = {".zip": "application/zip", ".xml": "application/xml", ".html": "text/html; charset=utf-8",
                     ".txt": "text/plain"}.get(target.suffix, "application/octet-stream")
            extra = {"ETag": _etag(target),
                     "Last-Modified": email.utils.formatdate(target.stat().st_mtime, usegmt=True)}
            if fault and fault.status is None:  # drop: promise the whole body, send half, hang up
                control.log(LoggedRequest(self.command, url_path, agent, 0))
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head:
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                self.close_connection = True
                return
            self._send_body(200, body, ctype, url_path, agent, head, extra)

        def _send_error(self, status: int, url_path: str, agent: str, head: bool) -> None:
            body = f"<html><body><h1>{status}</h1></body></html>\n".encode()
            self._send_body(status, body, "text/html; charset=utf-8", url_path, agent, head,
                            {"Retry-After": "0"} if status in (429, 503) else None)

        def _send_body(self, status: int, body: bytes, ctype: str, url_path: str, agent: str, head: bool,
                       extra: dict[str, str] | None = None) -> None:
            control.log(LoggedRequest(self.command, url_path, agent, status))
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (extra or {}).items():
                self.send_header(name, value)
            self.end_headers()
            if not head:
                self.wfile.write(body)

    return Handler


@contextmanager
def serve_fixtures(root_dir: Path | str, port: int = 0, *, control: ServerControl | None = None) -> Iterator[str]:
    """Serve `root_dir` on http://127.0.0.1:PORT (0: any free port) in a background thread; yield the base URL.

    Pass a `ServerControl` to read the request log and inject faults.
    """
    root = Path(root_dir).resolve()
    server = ThreadingHTTPServer(("127.0.0.1", port), _make_handler(root, control or ServerControl()))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="fixture-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
