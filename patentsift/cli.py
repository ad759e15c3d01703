"""The `patentsift` command line: harvest, search, show, stats, demo, index maintenance."""

from __future__ import annotations

import html
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from patentsift.config import Config, ConfigError, load_config

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
index_app = typer.Typer(no_args_is_help=True, help="Index maintenance.")
app.add_typer(index_app, name="index")
console = Console(highlight=False)
err = Console(stderr=True, highlight=False)


@dataclass
class State:
    config_path: Path | None = None
    backend: str | None = None
    data_dir: Path | None = None
    _cfg: Config | None = None

    @property
    def cfg(self) -> Config:
        if self._cfg is None:
            self._cfg = load_config(self.config_path, backend=self.backend, data_dir=self.data_dir)
        return self._cfg


STATE = State()


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {escape(message)}")
    return typer.Exit(code)


@app.callback()
def main_options(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="TOML config file.")] = None,
    backend: Annotated[str | None, typer.Option("--backend", "-b", help="embedded (default) or es.")] = None,
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="Where the embedded index and state live.")] = None,
) -> None:
    """patentsift: harvest newly published patents, index them, search and select."""
    STATE.config_path, STATE.backend, STATE.data_dir = config, backend, data_dir


def _open_index() -> Any:
    from index.base import IndexError_
    from patentsift.backends import open_index

    try:
        return open_index(STATE.cfg)
    except ConfigError as exc:
        raise fail(str(exc), 2) from None
    except IndexError_ as exc:
        raise fail(str(exc)) from None


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
        TimeRemainingColumn(), console=err, transient=False,
    )


# --- harvest ------------------------------------------------------------------------------------------------
@app.command()
def harvest(
    path: Annotated[list[Path] | None, typer.Option("--path", "-p", help="Bulk file, zip or directory on disk.")] = None,
    uspto: Annotated[list[str] | None, typer.Option("--uspto", help="USPTO bulk-data listing URL to crawl.")] = None,
    ep: Annotated[list[str] | None, typer.Option("--ep", help="EP publication-server listing URL to crawl.")] = None,
) -> None:
    """Harvest documents: from files on disk (--path) or by crawling office bulk feeds (--uspto/--ep/config)."""
    from harvest.state import HarvestState

    cfg = STATE.cfg
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    index = _open_index()
    state = HarvestState(cfg.state_path)
    failed = False
    try:
        if path:
            failed = _harvest_paths(path, index, state)
        urls_uspto = list(uspto or ([] if path or ep else cfg.harvest.uspto_urls))
        urls_ep = list(ep or ([] if path or uspto else cfg.harvest.ep_urls))
        if not path and not urls_uspto and not urls_ep:
            raise fail("nothing to harvest: give --path, --uspto or --ep, or set [harvest] urls in the config", 2)
        jobs = [(spider, urls) for spider, urls in (("uspto", urls_uspto), ("ep", urls_ep)) if urls]
        if jobs:
            failed |= _crawl(jobs, index, state, cfg)
    finally:
        state.close()
        index.close()
    if failed:
        raise typer.Exit(1)


def _harvest_paths(paths: list[Path], index: Any, state: Any) -> bool:
    from harvest.ingest import ingest_path

    failed = False
    for p in paths:
        if not p.exists():
            err.print(f"[red]error:[/red] no such file or directory: {p}")
            failed = True
            continue
        total = sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else p.stat().st_size
        with _progress() as progress:
            task = progress.add_task(p.name, total=total)
            report = ingest_path(p, index, state, progress=lambda done, t=task: progress.update(t, completed=done))
        console.print(report.summary())
        for r in report.rejects[:20]:
            console.print(f"  [yellow]reject[/yellow] {escape(r.file)} #{r.position}: {escape(r.reason)}")
        if len(report.rejects) > 20:
            console.print(f"  ... {len(report.rejects) - 20} more (patentsift stats --rejects)")
    return failed


def _crawl(jobs: list[tuple[str, list[str]]], index: Any, state: Any, cfg: Config) -> bool:
    """Run the spiders in one Scrapy process (Twisted's reactor starts once per process)."""
    from harvest.crawl import crawl_many

    overrides: dict[str, Any] = {"USER_AGENT": cfg.harvest.user_agent} if cfg.harvest.user_agent else {}
    if cfg.harvest.keep_downloads:
        overrides["KEEP_DOWNLOADS"] = True
    summaries = crawl_many(jobs, index, state, downloads_dir=cfg.downloads_dir, settings_overrides=overrides)
    for summary in summaries:
        console.print(str(summary))
    return any(summary.failed for summary in summaries)


# --- search -------------------------------------------------------------------------------------------------
_MARK = re.compile(r"<mark>(.*?)</mark>", re.S)


def _rich_snippet(text: str) -> str:
    """Highlights arrive as HTML (escaped text, <mark> around matches): render them for the terminal."""
    parts = _MARK.split(text)  # even indexes: plain text, odd: marked
    return "".join(
        f"[bold yellow]{escape(html.unescape(p))}[/bold yellow]" if i % 2 else escape(html.unescape(p))
        for i, p in enumerate(parts)
    )


def _hit_json(hit: Any) -> dict[str, Any]:
    doc = hit.document
    return {
        "id": hit.id, "score": round(hit.score, 4), "title": doc.title(),
        "publication_date": doc.publication_date.isoformat() if doc.publication_date else None,
        "applicants": [p.name for p in doc.applicants], "ipc": [c.symbol for c in doc.ipc[:5]],
        "cpc": [c.symbol for c in doc.cpc[:5]], "highlights": hit.highlights,
    }


def run_search(query: str, *, limit: int = 10, offset: int = 0, facets: bool = False,
               cursor: str | None = None) -> Any:
    from index.base import FACETS, SearchRequest
    from index.query.parser import parse_query

    tree = parse_query(query)
    index = _open_index()
    try:
        return index.search(SearchRequest(query=tree, facets=FACETS if facets else (), limit=limit, offset=offset,
                                          search_after=cursor))
    finally:
        index.close()


@app.command()
def search(
    query: Annotated[str, typer.Argument(help='Query, e.g. \'ti:(wireless AND charging) AND pd:[2020 TO 2024]\'')],
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=1000)] = 10,
    offset: Annotated[int, typer.Option("--offset", min=0)] = 0,
    cursor: Annotated[str | None, typer.Option("--cursor", help="Continue after a previous page (deep paging).")] = None,
    facets: Annotated[bool, typer.Option("--facets", help="Show facet counts.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Search the index with the fielded boolean query language (see README)."""
    from index.base import IndexError_
    from index.query.ast import QuerySyntaxError

    try:
        result = run_search(query, limit=limit, offset=offset, facets=facets, cursor=cursor)
    except QuerySyntaxError as exc:
        raise fail(str(exc), 2) from None
    except IndexError_ as exc:
        raise fail(str(exc)) from None
    if as_json:
        out = {"total": result.total, "hits": [_hit_json(h) for h in result.hits], "next_cursor": result.next_cursor}
        if facets:
            out["facets"] = {k: [{"value": f.value, "count": f.count} for f in v] for k, v in result.facets.items()}
        sys.stdout.write(json.dumps(out, ensure_ascii=False, indent=2) + "\n")
        return
    print_results(result, offset=offset)
    if facets:
        print_facets(result.facets)


def print_results(result: Any, offset: int = 0) -> None:
    console.print(f"[bold]{result.total}[/bold] documents")
    for n, hit in enumerate(result.hits, start=offset + 1):
        doc = hit.document
        pd = doc.publication_date.isoformat() if doc.publication_date else "?"
        title = hit.highlights.get("ti", [html.escape(doc.title())])[0]
        console.print(f"{n:>3}. [cyan]{hit.id}[/cyan]  {pd}  {_rich_snippet(title)}  [dim]({hit.score:.2f})[/dim]")
        who = "; ".join(list(dict.fromkeys(p.name for p in doc.applicants))[:2])
        classes = " ".join(c.symbol for c in (doc.cpc or doc.ipc)[:3])
        if who or classes:
            console.print(f"     [dim]{escape(who)}  {escape(classes)}[/dim]")
        for fld in ("ab", "cl"):
            for snippet in hit.highlights.get(fld, [])[:1]:
                console.print(f"     {fld}: {_rich_snippet(snippet)}")
    if result.next_cursor:
        console.print(f"[dim]more: --cursor {result.next_cursor}[/dim]")


def print_facets(facets: dict[str, Any]) -> None:
    for name, values in facets.items():
        if values:
            shown = ", ".join(f"{escape(str(v.value))} ({v.count})" for v in values[:10])
            console.print(f"[bold]{name}[/bold]: {shown}")


# --- show ---------------------------------------------------------------------------------------------------
@app.command()
def show(
    pubno: Annotated[str, typer.Argument(help="Publication number in any spelling: US11646472, US-11646472-B2 ...")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
    full: Annotated[bool, typer.Option("--full", help="Print the whole description too.")] = False,
) -> None:
    """Show one document."""
    from index.base import SearchRequest
    from index.query.ast import Term

    index = _open_index()
    try:
        doc = index.get(pubno)
        if doc is None:
            res = index.search(SearchRequest(query=Term("pn", pubno), limit=2, highlight=False))
            if not res.hits:
                raise fail(f"no document with publication number {pubno}")
            doc = res.hits[0].document
    finally:
        index.close()
    if as_json:
        sys.stdout.write(json.dumps(doc.to_dict(), ensure_ascii=False, indent=2) + "\n")
        return
    _print_document(doc, full)


def _print_document(doc: Any, full: bool) -> None:
    console.print(f"[bold cyan]{doc.id}[/bold cyan]  {escape(doc.title())}")
    for lang, title in doc.titles.items():
        if title != doc.title():
            console.print(f"  [dim]title ({lang}):[/dim] {escape(title)}")
    console.print(f"  published {doc.publication_date or '?'}; application {doc.application_number or '?'}"
                  f" filed {doc.application_date or '?'}; family {doc.family_id or '-'}")
    for label, parties in (("applicants", doc.applicants), ("inventors", doc.inventors)):
        if parties:
            names = "; ".join(f"{p.name}" + (f" ({p.country})" if p.country else "") for p in parties)
            console.print(f"  {label}: {escape(names)}")
    for label, classes in (("IPC", doc.ipc), ("CPC", doc.cpc), ("other", doc.other_classes)):
        if classes:
            console.print(f"  {label}: {escape(', '.join(c.display for c in classes))}")
    if doc.priorities:
        console.print("  priorities: " + ", ".join(f"{p.country} {p.number} {p.date or ''}" for p in doc.priorities))
    if doc.abstract():
        console.print(f"\n[bold]Abstract[/bold]\n{escape(doc.abstract())}")
    if doc.claims:
        console.print(f"\n[bold]Claims[/bold] ({len(doc.claims)}, "
                      f"{sum(c.independent for c in doc.claims)} independent)")
        for c in doc.claims if full else [c for c in doc.claims if c.independent][:3]:
            dep = f" [dim](depends on {', '.join(map(str, c.depends_on))})[/dim]" if c.depends_on else ""
            console.print(f"  {c.num}.{dep} {escape(c.text[:600])}")
    if doc.citations:
        pats = [c for c in doc.citations if c.kind == "patent"]
        console.print(f"\n[bold]Citations[/bold]: {len(pats)} patent, {len(doc.citations) - len(pats)} non-patent")
        for c in doc.citations[: None if full else 5]:
            console.print(f"  {escape(c.number or (c.text or '')[:100])} [dim]{escape(c.category or '')}[/dim]")
    if doc.description:
        text = doc.description if full else doc.description[:800] + ("..." if len(doc.description) > 800 else "")
        console.print(f"\n[bold]Description[/bold]\n{escape(text)}")
    if doc.provenance:
        p = doc.provenance
        console.print(f"\n[dim]source {p.source}: {escape(p.file)} #{p.position} @{p.offset}, fetched {p.fetched_at}, "
                      f"sha256 {(p.content_hash or '')[:16]}[/dim]")


# --- stats --------------------------------------------------------------------------------------------------
@app.command()
def stats(
    rejects: Annotated[bool, typer.Option("--rejects", help="List recorded rejects.")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Index size, facet overview and harvest state."""
    from harvest.state import HarvestState
    from index.base import FACETS, SearchRequest
    from index.query.ast import MatchAll

    cfg = STATE.cfg
    index = _open_index()
    try:
        result = index.search(SearchRequest(query=MatchAll(), facets=FACETS, limit=0, highlight=False))
        total = index.count()
    finally:
        index.close()
    files, rejected = [], []
    if cfg.state_path.exists():
        state = HarvestState(cfg.state_path)
        try:
            files, rejected = state.files(), state.rejects()
        finally:
            state.close()
    if as_json:
        out = {
            "backend": cfg.backend, "documents": total, "harvested_files": len(files), "rejects": len(rejected),
            "facets": {k: [{"value": f.value, "count": f.count} for f in v] for k, v in result.facets.items()},
        }
        sys.stdout.write(json.dumps(out, ensure_ascii=False, indent=2) + "\n")
        return
    console.print(f"backend: {cfg.backend}   documents: [bold]{total}[/bold]   "
                  f"harvested files: {len(files)}   rejects: {len(rejected)}")
    print_facets(result.facets)
    if rejects:
        for r in rejected:
            console.print(f"  [yellow]reject[/yellow] {escape(r.file)} #{r.position} @{r.offset}: {escape(r.reason)}")


# --- index maintenance --------------------------------------------------------------------------------------
@index_app.command("rebuild")
def index_rebuild() -> None:
    """Reindex into a fresh index with the current mapping and swap it in (Elasticsearch: no downtime)."""
    index = _open_index()
    try:
        rebuild = getattr(index, "rebuild", None)
        if rebuild is None:
            raise fail("the embedded backend needs no rebuild (its schema is created on open)", 2)
        console.print(str(rebuild()))
    finally:
        index.close()


# --- demo ---------------------------------------------------------------------------------------------------
@app.command()
def demo(
    keep: Annotated[bool, typer.Option("--keep", help="Keep the demo index (in the data dir's demo/ folder).")] = True,
) -> None:
    """Run the main job end to end on the shipped sample data: crawl a local copy of the USPTO bulk site -> index
    -> search, and print results."""
    from patentsift.demo import run_demo

    code = run_demo(STATE.cfg, console)
    raise typer.Exit(code)


from patentsift import cli_distribution, cli_matching, cli_ops, cli_subscribers, cli_web  # noqa: E402

cli_matching.register(app)
cli_subscribers.register(app)
cli_distribution.register(app)
cli_ops.register(app)
cli_web.register(app)


def main() -> None:
    try:
        app()
    except ConfigError as exc:
        err.print(f"[red]configuration error:[/red] {escape(str(exc))}")
        sys.exit(2)


if __name__ == "__main__":  # `python -m patentsift.cli` would load this module twice (as __main__ and as
    sys.exit("run `python -m patentsift` or the `patentsift` command")  # patentsift.cli): refuse clearly
